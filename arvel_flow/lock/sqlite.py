"""Locks kept in the sqlite store's file, shared by every process on the machine.

Expiry uses the wall clock (``time.time``), the one clock that processes agree on.
Every operation is one ``BEGIN IMMEDIATE`` transaction, so the owner check and the
change cannot be split by another process.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from arvel_flow.sqlite_db import SqliteDatabase


class SqliteLock:
    """A `LockContract` in the ``locks`` table of an arvel-flow sqlite database.

    Args:
        database: A path (the lock opens and owns its own connection) or the
            `SqliteDatabase` of a `SqliteStore` (shared; the store closes it).
        clock: Wall-clock seconds; injectable for tests.
    """

    def __init__(
        self, database: SqliteDatabase | str | Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._owns_db = not isinstance(database, SqliteDatabase)
        self._db = database if isinstance(database, SqliteDatabase) else SqliteDatabase(database)
        self._clock = clock

    async def close(self) -> None:
        """Close the connection if this lock opened it."""
        if self._owns_db:
            self._db.close()

    @staticmethod
    def _live_owner(conn: sqlite3.Connection, key: str, now: float) -> str | None:
        row = conn.execute('SELECT owner, expires_at FROM locks WHERE "key" = ?', (key,)).fetchone()
        if row is None or row[1] <= now:
            return None
        owner: str = row[0]
        return owner

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``owner`` if nobody holds it or its holder's time ran out."""
        with self._db.transaction() as conn:
            now = self._clock()
            if self._live_owner(conn, key, now) is not None:
                return False
            # Expired locks of any key go here, so the table stays as small as the
            # number of locks actually held.
            conn.execute("DELETE FROM locks WHERE expires_at <= ?", (now,))
            conn.execute(
                'INSERT OR REPLACE INTO locks ("key", owner, expires_at) VALUES (?, ?, ?)',
                (key, owner, now + ttl),
            )
            return True

    async def release(self, key: str, owner: str) -> bool:
        """Delete ``key`` if ``owner`` holds it."""
        with self._db.transaction() as conn:
            if self._live_owner(conn, key, self._clock()) != owner:
                return False
            conn.execute('DELETE FROM locks WHERE "key" = ?', (key,))
            return True

    async def extend(self, key: str, owner: str, ttl: float) -> bool:
        """Reset the expiry of ``key`` if ``owner`` holds it."""
        with self._db.transaction() as conn:
            now = self._clock()
            if self._live_owner(conn, key, now) != owner:
                return False
            conn.execute('UPDATE locks SET expires_at = ? WHERE "key" = ?', (now + ttl, key))
            return True

    async def owner(self, key: str) -> str | None:
        """Who holds ``key`` now, or None."""
        with self._db.read() as conn:
            return self._live_owner(conn, key, self._clock())
