"""The sqlite connection and schema shared by `SqliteStore` and `SqliteLock`.

It lies below both `arvel_flow.lock` and `arvel_flow.store` (a store builds its lock;
the lock needs only this connection), so that neither package imports the other's
``__init__`` in a circle.

Opening sets the file up for several processes at once: WAL (readers never wait for
the writer), ``busy_timeout`` (a writer waits for the lock instead of failing) and
``synchronous=NORMAL`` (durable in WAL mode except for the last commits on power
loss). Writes go through `SqliteDatabase.transaction`, a ``BEGIN IMMEDIATE``
transaction: the write lock is taken before the first read, so check-then-write is
atomic across processes.

With a ``commit_interval``, writes are grouped: the first write opens a transaction
that stays open for that long, and every write inside it is a savepoint of its own
(an error undoes that write only), except on the hot path of every job: there a write
whose block raises nothing between its statements skips the savepoint (half the
statements per job), and an error in it rolls the whole group back as a failed file
would. One commit then carries hundreds of writes. What the hot path can count in
memory while the group holds the write lock (a batch's counters) is written once,
before anything else reads the file and before the commit (`SqliteDatabase.defer`):
a job's finish is then one statement. Each group is atomic, so a crash (even
``kill -9``) loses at most the last interval's writes, whole: the jobs they recorded
run again on resume (at least once), and no half-recorded step or counter is ever
seen.

A write that fails (a full disk, an I/O error, a read-only file, a lock held past
``busy_timeout``) raises `StoreFileError`. Inside a group it also loses the writes
before it in the group, which their callers were told had succeeded (sqlite may have
rolled the transaction back already): so the group is rolled back and the connection
gives up. Every later call raises the same error, the group's timer included, which
keeps it for the next caller instead of raising into the event loop. Later writes
never commit without the earlier ones, so the file always holds the state of a crash
at the last commit, which ``run --resume`` continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from arvel_flow.errors import BackendError, StoreFileError

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 5000

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
        created_at REAL NOT NULL, finished_at REAL, source TEXT, plan TEXT NOT NULL)""",
    "CREATE INDEX runs_by_created ON runs (created_at)",
    """CREATE TABLE steps (run_id TEXT NOT NULL, step TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL, error TEXT, started_at REAL, finished_at REAL,
        PRIMARY KEY (run_id, step))""",
    """CREATE TABLE batches (run_id TEXT NOT NULL, batch TEXT NOT NULL,
        claimed INTEGER NOT NULL, done INTEGER NOT NULL, failed INTEGER NOT NULL,
        cancelled INTEGER NOT NULL, cancel_flag INTEGER NOT NULL, PRIMARY KEY (run_id, batch))""",
    """CREATE TABLE failed_jobs (id TEXT PRIMARY KEY, job TEXT NOT NULL, queue TEXT NOT NULL,
        payload TEXT NOT NULL, exception TEXT NOT NULL, message TEXT NOT NULL,
        traceback TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at REAL NOT NULL,
        run_id TEXT, step TEXT, settings TEXT NOT NULL)""",
    "CREATE INDEX failed_jobs_by_time ON failed_jobs (failed_at)",
    "CREATE TABLE rate_hits (key TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX rate_hits_by_key ON rate_hits (key, at)",
    'CREATE TABLE locks ("key" TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)',
    "CREATE INDEX locks_by_expiry ON locks (expires_at)",
)
"""The tables of schema version 1; later versions are `_MIGRATIONS` applied on top."""

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        """CREATE TABLE run_owners (run_id TEXT PRIMARY KEY, owner_id TEXT NOT NULL,
            host TEXT NOT NULL, pid INTEGER NOT NULL, started_at REAL NOT NULL,
            seen_at REAL NOT NULL, expires_at REAL NOT NULL)""",
    ),
    3: (
        "ALTER TABLE runs ADD COLUMN trigger TEXT",
        "ALTER TABLE runs ADD COLUMN scheduled_at REAL",
        """CREATE TABLE ticks (trigger TEXT PRIMARY KEY, at REAL NOT NULL,
            claimed_at REAL NOT NULL, run_id TEXT, note TEXT)""",
    ),
}
"""Statements that bring a database from the version before each key to that version."""


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SIDECARS = ("-wal", "-shm", "-journal")
"""Files sqlite keeps beside the database; it gives them the database file's mode."""


def make_private_file(path: Path) -> None:
    """Create ``path`` (and missing parent directories) readable by its owner only.

    The store holds plans, failed-job records and locks: directories this creates are
    0700 and the database 0600 whatever the umask; an existing database and its
    sidecar files are tightened to 0600. A directory that existed already (``.``,
    a shared one) keeps its mode: it is the user's, not ours to change.
    """
    missing = [parent for parent in path.parents if not parent.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(directory, PRIVATE_DIR_MODE)
            os.chmod(directory, PRIVATE_DIR_MODE)  # mkdir applied the umask: set it exactly
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SIDECARS)):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if stat.S_IMODE(file.stat().st_mode) != PRIVATE_FILE_MODE:
                os.chmod(file, PRIVATE_FILE_MODE)


class SqliteDatabase:
    """One sqlite connection set up for arvel-flow, shared by `SqliteStore` and `SqliteLock`.

    Opening creates the parent directory (0700) and the file (0600, see
    `make_private_file`), then the schema, and switches the file to WAL. With
    ``create=False`` (read-only commands) a missing file is not created: the database
    is an empty one in memory.

    Raises:
        BackendError: The file cannot be opened, is not a database, or was written by
            a newer arvel-flow.
    """

    def __init__(
        self, path: str | Path, *, commit_interval: float = 0.0, create: bool = True
    ) -> None:
        self.path = Path(path)
        self.backend = f"sqlite:{path}"
        self.commit_interval = commit_interval
        self._conn: sqlite3.Connection | None = None
        self._group: asyncio.TimerHandle | None = None
        self._failure: StoreFileError | None = None
        self._deferred: Callable[[sqlite3.Connection], None] | None = None
        self._groups_opened = 0
        with self._errors("opened"):
            target: str | Path = self.path
            if create:
                make_private_file(self.path)
            elif not self.path.exists():
                # A reader of a store never written: an empty database of the same
                # schema in memory, and nothing on disk.
                target = ":memory:"
            conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                self._set_up(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def _set_up(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable in WAL mode except for the last commits on power loss.
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._begin(conn):
            self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreFileError(
                str(self.path),
                f"schema version {version} is newer than this arvel-flow ({SCHEMA_VERSION})",
                action="opened",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        # Only failures of the file become StoreFileError; misuse of the API
        # (IntegrityError, ProgrammingError) is a bug and stays visible.
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            raise self._file_error(exc, action) from exc

    def _file_error(self, exc: BaseException, action: str) -> StoreFileError:
        reason = str(exc) or type(exc).__name__
        if "full" not in reason and _no_space_left(self.path):
            # sqlite says "disk I/O error" when its shared-memory file cannot grow.
            reason += " (no space left on the device)"
        return StoreFileError(str(self.path), reason, action=action)

    @staticmethod
    @contextmanager
    def _begin(conn: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock before the first read: check-then-write is
        # atomic across processes, and lock waits happen here, under busy_timeout.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # Some errors (a full disk, for one) have rolled back already.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection.

        Raises:
            StoreFileError: A group of writes was lost: the connection gave up.
        """
        if self._failure is not None:
            raise self._failure.with_traceback(None)
        if self._conn is None:
            raise BackendError(self.backend, "the store is closed")
        return self._conn

    def transaction(self, *, savepoint: bool = True) -> _Transaction:
        """A write transaction (``BEGIN IMMEDIATE``), committed when the block ends.

        With a commit interval it is a savepoint in the open group transaction instead,
        committed with the group. Without ``savepoint`` it is no savepoint at all, for
        the writes of every job (a savepoint and its release double their statements):
        the block must raise nothing of its own once it has written, since an error in
        it can no longer be undone alone and rolls the group back (the connection gives
        up, as when the file fails; the error itself is raised as it is).
        """
        return _Transaction(self, savepoint)

    @property
    def current_group(self) -> int | None:
        """The open group transaction's number (each group has its own), or None.

        While a group is open, this process holds the file's write lock.
        """
        return None if self._group is None else self._groups_opened

    def defer(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Have ``write`` run in the open group before anything else uses the connection.

        For what the hot path keeps in memory while the group holds the write lock (a
        batch's counters): ``write`` runs before the next read, the next write that is
        not ``savepoint=False``, and the group's commit, so that no statement and no
        other process ever sees the file without it. A group that fails loses it with
        the rest; what the caller kept belongs to that group (`current_group`).
        """
        self._deferred = write

    def _write_deferred(self, conn: sqlite3.Connection) -> None:
        write = self._deferred
        if write is not None:
            self._deferred = None
            write(conn)

    def _start_group(self, conn: sqlite3.Connection) -> bool:
        """Make sure a group transaction is open; False when there is no event loop."""
        if self._group is not None:
            if not conn.in_transaction:
                # Rolled back behind our back: a savepoint now would start a transaction
                # of its own and commit on release, without the group's earlier writes.
                raise self._write_failed(sqlite3.OperationalError("the open group was rolled back"))
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        conn.execute("BEGIN IMMEDIATE")
        self._group = loop.call_later(self.commit_interval, self._commit_group)
        self._groups_opened += 1
        self._deferred = None  # nothing of an earlier group may be written into this one
        return True

    def flush(self) -> None:
        """Commit the open group of writes, if any.

        Raises:
            StoreFileError: The group could not be committed: its writes are lost and
                the connection gives up.
        """
        if self._group is None:
            return
        self._group.cancel()
        conn = self.conn
        try:
            if conn.in_transaction:
                self._write_deferred(conn)
                conn.execute("COMMIT")
            else:
                self._deferred = None  # rolled back behind our back: lost with the group
        except (sqlite3.DatabaseError, OSError) as exc:
            raise self._write_failed(exc) from exc
        self._group = None

    def _commit_group(self) -> None:
        """The group's timer: commit it. A failure is kept for the next caller, not raised.

        Raised here, it would reach the event loop's handler (a traceback on stderr)
        and no caller; kept, it is raised by every later call of the store, which is
        how the run that owns the store learns of it.
        """
        try:
            self.flush()
        except StoreFileError:
            return  # kept in self._failure by _write_failed

    def _write_failed(self, exc: BaseException) -> StoreFileError:
        """The error for a failed write, after undoing what it left open.

        Inside a group, the group is rolled back and the connection gives up (see the
        module's docstring); a write of its own loses nothing else, and the connection
        stays usable.
        """
        error = self._file_error(exc, "written")
        self._deferred = None  # lost with the group it belonged to
        conn = self._conn
        if conn is not None and conn.in_transaction:
            with suppress(sqlite3.Error):
                # Nothing more can be undone if even the rollback fails.
                conn.execute("ROLLBACK")
        if self._group is not None:
            self._group.cancel()
            self._group = None
            self._failure = error
        return error

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside a transaction (each statement sees a snapshot)."""
        with self._errors("read"):
            conn = self.conn
            if self._deferred is not None:
                try:
                    self._write_deferred(conn)
                except (sqlite3.DatabaseError, OSError) as exc:
                    raise self._write_failed(exc) from exc
            yield conn

    def close(self) -> None:
        """Commit pending writes and close the connection; closing twice is harmless.

        Raises:
            StoreFileError: The pending writes, or an earlier group, could not be
                committed (the connection is closed all the same).
        """
        if self._conn is None:
            return
        try:
            if self._failure is not None:
                raise self._failure.with_traceback(None)
            self.flush()
        finally:
            self._conn.close()
            self._conn = None


def _no_space_left(path: Path) -> bool:
    """Whether the filesystem holding ``path`` is full (False when that cannot be told)."""
    try:
        return shutil.disk_usage(path.parent).free == 0
    except OSError:
        return False


def upsert(table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    """SQL that inserts a row or updates it in place.

    Unlike ``INSERT OR REPLACE`` the row keeps its rowid, so ``ORDER BY rowid`` stays
    the order in which rows were first stored, as dicts keep insertion order.
    """
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


class _Transaction:
    """The context manager behind `SqliteDatabase.transaction`.

    A class rather than a generator: it runs once per store write, the hot path of
    every job, where a generator-based context manager costs a few microseconds more.
    """

    __slots__ = ("_conn", "_db", "_grouped", "_savepoint")

    def __init__(self, db: SqliteDatabase, savepoint: bool = True) -> None:
        self._db = db
        self._grouped = False
        self._savepoint = savepoint
        self._conn: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        try:
            conn = self._conn = db.conn
            self._grouped = bool(db.commit_interval) and db._start_group(conn)
            if not self._grouped:
                conn.execute("BEGIN IMMEDIATE")
            elif self._savepoint:
                db._write_deferred(conn)
                conn.execute("SAVEPOINT write")
        except (sqlite3.DatabaseError, OSError) as exc:
            raise db._write_failed(exc) from exc
        return conn

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        conn = self._conn
        assert conn is not None
        if self._grouped and not self._savepoint:
            if error is not None:
                # Nothing undoes this write alone: the group goes, as for a failed file.
                failure = self._db._write_failed(error)
                if isinstance(error, sqlite3.DatabaseError | OSError) and not isinstance(
                    error, sqlite3.IntegrityError | sqlite3.ProgrammingError
                ):
                    raise failure from error
            return
        try:
            if kind is None:
                conn.execute("RELEASE write" if self._grouped else "COMMIT")
            elif conn.in_transaction:
                # Some errors (a full disk, for one) have rolled back already.
                conn.execute("ROLLBACK TO write" if self._grouped else "ROLLBACK")
                if self._grouped:
                    conn.execute("RELEASE write")
        except (sqlite3.DatabaseError, OSError) as exc:
            raise self._db._write_failed(exc) from exc
        # Only failures of the file become StoreFileError; misuse of the API
        # (IntegrityError, ProgrammingError) is a bug and stays visible.
        misuse = isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError)
        if isinstance(error, sqlite3.DatabaseError | OSError) and not misuse:
            raise self._db._write_failed(error) from error
