"""A store in one sqlite file: the embedded default, safe for several local processes.

The file is in WAL mode, so readers never wait for the writer, and every decision runs
in its own ``BEGIN IMMEDIATE`` transaction: the write lock is taken before anything is
read, so two processes can never both see "not claimed yet". A writer that finds the
file locked waits up to ``busy_timeout`` instead of failing.

Calls run directly on the event loop thread: each is a few indexed statements, well
under a millisecond, cheaper than handing off to a thread. Every decision is a private
``_name(conn, ...)`` method that expects an open transaction, so many of them can later
be grouped into one transaction for throughput.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from arvel_flow.errors import BackendError, RunNotFoundError
from arvel_flow.lock.contracts import LockContract
from arvel_flow.store.contracts import (
    FINAL_RUN_STATUSES,
    BatchCounters,
    FailedJob,
    RunRecord,
    RunStatus,
    StepRecord,
    StepState,
)

SCHEMA_VERSION = 1
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

_STEP_COLUMNS = "step, state, attempts, error, started_at, finished_at"
_RUN_COLUMNS = "run_id, name, status, created_at, finished_at, source"
_FAILED_COLUMNS = (
    "id, job, queue, payload, exception, message, traceback, attempts, failed_at, run_id, "
    "step, settings"
)


class SqliteDatabase:
    """One sqlite connection set up for arvel-flow, shared by `SqliteStore` and `SqliteLock`.

    Opening creates the parent directory and the schema, and switches the file to WAL.

    Raises:
        BackendError: The file cannot be opened, is not a database, or was written by
            a newer arvel-flow.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.backend = f"sqlite:{path}"
        self._conn: sqlite3.Connection | None = None
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
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
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            return
        (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version > SCHEMA_VERSION:
            raise BackendError(
                self.backend,
                f"schema version {version} is newer than this arvel-flow ({SCHEMA_VERSION})",
            )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        # Only failures of the file or the server become BackendError; misuse of the
        # API (IntegrityError, ProgrammingError) is a bug and stays visible.
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            raise BackendError(self.backend, str(exc) or type(exc).__name__) from exc

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
        """The open connection."""
        if self._conn is None:
            raise BackendError(self.backend, "the store is closed")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed when the block ends."""
        with self._errors():
            conn = self.conn
            with self._begin(conn):
                yield conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads outside a transaction (each statement sees a snapshot)."""
        with self._errors():
            yield self.conn

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"))


def _step(row: tuple[Any, ...]) -> StepRecord:
    return StepRecord(*row)


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(*row)


def _failed(row: tuple[Any, ...]) -> FailedJob:
    values = list(row)
    values[3] = json.loads(values[3])
    values[11] = json.loads(values[11])
    return FailedJob(*values)


class SqliteStore:
    """A `StoreContract` in a sqlite file, shared safely by processes on one machine.

    Args:
        path: The database file; it and its directory are created when missing.

    Raises:
        BackendError: The file cannot be opened or is not an arvel-flow database.
    """

    def __init__(self, path: str | Path) -> None:
        self._db = SqliteDatabase(path)
        self._lock: LockContract | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    def lock(self) -> LockContract:
        """A `SqliteLock` on this store's connection, living as long as the store."""
        if self._lock is None:
            # Imported here: arvel_flow.lock.sqlite imports SqliteDatabase from this module.
            from arvel_flow.lock.sqlite import SqliteLock

            self._lock = SqliteLock(self._db)
        return self._lock

    async def close(self) -> None:
        """Close the database connection (the lock shares it)."""
        self._db.close()

    # Runs ---------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, plan: Mapping[str, Any]) -> None:
        """Store the run and its plan; a run created again starts with no steps."""
        plan_text = _dumps(plan)
        with self._db.transaction() as conn:
            conn.execute(
                f"""INSERT INTO runs ({_RUN_COLUMNS}, plan) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (run_id) DO UPDATE SET name = excluded.name,
                status = excluded.status, created_at = excluded.created_at,
                finished_at = excluded.finished_at, source = excluded.source,
                plan = excluded.plan""",
                (record.run_id, record.name, record.status, record.created_at,
                 record.finished_at, record.source, plan_text),
            )
            conn.execute("DELETE FROM steps WHERE run_id = ?", (record.run_id,))

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else _run(row)

    async def load_plan(self, run_id: str) -> Mapping[str, Any]:
        """The plan stored with the run."""
        with self._db.read() as conn:
            row = conn.execute("SELECT plan FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(run_id)
        return cast(Mapping[str, Any], json.loads(row[0]))

    async def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """Most recent first; runs created at the same time in the order they were stored."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        return [_run(row) for row in rows]

    async def set_run_status(self, run_id: str, status: RunStatus, at: float) -> bool:
        """Final statuses are set once."""
        with self._db.transaction() as conn:
            return self._set_run_status(conn, run_id, status, at)

    def _set_run_status(
        self, conn: sqlite3.Connection, run_id: str, status: RunStatus, at: float
    ) -> bool:
        row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(run_id)
        if row[0] in FINAL_RUN_STATUSES:
            return False
        finished = at if status in FINAL_RUN_STATUSES else None
        conn.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
            (status, finished, run_id),
        )
        return True

    # Steps --------------------------------------------------------------------------
    @staticmethod
    def _require_run(conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(run_id)

    @staticmethod
    def _get_step(conn: sqlite3.Connection, run_id: str, step: str) -> StepRecord | None:
        row = conn.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? AND step = ?", (run_id, step)
        ).fetchone()
        return None if row is None else _step(row)

    @staticmethod
    def _put_step(conn: sqlite3.Connection, run_id: str, record: StepRecord) -> None:
        # An upsert keeps the rowid, so get_steps() lists steps in first-touched order.
        conn.execute(
            f"""INSERT INTO steps (run_id, {_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (run_id, step) DO UPDATE SET state = excluded.state,
            attempts = excluded.attempts, error = excluded.error,
            started_at = excluded.started_at, finished_at = excluded.finished_at""",
            (run_id, record.step, record.state, record.attempts, record.error,
             record.started_at, record.finished_at),
        )

    async def claim_step(self, run_id: str, step: str, at: float) -> bool:
        """Pending to queued, once."""
        with self._db.transaction() as conn:
            return self._claim_step(conn, run_id, step, at)

    def _claim_step(self, conn: sqlite3.Connection, run_id: str, step: str, at: float) -> bool:
        self._require_run(conn, run_id)
        if self._get_step(conn, run_id, step) is not None:
            return False
        self._put_step(conn, run_id, StepRecord(step, "queued", started_at=at))
        return True

    async def update_step(
        self, run_id: str, step: str, state: StepState, *, attempts: int | None = None,
        error: str | None = None, at: float,
    ) -> None:
        """Progress of a step that is not final."""
        with self._db.transaction() as conn:
            self._update_step(conn, run_id, step, state, attempts, error, at)

    def _update_step(
        self, conn: sqlite3.Connection, run_id: str, step: str, state: StepState,
        attempts: int | None, error: str | None, at: float,
    ) -> None:
        self._require_run(conn, run_id)
        current = self._get_step(conn, run_id, step) or StepRecord(step, "pending", started_at=at)
        if current.final:
            return
        self._put_step(conn, run_id, replace(
            current,
            state=state,
            attempts=current.attempts if attempts is None else attempts,
            error=error if error is not None else current.error,
            started_at=current.started_at or at,
        ))

    async def finish_step(
        self, run_id: str, step: str, state: StepState, *, attempts: int = 0,
        error: str | None = None, at: float, batch: str | None = None,
    ) -> BatchCounters | bool:
        """Final once; counts into ``batch`` in the same transaction."""
        with self._db.transaction() as conn:
            return self._finish_step(conn, run_id, step, state, attempts, error, at, batch)

    def _finish_step(
        self, conn: sqlite3.Connection, run_id: str, step: str, state: StepState,
        attempts: int, error: str | None, at: float, batch: str | None,
    ) -> BatchCounters | bool:
        self._require_run(conn, run_id)
        current = self._get_step(conn, run_id, step)
        if current is not None and current.final:
            return False
        started = current.started_at if current else at
        self._put_step(conn, run_id, StepRecord(step, state, attempts, error, started, at))
        if batch is None:
            return True
        counters = self._counters(conn, run_id, batch)
        counters = replace(
            counters, done=counters.done + 1, failed=counters.failed + (state == "failed")
        )
        self._put_counters(conn, run_id, batch, counters)
        return counters

    async def mark_steps(self, run_id: str, steps: Sequence[str], state: StepState, at: float) -> None:
        """Final state for the listed steps that are not final, in one transaction."""
        with self._db.transaction() as conn:
            self._require_run(conn, run_id)
            for step in steps:
                current = self._get_step(conn, run_id, step)
                if current is None or not current.final:
                    self._put_step(conn, run_id, StepRecord(
                        step, state, current.attempts if current else 0, None,
                        current.started_at if current else None, at,
                    ))

    async def get_steps(self, run_id: str, steps: Sequence[str] | None = None) -> dict[str, StepRecord]:
        """Records of the listed steps, or all in the order they were first touched."""
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
        records = {row[0]: _step(row) for row in rows}
        if steps is None:
            return records
        return {s: records[s] for s in steps if s in records}

    # Batches ------------------------------------------------------------------------
    @staticmethod
    def _counters(conn: sqlite3.Connection, run_id: str, batch: str) -> BatchCounters:
        row = conn.execute(
            "SELECT claimed, done, failed, cancelled, cancel_flag FROM batches"
            " WHERE run_id = ? AND batch = ?",
            (run_id, batch),
        ).fetchone()
        if row is None:
            return BatchCounters()
        return BatchCounters(row[0], row[1], row[2], row[3], bool(row[4]))

    @staticmethod
    def _put_counters(
        conn: sqlite3.Connection, run_id: str, batch: str, counters: BatchCounters
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, batch, counters.claimed, counters.done, counters.failed,
             counters.cancelled, int(counters.cancel_flag)),
        )

    async def claim_members(self, run_id: str, batch: str, total: int, limit: int | None) -> range:
        """Next members, within the concurrency limit."""
        with self._db.transaction() as conn:
            return self._claim_members(conn, run_id, batch, total, limit)

    def _claim_members(
        self, conn: sqlite3.Connection, run_id: str, batch: str, total: int, limit: int | None
    ) -> range:
        counters = self._counters(conn, run_id, batch)
        if counters.cancel_flag or counters.claimed >= total:
            return range(0)
        room = total - counters.claimed
        if limit is not None:
            room = min(room, limit - (counters.claimed - counters.done))
        if room <= 0:
            return range(0)
        self._put_counters(conn, run_id, batch, replace(counters, claimed=counters.claimed + room))
        return range(counters.claimed, counters.claimed + room)

    async def cancel_members(self, run_id: str, batch: str, total: int) -> BatchCounters | None:
        """Cancel members not yet claimed, once."""
        with self._db.transaction() as conn:
            counters = self._counters(conn, run_id, batch)
            if counters.cancel_flag:
                return None
            started = min(counters.claimed, total)
            counters = replace(counters, cancel_flag=True, cancelled=total - started, claimed=total)
            self._put_counters(conn, run_id, batch, counters)
            return counters

    async def batch_counters(self, run_id: str, batch: str) -> BatchCounters:
        """Current counters."""
        with self._db.read() as conn:
            return self._counters(conn, run_id, batch)

    # Failed jobs ----------------------------------------------------------------------
    async def add_failed(self, record: FailedJob) -> None:
        """Keep the failure; the same id again replaces it."""
        values = (
            record.id, record.job, record.queue, _dumps(record.payload), record.exception,
            record.message, record.traceback, record.attempts, record.failed_at,
            record.run_id, record.step, _dumps(record.settings),
        )
        with self._db.transaction() as conn:
            conn.execute(
                f"""INSERT INTO failed_jobs ({_FAILED_COLUMNS})
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET
                job = excluded.job, queue = excluded.queue, payload = excluded.payload,
                exception = excluded.exception, message = excluded.message,
                traceback = excluded.traceback, attempts = excluded.attempts,
                failed_at = excluded.failed_at, run_id = excluded.run_id,
                step = excluded.step, settings = excluded.settings""",
                values,
            )

    async def list_failed(self, limit: int | None = None) -> list[FailedJob]:
        """Most recent first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_FAILED_COLUMNS} FROM failed_jobs"
                " ORDER BY failed_at DESC, rowid LIMIT ?",
                (-1 if limit is None else max(limit, 0),),
            ).fetchall()
        return [_failed(row) for row in rows]

    async def get_failed(self, failed_id: str) -> FailedJob | None:
        """One failure, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_FAILED_COLUMNS} FROM failed_jobs WHERE id = ?", (failed_id,)
            ).fetchone()
        return None if row is None else _failed(row)

    async def forget_failed(self, failed_id: str) -> bool:
        """Delete one."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM failed_jobs WHERE id = ?", (failed_id,)).rowcount > 0

    async def flush_failed(self) -> int:
        """Delete all; returns how many there were."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM failed_jobs").rowcount

    # Rate limits ----------------------------------------------------------------------
    async def hit_rate_limit(self, key: str, max_attempts: int, decay_seconds: float, now: float) -> float | None:
        """Sliding window of hit times per key, shared by every process on the file."""
        with self._db.transaction() as conn:
            return self._hit_rate_limit(conn, key, max_attempts, decay_seconds, now)

    @staticmethod
    def _hit_rate_limit(
        conn: sqlite3.Connection, key: str, max_attempts: int, decay_seconds: float, now: float
    ) -> float | None:
        conn.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, now - decay_seconds))
        count, oldest = conn.execute(
            "SELECT COUNT(*), MIN(at) FROM rate_hits WHERE key = ?", (key,)
        ).fetchone()
        if count < max_attempts:
            conn.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
            return None
        return (now if oldest is None else oldest) + decay_seconds
