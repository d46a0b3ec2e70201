"""A full disk for sqlite, on demand: a connection wrapper that fails chosen statements."""

from __future__ import annotations

import sqlite3
from typing import Any

from arvel_flow.store.sqlite import SqliteStore

FULL = "database or disk is full"


class FailingConnection:
    """A sqlite connection that fails the statements a test chooses, as a full disk does."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.fail_on: str | None = None
        """A statement prefix ("COMMIT", "INSERT") that fails from now on."""
        self.roll_back = False
        """Whether sqlite rolls the whole transaction back before the error is raised."""
        self.failures = 0
        """How many statements it failed so far."""

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.fail_on is not None and sql.lstrip().upper().startswith(self.fail_on):
            if self.roll_back and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self.failures += 1
            raise sqlite3.OperationalError(FULL)
        return self._conn.execute(sql, *args)

    def close(self) -> None:
        self._conn.close()


def wrap(store: SqliteStore) -> FailingConnection:
    conn = FailingConnection(store._db.conn)
    store._db._conn = conn  # type: ignore[assignment]
    return conn
