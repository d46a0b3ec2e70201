"""The store contract: run state, batch counters, failed jobs and rate-limit windows.

One store holds everything that must outlive a process. Every method that decides
something (a claim, a finish, a counter) is atomic in every driver, so that several
workers sharing a store agree, and idempotent where a redelivered message may repeat
it: finishing a step twice counts it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from arvel_flow.lock.contracts import LockContract

StepState = Literal[
    "pending",
    "queued",
    "running",
    "retrying",
    "released",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
    "duplicate",
]
FINAL_STATES: frozenset[str] = frozenset(
    {"succeeded", "failed", "skipped", "cancelled", "duplicate"}
)
"""States a step never leaves."""

RunStatus = Literal["running", "interrupted", "succeeded", "failed"]
FINAL_RUN_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a pipeline or flow: its id, name and status."""

    run_id: str
    name: str
    status: RunStatus = "running"
    created_at: float = 0.0
    finished_at: float | None = None
    source: str | None = None
    """The pipeline file it was started from, when there was one."""
    trigger: str | None = None
    """The schedule trigger that started it (``pipeline/trigger``), when one did."""
    scheduled_at: float | None = None
    """The tick of ``trigger`` it was started for."""


def is_prunable(run: RunRecord, before: float, *, interrupted: bool = False) -> bool:
    """Whether `StoreContract.prune_runs` deletes ``run`` (see there)."""
    if run.status in FINAL_RUN_STATUSES:
        return run.finished_at is not None and run.finished_at < before
    return interrupted and run.status == "interrupted" and run.created_at < before


@dataclass(frozen=True, slots=True)
class StepRecord:
    """The state of one step (job, chain, batch or callback) of a run."""

    step: str
    state: StepState
    attempts: int = 0
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def final(self) -> bool:
        """True once the step can no longer change."""
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class BatchCounters:
    """Where a batch stands: members claimed (started), finished, failed, cancelled.

    ``claimed`` may run past the member count once the batch is cancelled; members
    ``[0, min(claimed, total))`` were started, the rest were cancelled.
    """

    claimed: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    cancel_flag: bool = False

    def settled(self, total: int) -> bool:
        """True when every member has finished or been cancelled."""
        return self.done + self.cancelled >= total


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job that failed permanently, as kept in the failed-jobs store.

    ``payload`` has sensitive fields redacted; the run's plan keeps the real ones.
    """

    id: str
    job: str
    queue: str
    payload: Mapping[str, Any]
    exception: str
    message: str
    traceback: str
    attempts: int
    failed_at: float
    run_id: str | None = None
    step: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TickRecord:
    """One tick of a schedule trigger, claimed by the one scheduler that starts it.

    The tick id is ``trigger`` plus ``at``. ``run_id`` is the run it starts (made up
    before the claim, so the claim names it), or None when the tick starts no run
    (``note`` says why: a run of the trigger was still running, say).
    """

    trigger: str
    """``pipeline/trigger``."""
    at: float
    """The scheduled time."""
    claimed_at: float
    run_id: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RunOwner:
    """The process that executes a run, as its lease in the store records it.

    A process that runs jobs of a run in place (not through workers) holds the run's
    lease and renews it while it lives; ``expires_at`` is ``seen_at`` plus the lease's
    length. Another process may take the run over only once the lease has expired, or
    when it names this owner as one it found gone.
    """

    owner_id: str
    host: str
    pid: int
    started_at: float
    seen_at: float
    """When the owner last took or renewed its lease."""
    expires_at: float


@runtime_checkable
class StoreContract(Protocol):
    """What the runner, the orchestration and the CLI need from a store."""

    def lock(self) -> LockContract:
        """The lock driver that keeps its locks in this store."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...

    # Runs ---------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, plan: Mapping[str, Any]) -> bool:
        """Store a new run with the JSON-ready plan it will follow, if its id is new.

        Atomic create-if-absent: False, and nothing written, when a run with this id
        exists (two schedulers starting a tick's run, whose id is the tick's, make one).
        """
        ...

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None when unknown."""
        ...

    async def load_plan(self, run_id: str) -> Mapping[str, Any]:
        """The plan the run started with; raises `RunNotFoundError` when unknown."""
        ...

    async def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs first."""
        ...

    async def set_run_status(self, run_id: str, status: RunStatus, at: float) -> bool:
        """Move a run to ``status``; a final status is set once (True that time only)."""
        ...

    async def find_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Ids of the runs that start with ``prefix``, in text order, at most ``limit``.

        ``prefix`` is plain text: no character in it is a pattern (``%``, ``_``, ``*``
        and ``[`` match only themselves).
        """
        ...

    async def prune_runs(self, before: float, *, interrupted: bool = False) -> list[str]:
        """Delete ended runs with their plans, steps, batch counters and leases, atomically.

        Succeeded and failed runs that finished before ``before`` go; with
        ``interrupted``, so do interrupted runs created before it. A running run is
        never deleted, nor are failed-job records (``flush_failed`` deletes those).
        Returns the ids of the deleted runs.
        """
        ...

    # Run owners ---------------------------------------------------------------------
    async def take_run_owner(
        self, run_id: str, owner: RunOwner, *, replacing: str | None = None
    ) -> RunOwner:
        """Make ``owner`` the run's owner until ``owner.expires_at``, atomically.

        The lease is taken (or renewed) when nobody holds it, when its holder's lease
        expired (by ``owner.seen_at``), or when it is held by ``owner.owner_id`` itself
        or by ``replacing`` (an owner the caller found gone). Returns who holds the
        lease afterwards: ``owner`` when taken, else the live holder, unchanged.
        """
        ...

    async def release_run_owner(self, run_id: str, owner_id: str) -> bool:
        """Give the run's lease up if ``owner_id`` holds it; True when released."""
        ...

    async def get_run_owner(self, run_id: str, at: float) -> RunOwner | None:
        """The run's owner if its lease is live at ``at``, else None."""
        ...

    # Steps --------------------------------------------------------------------------
    async def claim_step(self, run_id: str, step: str, at: float) -> bool:
        """Move a step from pending to queued; True only for the one caller that did."""
        ...

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
        """Record progress of a step that is not final (never overwrites a final state)."""
        ...

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
        """Make a step final, once.

        Returns False when the step was already final (a repeat: do nothing more).
        Otherwise, with ``batch`` (the batch the step is a member of) its counters are
        updated in the same atomic step (``done`` + 1, ``failed`` + 1 if ``state`` is
        failed) and returned; without, True.
        """
        ...

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
        """`finish_step` of a chain's step, then `claim_step` of ``following``, atomically.

        ``following`` is claimed only when the finish was not a repeat. Returns whether
        the step was finished, and whether ``following`` was claimed: a chain advances
        in one store round trip rather than two.
        """
        ...

    async def mark_steps(
        self, run_id: str, steps: Sequence[str], state: StepState, at: float
    ) -> None:
        """Set a final state on every listed step that is not final yet (skipped, ...)."""
        ...

    async def get_steps(
        self, run_id: str, steps: Sequence[str] | None = None
    ) -> Mapping[str, StepRecord]:
        """Records of the listed steps (all when None); steps never touched are absent.

        What the store holds when called (later writes do not show in it). A driver
        may make the records as they are read (the memory store keeps finished
        fan-out members compact): read a whole run's mapping by key or once through.
        """
        ...

    async def settle_retried_step(
        self, run_id: str, step: str, *, attempts: int, at: float
    ) -> bool:
        """Mark a failed step succeeded: its job was retried (``failed retry``) and succeeded.

        The one change of a final state: only ``failed`` becomes ``succeeded`` (error
        cleared, ``finished_at`` the retry's). True when the step was failed.
        """
        ...

    async def reopen_run(
        self,
        run_id: str,
        steps: Sequence[str],
        counters: Mapping[str, BatchCounters],
        at: float,
    ) -> bool:
        """Continue a failed run: make it running, forget ``steps``, set batch ``counters``.

        The forgotten steps are pending again; ``counters`` replaces the counters of each
        batch it names. All or nothing, and only while the run is ``failed``: True for
        the one caller that reopened it.
        """
        ...

    # Batches ------------------------------------------------------------------------
    async def claim_members(self, run_id: str, batch: str, total: int, limit: int | None) -> range:
        """Claim the next members to start, atomically.

        At most ``limit`` members may be running (claimed and not done) at once; none
        are claimed once the batch is cancelled. Returns the claimed member indexes.
        """
        ...

    async def cancel_members(self, run_id: str, batch: str, total: int) -> BatchCounters | None:
        """Cancel every member not yet claimed, once; None if already cancelled."""
        ...

    async def batch_counters(self, run_id: str, batch: str) -> BatchCounters:
        """The batch's counters (all zero before anything happened)."""
        ...

    # Failed jobs ----------------------------------------------------------------------
    async def add_failed(self, record: FailedJob) -> None:
        """Record a permanent failure."""
        ...

    async def list_failed(
        self, limit: int | None = None, *, run_id: str | None = None
    ) -> list[FailedJob]:
        """Failed jobs, the most recent first; with ``run_id``, only that run's."""
        ...

    async def find_failed_ids(self, prefix: str, limit: int) -> list[str]:
        """Ids of the failed jobs that start with ``prefix`` (plain text, as for runs),
        in text order, at most ``limit``."""
        ...

    async def get_failed(self, failed_id: str) -> FailedJob | None:
        """One failed job, or None."""
        ...

    async def forget_failed(self, failed_id: str) -> bool:
        """Delete one failed job; True when it existed."""
        ...

    async def flush_failed(
        self,
        *,
        before: float | None = None,
        run_id: str | None = None,
        job: str | None = None,
    ) -> int:
        """Delete failed jobs, atomically; returns how many were deleted.

        Every one, or only those that failed before ``before``, belong to the run
        ``run_id`` and ran the job ``job`` (its class path), for each filter given.
        """
        ...

    # Schedule ticks -------------------------------------------------------------------
    async def claim_tick(self, record: TickRecord) -> bool:
        """Make ``record`` its trigger's last tick if it is later than the last, atomically.

        True for the one caller that did: among schedulers sharing the store, each tick
        is claimed once, and a tick earlier than the last claimed one never is.
        """
        ...

    async def last_tick(self, trigger: str) -> TickRecord | None:
        """The trigger's last claimed tick, or None before its first."""
        ...

    # Rate limits ----------------------------------------------------------------------
    async def hit_rate_limit(
        self, key: str, max_attempts: int, decay_seconds: float, now: float
    ) -> float | None:
        """Count one hit in the sliding window of ``key``, if it fits.

        None when the hit was allowed and counted; otherwise the time (same clock as
        ``now``) at which the oldest hit leaves the window, and nothing is counted.
        """
        ...
