"""A store in one sqlite file: the embedded default, safe for several local processes.

Every decision runs in its own ``BEGIN IMMEDIATE`` transaction (see
`arvel_flow.sqlite_db`), so two processes can never both see "not claimed yet".

Calls run directly on the event loop thread: each is a few indexed statements, well
under a millisecond, cheaper than handing off to a thread. Every decision is a private
``_name(conn, ...)`` method that expects an open transaction, so many of them can later
be grouped into one transaction for throughput.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import astuple, fields, replace
from pathlib import Path
from typing import Any, cast

from arvel_flow.errors import RunNotFoundError
from arvel_flow.lock.contracts import LockContract
from arvel_flow.lock.sqlite import SqliteLock
from arvel_flow.sqlite_db import SqliteDatabase, upsert
from arvel_flow.store.contracts import (
    FINAL_RUN_STATUSES,
    FINAL_STATES,
    BatchCounters,
    FailedJob,
    RunOwner,
    RunRecord,
    RunStatus,
    StepRecord,
    StepState,
    TickRecord,
)
from arvel_flow.store.memory_steps import StepTable

_RUN_COLUMNS = tuple(f.name for f in fields(RunRecord))
_TICK_COLUMNS = tuple(f.name for f in fields(TickRecord))
_STEP_COLUMNS = ("step", "state", "attempts", "error", "started_at", "finished_at")
_COUNTER_COLUMNS = ("claimed", "done", "failed", "cancelled", "cancel_flag")
_FAILED_COLUMNS = tuple(f.name for f in fields(FailedJob))
_OWNER_COLUMNS = tuple(f.name for f in fields(RunOwner))

_INSERT_RUN = (
    f"INSERT INTO runs ({', '.join((*_RUN_COLUMNS, 'plan'))})"
    f" VALUES ({', '.join('?' * (len(_RUN_COLUMNS) + 1))}) ON CONFLICT (run_id) DO NOTHING"
)
_UPSERT_STEP = upsert("steps", ("run_id", *_STEP_COLUMNS), ("run_id", "step"))
_UPSERT_COUNTERS = upsert("batches", ("run_id", "batch", *_COUNTER_COLUMNS), ("run_id", "batch"))
_UPSERT_FAILED = upsert("failed_jobs", _FAILED_COLUMNS, ("id",))
_UPSERT_OWNER = upsert("run_owners", ("run_id", *_OWNER_COLUMNS), ("run_id",))
_CHUNK = 500
"""Keys per ``IN (...)`` query: well under sqlite's limit on bound parameters."""
_FINAL = ", ".join(f"'{state}'" for state in sorted(FINAL_STATES))
_FINISH_STEP = (
    "INSERT INTO steps (run_id, step, state, attempts, error, started_at, finished_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step) DO UPDATE SET"
    " state = excluded.state, attempts = excluded.attempts, error = excluded.error,"
    " started_at = COALESCE(NULLIF(steps.started_at, 0), excluded.started_at),"
    f" finished_at = excluded.finished_at WHERE steps.state NOT IN ({_FINAL})"
)
_COUNT_MEMBER = (
    "INSERT INTO batches (run_id, batch, claimed, done, failed, cancelled, cancel_flag)"
    " VALUES (?, ?, 0, 1, ?3, 0, 0) ON CONFLICT (run_id, batch) DO UPDATE SET"
    " done = done + 1, failed = failed + excluded.failed"
    " RETURNING claimed, done, failed, cancelled, cancel_flag"
)
_SELECT_TICK = f"SELECT {', '.join(_TICK_COLUMNS)} FROM ticks"
_TICK_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _TICK_COLUMNS[1:])
_CLAIM_TICK = f"""INSERT INTO ticks ({", ".join(_TICK_COLUMNS)}) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (trigger) DO UPDATE SET {_TICK_UPDATES} WHERE excluded.at > ticks.at"""
_SELECT_RUN = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
_SELECT_STEP = f"SELECT {', '.join(_STEP_COLUMNS)} FROM steps"
_SELECT_COUNTERS = f"SELECT {', '.join(_COUNTER_COLUMNS)} FROM batches"
_SELECT_FAILED = f"SELECT {', '.join(_FAILED_COLUMNS)} FROM failed_jobs"
_SELECT_OWNER = f"SELECT {', '.join(_OWNER_COLUMNS)} FROM run_owners WHERE run_id = ?"
_ENDED = ", ".join(f"'{status}'" for status in sorted(FINAL_RUN_STATUSES))
_RUN_TABLES = ("steps", "batches", "run_owners", "runs")
"""Every table keyed by run, the run itself last."""


def _dumps(value: Mapping[str, Any], *, lenient: bool = False) -> str:
    # Failed-job payloads are lenient: recording a failure must not fail itself, so
    # values JSON cannot hold become text. Plans must be JSON-ready: a resume needs them.
    return json.dumps(dict(value), separators=(",", ":"), default=str if lenient else None)


def _failed_row(record: FailedJob) -> list[Any]:
    row = [getattr(record, name) for name in _FAILED_COLUMNS]
    for i, name in enumerate(_FAILED_COLUMNS):
        if name in ("payload", "settings"):
            row[i] = _dumps(row[i], lenient=True)
    return row


def _failed(row: Sequence[Any]) -> FailedJob:
    data = dict(zip(_FAILED_COLUMNS, row, strict=True))
    data.update(payload=json.loads(data["payload"]), settings=json.loads(data["settings"]))
    return FailedJob(**data)


def _starting_with(
    conn: sqlite3.Connection, table: str, column: str, prefix: str, limit: int
) -> list[str]:
    """Values of a key ``column`` that start with ``prefix``, in text order.

    No pattern (``LIKE``, ``GLOB``) is involved, so no character of ``prefix`` is
    special: the values ``>= prefix`` come in order, those that start with it first.
    """
    query = f"SELECT {column} FROM {table} WHERE {column} >= ? ORDER BY {column} LIMIT ?"
    rows = conn.execute(query, (prefix, max(limit, 0))).fetchall()
    return [row[0] for row in rows if row[0].startswith(prefix)]


def _failed_filter(
    *, before: float | None = None, run_id: str | None = None, job: str | None = None
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or nothing) and parameters of the failed-job filters given."""
    conditions: list[str] = []
    params: list[Any] = []
    for condition, value in (("failed_at < ?", before), ("run_id = ?", run_id), ("job = ?", job)):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), params


def _counters(row: Sequence[Any] | None) -> BatchCounters:
    if row is None:
        return BatchCounters()
    claimed, done, failed, cancelled, flag = row
    return BatchCounters(claimed, done, failed, cancelled, bool(flag))


class SqliteStore:
    """A `StoreContract` in a sqlite file, shared safely by processes on one machine.

    Args:
        path: The database file; it and its directory are created when missing.
        commit_interval: Seconds to group writes into one transaction (0: commit each
            write); see `arvel_flow.sqlite_db`.
        create: False for readers: a missing file reads as an empty store and nothing
            is created on disk.

    Raises:
        BackendError: The file cannot be opened or is not an arvel-flow database.
    """

    def __init__(
        self, path: str | Path, *, commit_interval: float = 0.0, create: bool = True
    ) -> None:
        self._db = SqliteDatabase(path, commit_interval=commit_interval, create=create)
        self._known_runs: set[str] = set()
        self._lock: LockContract | None = None
        self._counted: dict[tuple[str, str], BatchCounters] = {}
        """Batch counters counted in group `_counted_in` and not yet written (`_count_member`)."""
        self._counted_in: int | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    def lock(self) -> LockContract:
        """A `SqliteLock` on this store's connection, living as long as the store."""
        if self._lock is None:
            self._lock = SqliteLock(self._db)
        return self._lock

    async def close(self) -> None:
        """Close the database connection (the lock shares it)."""
        self._db.close()

    # Runs ---------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, plan: Mapping[str, Any]) -> bool:
        """Store the run and its plan, unless a run has its id (one statement)."""
        row = (*astuple(record), _dumps(plan))
        with self._db.transaction() as conn:
            return conn.execute(_INSERT_RUN, row).rowcount == 1

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT_RUN} WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else RunRecord(*row)

    async def load_plan(self, run_id: str) -> Mapping[str, Any]:
        """The plan stored with the run."""
        with self._db.read() as conn:
            row = conn.execute("SELECT plan FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(run_id)
        return cast(Mapping[str, Any], json.loads(row[0]))

    async def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """Most recent first; runs created at the same instant in the order stored."""
        query = f"{_SELECT_RUN} ORDER BY created_at DESC, rowid LIMIT ?"
        with self._db.read() as conn:
            rows = conn.execute(query, (max(limit, 0),)).fetchall()
        return [RunRecord(*row) for row in rows]

    async def set_run_status(self, run_id: str, status: RunStatus, at: float) -> bool:
        """Final statuses are set once."""
        with self._db.transaction() as conn:
            return self._set_run_status(conn, run_id, status, at)

    async def find_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Run ids starting with ``prefix``, in text order (a range of the primary key)."""
        with self._db.read() as conn:
            return _starting_with(conn, "runs", "run_id", prefix, limit)

    async def prune_runs(self, before: float, *, interrupted: bool = False) -> list[str]:
        """Delete ended runs and all that is kept for them, in one transaction."""
        where = f"(status IN ({_ENDED}) AND finished_at < ?)"
        params = [before]
        if interrupted:
            where += " OR (status = 'interrupted' AND created_at < ?)"
            params.append(before)
        with self._db.transaction() as conn:
            query = f"SELECT run_id FROM runs WHERE {where} ORDER BY created_at, rowid"
            pruned = [row[0] for row in conn.execute(query, params)]
            for start in range(0, len(pruned), _CHUNK):
                chunk = pruned[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                for table in _RUN_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
        self._known_runs.difference_update(pruned)
        return pruned

    @staticmethod
    def _set_run_status(conn: sqlite3.Connection, run_id: str, status: str, at: float) -> bool:
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

    # Run owners ---------------------------------------------------------------------
    async def take_run_owner(
        self, run_id: str, owner: RunOwner, *, replacing: str | None = None
    ) -> RunOwner:
        """Take or renew the lease unless another owner's is live (one transaction)."""
        with self._db.transaction() as conn:
            row = conn.execute(_SELECT_OWNER, (run_id,)).fetchone()
            current = None if row is None else RunOwner(*row)
            if (
                current is not None
                and current.owner_id not in (owner.owner_id, replacing)
                and current.expires_at > owner.seen_at
            ):
                return current
            conn.execute(_UPSERT_OWNER, (run_id, *astuple(owner)))
            return owner

    async def release_run_owner(self, run_id: str, owner_id: str) -> bool:
        """Drop the lease if ``owner_id`` holds it."""
        with self._db.transaction() as conn:
            query = "DELETE FROM run_owners WHERE run_id = ? AND owner_id = ?"
            return conn.execute(query, (run_id, owner_id)).rowcount > 0

    async def get_run_owner(self, run_id: str, at: float) -> RunOwner | None:
        """The owner whose lease is live at ``at``."""
        with self._db.read() as conn:
            row = conn.execute(_SELECT_OWNER, (run_id,)).fetchone()
        owner = None if row is None else RunOwner(*row)
        return owner if owner is not None and owner.expires_at > at else None

    # Steps --------------------------------------------------------------------------
    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        # Only ended runs are deleted (`prune_runs`), and nothing writes to those: once
        # seen, a run needs no query on the hot path.
        if run_id in self._known_runs:
            return
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(run_id)
        self._known_runs.add(run_id)

    @staticmethod
    def _get_step(conn: sqlite3.Connection, run_id: str, step: str) -> StepRecord | None:
        query = f"{_SELECT_STEP} WHERE run_id = ? AND step = ?"
        row = conn.execute(query, (run_id, step)).fetchone()
        return None if row is None else StepRecord(*row)

    @staticmethod
    def _put_step(conn: sqlite3.Connection, run_id: str, record: StepRecord) -> None:
        conn.execute(_UPSERT_STEP, (run_id, *astuple(record)))

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
        self,
        run_id: str,
        step: str,
        state: StepState,
        *,
        attempts: int | None = None,
        error: str | None = None,
        at: float,
    ) -> None:
        """Progress of a step that is not final."""
        with self._db.transaction() as conn:
            self._update_step(conn, run_id, step, state, attempts, error, at)

    def _update_step(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        step: str,
        state: StepState,
        attempts: int | None,
        error: str | None,
        at: float,
    ) -> None:
        self._require_run(conn, run_id)
        current = self._get_step(conn, run_id, step) or StepRecord(step, "pending", started_at=at)
        if current.final:
            return
        updated = replace(
            current,
            state=state,
            attempts=current.attempts if attempts is None else attempts,
            error=error if error is not None else current.error,
            started_at=current.started_at or at,
            finished_at=None,
        )
        self._put_step(conn, run_id, updated)

    async def finish_step(
        self,
        run_id: str,
        step: str,
        state: StepState,
        *,
        attempts: int = 0,
        error: str | None = None,
        at: float,
        batch: str | None = None,
    ) -> BatchCounters | bool:
        """Final once; counts into ``batch`` in the same transaction.

        Once per job: checked first, then written with no savepoint (see
        `SqliteDatabase.transaction`).
        """
        if run_id not in self._known_runs:
            with self._db.read() as conn:
                self._require_run(conn, run_id)
        with self._db.transaction(savepoint=False) as conn:
            return self._finish_step(conn, run_id, step, state, attempts, error, at, batch)

    async def finish_and_claim(
        self,
        run_id: str,
        step: str,
        state: StepState,
        following: str,
        *,
        attempts: int = 0,
        error: str | None = None,
        at: float,
    ) -> tuple[bool, bool]:
        """`finish_step`, then `claim_step` of ``following``, in one transaction."""
        if run_id not in self._known_runs:
            with self._db.read() as conn:
                self._require_run(conn, run_id)
        with self._db.transaction(savepoint=False) as conn:
            if not self._finish_step(conn, run_id, step, state, attempts, error, at, None):
                return False, False
            return True, self._claim_step(conn, run_id, following, at)

    def _finish_step(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        step: str,
        state: StepState,
        attempts: int,
        error: str | None,
        at: float,
        batch: str | None,
    ) -> BatchCounters | bool:
        # The hot path, once per job: one statement for the step (inside a group the
        # batch's counters are counted in memory, `_count_member`). The upsert changes
        # nothing (rowcount 0) when the step is final.
        self._require_run(conn, run_id)
        finished = conn.execute(_FINISH_STEP, (run_id, step, state, attempts, error, at, at))
        if finished.rowcount == 0:
            return False
        if batch is None:
            return True
        return self._count_member(conn, run_id, batch, state == "failed")

    def _count_member(
        self, conn: sqlite3.Connection, run_id: str, batch: str, failed: bool
    ) -> BatchCounters:
        """Count a finished member into its batch's counters; the counters after.

        Inside a group, this process holds the file's write lock until the group
        commits, so no one else can change the counters meanwhile: they are read once
        per group, counted in memory, and written once, before anything else reads the
        file and before the commit (`SqliteDatabase.defer`). One statement per job
        fewer, the same file at every commit.
        """
        group = self._db.current_group
        if group is None:
            row = conn.execute(_COUNT_MEMBER, (run_id, batch, int(failed))).fetchone()
            return _counters(row)
        if group != self._counted_in:  # what was counted belongs to a group that is gone
            self._counted = {}
            self._counted_in = group
        key = (run_id, batch)
        counters = self._counted.get(key)
        if counters is None:
            counters = self._counters(conn, run_id, batch)
            self._db.defer(self._write_counted)
        counted = BatchCounters(
            counters.claimed,
            counters.done + 1,
            counters.failed + int(failed),
            counters.cancelled,
            counters.cancel_flag,
        )
        self._counted[key] = counted
        return counted

    def _write_counted(self, conn: sqlite3.Connection) -> None:
        """Write the counters `_count_member` kept, and read them from the file again."""
        counted, self._counted = self._counted, {}
        for (run_id, batch), counters in counted.items():
            self._put_counters(conn, run_id, batch, counters)

    async def mark_steps(
        self, run_id: str, steps: Sequence[str], state: StepState, at: float
    ) -> None:
        """Final state for the listed steps that are not final, in one transaction."""
        with self._db.transaction() as conn:
            self._require_run(conn, run_id)
            for step in steps:
                current = self._get_step(conn, run_id, step)
                if current is None:
                    self._put_step(conn, run_id, StepRecord(step, state, finished_at=at))
                elif not current.final:
                    marked = replace(current, state=state, error=None, finished_at=at)
                    self._put_step(conn, run_id, marked)

    async def get_steps(
        self, run_id: str, steps: Sequence[str] | None = None
    ) -> Mapping[str, StepRecord]:
        """Records of the listed steps, or all (a `StepTable`: finished fan-out members
        compact, so a million-member run is not read into a million records)."""
        with self._db.read() as conn:
            self._require_run(conn, run_id)
            if steps is None:
                query = f"{_SELECT_STEP} WHERE run_id = ? ORDER BY rowid"
                table = StepTable()
                for row in conn.execute(query, (run_id,)):
                    table.put(row[0], StepRecord(*row))
                return table
            records: dict[str, StepRecord] = {}
            for start in range(0, len(steps), _CHUNK):
                chunk = list(steps[start : start + _CHUNK])
                marks = ", ".join("?" * len(chunk))
                query = f"{_SELECT_STEP} WHERE run_id = ? AND step IN ({marks})"
                records.update(
                    (row[0], StepRecord(*row)) for row in conn.execute(query, (run_id, *chunk))
                )
        return {s: records[s] for s in steps if s in records}

    async def settle_retried_step(
        self, run_id: str, step: str, *, attempts: int, at: float
    ) -> bool:
        """Failed to succeeded, for a retry that succeeded (one statement)."""
        with self._db.transaction() as conn:
            self._require_run(conn, run_id)
            settled = conn.execute(
                "UPDATE steps SET state = 'succeeded', attempts = ?, error = NULL,"
                " finished_at = ? WHERE run_id = ? AND step = ? AND state = 'failed'",
                (attempts, at, run_id, step),
            )
            return settled.rowcount > 0

    async def reopen_run(
        self,
        run_id: str,
        steps: Sequence[str],
        counters: Mapping[str, BatchCounters],
        at: float,
    ) -> bool:
        """Running again, the steps forgotten, the counters set: one transaction."""
        with self._db.transaction() as conn:
            reopened = conn.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL"
                " WHERE run_id = ? AND status = 'failed'",
                (run_id,),
            )
            if reopened.rowcount == 0:
                self._require_run(conn, run_id)
                return False
            conn.executemany(
                "DELETE FROM steps WHERE run_id = ? AND step = ?",
                [(run_id, step) for step in steps],
            )
            for batch, batch_counters in counters.items():
                self._put_counters(conn, run_id, batch, batch_counters)
            return True

    # Batches ------------------------------------------------------------------------
    @staticmethod
    def _counters(conn: sqlite3.Connection, run_id: str, batch: str) -> BatchCounters:
        query = f"{_SELECT_COUNTERS} WHERE run_id = ? AND batch = ?"
        return _counters(conn.execute(query, (run_id, batch)).fetchone())

    @staticmethod
    def _put_counters(
        conn: sqlite3.Connection, run_id: str, batch: str, counters: BatchCounters
    ) -> None:
        conn.execute(_UPSERT_COUNTERS, (run_id, batch, *astuple(counters)))

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
            return self._cancel_members(conn, run_id, batch, total)

    def _cancel_members(
        self, conn: sqlite3.Connection, run_id: str, batch: str, total: int
    ) -> BatchCounters | None:
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
        row = _failed_row(record)
        with self._db.transaction() as conn:
            conn.execute(_UPSERT_FAILED, row)

    async def list_failed(
        self, limit: int | None = None, *, run_id: str | None = None
    ) -> list[FailedJob]:
        """Most recent first; failures at the same instant in the order stored."""
        where, params = _failed_filter(run_id=run_id)
        query = f"{_SELECT_FAILED} {where} ORDER BY failed_at DESC, rowid LIMIT ?"
        params.append(-1 if limit is None else max(limit, 0))
        with self._db.read() as conn:
            rows = conn.execute(query, params).fetchall()
        return [_failed(row) for row in rows]

    async def find_failed_ids(self, prefix: str, limit: int) -> list[str]:
        """Failed-job ids starting with ``prefix``, in text order."""
        with self._db.read() as conn:
            return _starting_with(conn, "failed_jobs", "id", prefix, limit)

    async def get_failed(self, failed_id: str) -> FailedJob | None:
        """One failure, or None."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT_FAILED} WHERE id = ?", (failed_id,)).fetchone()
        return None if row is None else _failed(row)

    async def forget_failed(self, failed_id: str) -> bool:
        """Delete one."""
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM failed_jobs WHERE id = ?", (failed_id,)).rowcount > 0

    async def flush_failed(
        self,
        *,
        before: float | None = None,
        run_id: str | None = None,
        job: str | None = None,
    ) -> int:
        """Delete those that match every filter given (one statement)."""
        where, params = _failed_filter(before=before, run_id=run_id, job=job)
        with self._db.transaction() as conn:
            return conn.execute(f"DELETE FROM failed_jobs {where}", params).rowcount

    # Rate limits ----------------------------------------------------------------------
    async def claim_tick(self, record: TickRecord) -> bool:
        """Keep ``record`` if it is later than the trigger's last tick (one transaction)."""
        row = astuple(record)
        with self._db.transaction() as conn:
            cursor = conn.execute(_CLAIM_TICK, row)
            return cursor.rowcount == 1

    async def last_tick(self, trigger: str) -> TickRecord | None:
        """The last claimed tick."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT_TICK} WHERE trigger = ?", (trigger,)).fetchone()
        return None if row is None else TickRecord(*row)

    async def hit_rate_limit(
        self, key: str, max_attempts: int, decay_seconds: float, now: float
    ) -> float | None:
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
        # MIN is NULL only when max_attempts < 1 and the window is empty.
        return (now if oldest is None else oldest) + decay_seconds
