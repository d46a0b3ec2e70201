"""What every driver shares: the runner, the orchestration, and the job API on top."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from arvel_flow.lock.contracts import LockContract
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.orchestrator import Orchestrator
from arvel_flow.queue.plan import FanOutNode, JobNode, Matrix, Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.runner import (
    Failed,
    JobRunner,
    Outcome,
    Released,
    Retrying,
    Succeeded,
)
from arvel_flow.queue.targets import JobRef, check_sendable
from arvel_flow.store.contracts import StepState, StoreContract


def fan_out_items(fan_out: FanOutNode) -> Iterator[Mapping[str, Any]]:
    """The values a fan-out adds to its job's parameters: a matrix's axes, not its product."""
    if isinstance(fan_out.items, Matrix):
        for name, values in fan_out.items.axes.items():
            yield from ({name: value} for value in values)
    else:
        yield from fan_out.items


class BaseQueue:
    """A driver's common part; subclasses say how envelopes travel (`_send`).

    Every driver executes through the same `JobRunner`, so a job behaves the same
    under each. Store and lock come in through the constructor (memory ones by
    default).
    """

    def __init__(
        self,
        *,
        store: StoreContract | None = None,
        lock: LockContract | None = None,
        events: EventBus | None = None,
        clock: Clock | None = None,
        allowed_modules: tuple[str, ...] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # The runner fills in the defaults; the queue shares what it settled on.
        self.runner = JobRunner(
            store=store,
            lock=lock,
            events=events,
            clock=clock,
            allowed_modules=allowed_modules,
            rng=rng,
        )
        self.store = self.runner.store
        self.lock = self.runner.lock
        self.events = self.runner.events
        self.clock = self.runner.clock
        self.orchestrator = Orchestrator(
            store=self.store,
            guard=self.runner.guard,
            events=self.events,
            clock=self.clock,
            send=self._deliver,
        )

    # QueueContract ----------------------------------------------------------------------

    async def dispatch(self, job: Any) -> str | None:
        """Queue one job; its message id, or None when refused as a duplicate."""
        return (await self.bulk([job]))[0]

    async def later(self, delay: float, job: Any) -> str | None:
        """Queue one job to run after ``delay`` seconds."""
        envelope = Envelope(JobRef.of(job), new_id(), available_at=self.clock.now() + delay)
        return (await self._dispatch_envelopes([envelope]))[0]

    async def bulk(self, jobs: Sequence[Any]) -> list[str | None]:
        """Queue several jobs in one go."""
        envelopes = []
        for job in jobs:
            ref = JobRef.of(job)
            delay = ref.settings.delay
            envelopes.append(
                Envelope(ref, new_id(), available_at=self.clock.now() + delay if delay else 0.0)
            )
        return await self._dispatch_envelopes(envelopes)

    async def size(self, queue_name: str = "default") -> int:
        """Jobs waiting in ``queue_name``; drivers that hold no queue report 0."""
        return 0

    @property
    def sends_remotely(self) -> bool:
        """Whether jobs leave this process (to workers): no secret given in Python may."""
        return False

    async def _dispatch_envelopes(self, envelopes: Sequence[Envelope]) -> list[str | None]:
        if self.sends_remotely:
            check_sendable(envelope.job for envelope in envelopes)
        accepted: list[Envelope] = []
        ids: list[str | None] = []
        for envelope in envelopes:
            claimed = await self.orchestrator.claim_unique(envelope)
            ids.append(None if claimed is None else claimed.id)
            if claimed is not None:
                accepted.append(claimed)
        await self._deliver(accepted)
        return ids

    # FlowQueue --------------------------------------------------------------------------

    async def start(
        self, plan: Plan, *, source: str | None = None, run_id: str | None = None
    ) -> str:
        """Start a run of ``plan`` (under ``run_id`` if given); its id."""
        if self.sends_remotely:
            fan_outs = [n for n in plan.nodes.values() if isinstance(n, FanOutNode)]
            check_sendable(
                (
                    node.job
                    for node in plan.nodes.values()
                    if isinstance(node, JobNode | FanOutNode)
                ),
                (item for fan_out in fan_outs for item in fan_out_items(fan_out)),
            )
        return await self.orchestrator.start(plan, source=source, run_id=run_id)

    async def wait(self, run_id: str) -> BatchResult:
        """Wait for the run to finish; its result."""
        return await self.orchestrator.wait(run_id)

    async def resume(self, run_id: str) -> str:
        """Continue an interrupted run from its stored plan."""
        await self.orchestrator.resume(run_id)
        return run_id

    async def close(self) -> None:
        """Stop the driver and release its store."""
        await self.store.close()

    # Execution --------------------------------------------------------------------------

    async def process(self, envelope: Envelope) -> Outcome:
        """Run one delivery: one attempt, then schedule the next or advance the run."""
        outcome = await self.runner.attempt(envelope)
        if isinstance(outcome, Retrying | Released):
            await self._record_waiting(outcome)
            await self._send([outcome.envelope])
        elif isinstance(outcome, Succeeded):
            await self.orchestrator.job_finished(envelope, "succeeded", outcome.attempts, None)
        elif isinstance(outcome, Failed):
            error = outcome.message
            await self.orchestrator.job_finished(envelope, "failed", outcome.attempts, error)
        return outcome

    async def _record_waiting(self, outcome: Retrying | Released) -> None:
        envelope = outcome.envelope
        if envelope.run_id is None or envelope.step is None:
            return
        state: StepState = "retrying" if isinstance(outcome, Retrying) else "released"
        error = outcome.message if isinstance(outcome, Retrying) else None
        await self.store.update_step(
            envelope.run_id,
            envelope.step,
            state,
            attempts=envelope.attempts,
            error=error,
            at=self.clock.now(),
        )

    async def _deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Send newly dispatched jobs (retries and releases go to `_send` directly)."""
        if not envelopes:
            return
        if self.events.active:
            now = self.clock.now()
            for envelope in envelopes:
                self.events.emit(
                    Event(
                        "job.dispatched",
                        now,
                        envelope.run_id,
                        envelope.label,
                        envelope.job.target,
                        envelope.attempts + 1,
                    )
                )
        await self._send(envelopes)

    async def _send(self, envelopes: Sequence[Envelope]) -> None:
        """Deliver ``envelopes`` (each at its ``available_at``)."""
        raise NotImplementedError
