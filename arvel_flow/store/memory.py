"""A store in this process's memory: for tests and throwaway runs."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from arvel_flow.errors import RunNotFoundError
from arvel_flow.lock.contracts import LockContract
from arvel_flow.lock.memory import MemoryLock
from arvel_flow.store.contracts import (
    FINAL_RUN_STATUSES,
    BatchCounters,
    FailedJob,
    RunOwner,
    RunRecord,
    RunStatus,
    StepRecord,
    StepState,
    TickRecord,
    is_prunable,
)
from arvel_flow.store.memory_steps import StepTable

_ZERO = BatchCounters()


class MemoryStore:
    """A `StoreContract` in dicts. Atomic because no method awaits before it is done."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = MemoryLock(clock)
        self._runs: dict[str, RunRecord] = {}
        self._plans: dict[str, Mapping[str, Any]] = {}
        self._steps: dict[str, StepTable] = {}
        self._batches: dict[tuple[str, str], BatchCounters] = {}
        self._failed: dict[str, FailedJob] = {}
        self._windows: dict[str, deque[float]] = {}
        self._owners: dict[str, RunOwner] = {}
        self._ticks: dict[str, TickRecord] = {}

    def lock(self) -> LockContract:
        """A `MemoryLock` living as long as this store."""
        return self._lock

    async def close(self) -> None:
        """Nothing to release."""

    async def create_run(self, record: RunRecord, plan: Mapping[str, Any]) -> bool:
        """Keep the run and its plan (not copied: plans are never mutated), if new."""
        if record.run_id in self._runs:
            return False
        self._runs[record.run_id] = record
        self._plans[record.run_id] = plan
        self._steps[record.run_id] = StepTable()
        return True

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        return self._runs.get(run_id)

    async def load_plan(self, run_id: str) -> Mapping[str, Any]:
        """The stored plan."""
        try:
            return self._plans[run_id]
        except KeyError:
            raise RunNotFoundError(run_id) from None

    async def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """Most recent first."""
        return sorted(self._runs.values(), key=lambda r: r.created_at, reverse=True)[:limit]

    async def set_run_status(self, run_id: str, status: RunStatus, at: float) -> bool:
        """Final statuses are set once."""
        record = self._runs.get(run_id)
        if record is None:
            raise RunNotFoundError(run_id)
        if record.status in FINAL_RUN_STATUSES:
            return False
        finished = at if status in FINAL_RUN_STATUSES else None
        self._runs[run_id] = replace(record, status=status, finished_at=finished)
        return True

    async def find_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Run ids starting with ``prefix``, in text order."""
        return sorted(r for r in self._runs if r.startswith(prefix))[: max(limit, 0)]

    async def prune_runs(self, before: float, *, interrupted: bool = False) -> list[str]:
        """Forget ended runs and all that is kept for them."""
        pruned = [
            run.run_id
            for run in self._runs.values()
            if is_prunable(run, before, interrupted=interrupted)
        ]
        for run_id in pruned:
            del self._runs[run_id]
            self._plans.pop(run_id, None)
            self._steps.pop(run_id, None)
            self._owners.pop(run_id, None)
        gone = set(pruned)
        for key in [key for key in self._batches if key[0] in gone]:
            del self._batches[key]
        return pruned

    async def take_run_owner(
        self, run_id: str, owner: RunOwner, *, replacing: str | None = None
    ) -> RunOwner:
        """Take or renew the lease unless another owner's is live."""
        current = self._owners.get(run_id)
        if (
            current is not None
            and current.owner_id not in (owner.owner_id, replacing)
            and current.expires_at > owner.seen_at
        ):
            return current
        self._owners[run_id] = owner
        return owner

    async def release_run_owner(self, run_id: str, owner_id: str) -> bool:
        """Drop the lease if ``owner_id`` holds it."""
        current = self._owners.get(run_id)
        if current is None or current.owner_id != owner_id:
            return False
        del self._owners[run_id]
        return True

    async def get_run_owner(self, run_id: str, at: float) -> RunOwner | None:
        """The owner whose lease is live at ``at``."""
        current = self._owners.get(run_id)
        return current if current is not None and current.expires_at > at else None

    def _run_steps(self, run_id: str) -> StepTable:
        try:
            return self._steps[run_id]
        except KeyError:
            raise RunNotFoundError(run_id) from None

    async def claim_step(self, run_id: str, step: str, at: float) -> bool:
        """Pending to queued, once."""
        steps = self._run_steps(run_id)
        if step in steps:
            return False
        steps.put(step, StepRecord(step, "queued", started_at=at))
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
        steps = self._run_steps(run_id)
        current = steps.get(step) or StepRecord(step, "pending", started_at=at)
        if current.final:
            return
        steps.put(
            step,
            StepRecord(
                step,
                state,
                current.attempts if attempts is None else attempts,
                error if error is not None else current.error,
                current.started_at or at,
            ),
        )

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
        """Final once; counts into ``batch`` in the same step."""
        steps = self._run_steps(run_id)
        current = steps.get(step)
        if current is not None and current.final:
            return False
        started = current.started_at if current else at
        steps.put(step, StepRecord(step, state, attempts, error, started, at))
        if batch is None:
            return True
        old = self._batches.get((run_id, batch), _ZERO)
        counters = BatchCounters(
            old.claimed,
            old.done + 1,
            old.failed + (state == "failed"),
            old.cancelled,
            old.cancel_flag,
        )
        self._batches[(run_id, batch)] = counters
        return counters

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
        """`finish_step`, then `claim_step` of ``following`` unless it was a repeat."""
        if not await self.finish_step(run_id, step, state, attempts=attempts, error=error, at=at):
            return False, False
        return True, await self.claim_step(run_id, following, at)

    async def mark_steps(
        self, run_id: str, steps: Sequence[str], state: StepState, at: float
    ) -> None:
        """Final state for steps that are not final."""
        records = self._run_steps(run_id)
        for step in steps:
            current = records.get(step)
            if current is None or not current.final:
                records.put(
                    step,
                    StepRecord(
                        step,
                        state,
                        current.attempts if current else 0,
                        None,
                        current.started_at if current else None,
                        at,
                    ),
                )

    async def get_steps(
        self, run_id: str, steps: Sequence[str] | None = None
    ) -> Mapping[str, StepRecord]:
        """Records of the listed steps, or all (a `StepTable` snapshot: compact, lazy)."""
        records = self._run_steps(run_id)
        if steps is None:
            return records.snapshot()
        found = {s: records.get(s) for s in steps}
        return {s: record for s, record in found.items() if record is not None}

    async def settle_retried_step(
        self, run_id: str, step: str, *, attempts: int, at: float
    ) -> bool:
        """Failed to succeeded, for a retry that succeeded."""
        records = self._run_steps(run_id)
        current = records.get(step)
        if current is None or current.state != "failed":
            return False
        records.put(
            step, replace(current, state="succeeded", attempts=attempts, error=None, finished_at=at)
        )
        return True

    async def reopen_run(
        self,
        run_id: str,
        steps: Sequence[str],
        counters: Mapping[str, BatchCounters],
        at: float,
    ) -> bool:
        """Running again, the steps forgotten, the counters set; only from failed."""
        record = self._runs.get(run_id)
        if record is None:
            raise RunNotFoundError(run_id)
        if record.status != "failed":
            return False
        self._runs[run_id] = replace(record, status="running", finished_at=None)
        records = self._run_steps(run_id)
        for step in steps:
            records.remove(step)
        for batch, batch_counters in counters.items():
            self._batches[(run_id, batch)] = batch_counters
        return True

    async def claim_members(self, run_id: str, batch: str, total: int, limit: int | None) -> range:
        """Next members, within the concurrency limit."""
        counters = self._batches.get((run_id, batch), BatchCounters())
        if counters.cancel_flag or counters.claimed >= total:
            return range(0)
        room = total - counters.claimed
        if limit is not None:
            room = min(room, limit - (counters.claimed - counters.done))
        if room <= 0:
            return range(0)
        self._batches[(run_id, batch)] = replace(counters, claimed=counters.claimed + room)
        return range(counters.claimed, counters.claimed + room)

    async def cancel_members(self, run_id: str, batch: str, total: int) -> BatchCounters | None:
        """Cancel members not yet claimed, once."""
        counters = self._batches.get((run_id, batch), BatchCounters())
        if counters.cancel_flag:
            return None
        started = min(counters.claimed, total)
        counters = replace(counters, cancel_flag=True, cancelled=total - started, claimed=total)
        self._batches[(run_id, batch)] = counters
        return counters

    async def batch_counters(self, run_id: str, batch: str) -> BatchCounters:
        """Current counters."""
        return self._batches.get((run_id, batch), BatchCounters())

    async def add_failed(self, record: FailedJob) -> None:
        """Keep the failure."""
        self._failed[record.id] = record

    async def list_failed(
        self, limit: int | None = None, *, run_id: str | None = None
    ) -> list[FailedJob]:
        """Most recent first."""
        records = [r for r in self._failed.values() if run_id is None or r.run_id == run_id]
        records.sort(key=lambda r: r.failed_at, reverse=True)
        return records[:limit] if limit is not None else records

    async def find_failed_ids(self, prefix: str, limit: int) -> list[str]:
        """Failed-job ids starting with ``prefix``, in text order."""
        return sorted(i for i in self._failed if i.startswith(prefix))[: max(limit, 0)]

    async def get_failed(self, failed_id: str) -> FailedJob | None:
        """One failure."""
        return self._failed.get(failed_id)

    async def forget_failed(self, failed_id: str) -> bool:
        """Delete one."""
        return self._failed.pop(failed_id, None) is not None

    async def flush_failed(
        self,
        *,
        before: float | None = None,
        run_id: str | None = None,
        job: str | None = None,
    ) -> int:
        """Delete those that match every filter given."""
        doomed = [
            record.id
            for record in self._failed.values()
            if (before is None or record.failed_at < before)
            and (run_id is None or record.run_id == run_id)
            and (job is None or record.job == job)
        ]
        for failed_id in doomed:
            del self._failed[failed_id]
        return len(doomed)

    async def claim_tick(self, record: TickRecord) -> bool:
        """Keep ``record`` if it is later than the trigger's last tick."""
        last = self._ticks.get(record.trigger)
        if last is not None and last.at >= record.at:
            return False
        self._ticks[record.trigger] = record
        return True

    async def last_tick(self, trigger: str) -> TickRecord | None:
        """The last claimed tick."""
        return self._ticks.get(trigger)

    async def hit_rate_limit(
        self, key: str, max_attempts: int, decay_seconds: float, now: float
    ) -> float | None:
        """Sliding window of hit times per key."""
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - decay_seconds:
            window.popleft()
        if len(window) < max_attempts:
            window.append(now)
            return None
        return window[0] + decay_seconds
