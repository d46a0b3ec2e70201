"""What every driver shares: the runner, the orchestration, and the job API on top."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from arvel_flow.lock.contracts import LockContract
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.orchestrator import Orchestrator
from arvel_flow.queue.ownership import DEFAULT_LEASE, RunLease, format_owner
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

logger = logging.getLogger(__name__)


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

    A queue that executes runs in place holds each run's owner lease (see
    `arvel_flow.queue.ownership`) from ``start`` or ``resume`` until the run has
    finished or the queue closes; ``owner_lease`` is its length in seconds.
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
        owner_lease: float = DEFAULT_LEASE,
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
        self.owner_lease = owner_lease
        self._leases: dict[str, RunLease] = {}

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
        run_id = run_id or new_id()[:12]
        await self._take_lease(run_id)
        return await self.orchestrator.start(plan, source=source, run_id=run_id)

    async def wait(self, run_id: str) -> BatchResult:
        """Wait for the run to finish; its result.

        Raises:
            RunTakenOverError: Another process took the run over (``--force``); this
                one cancelled its jobs here and dispatches nothing more.
        """
        lease = self._leases.get(run_id)
        if lease is None:
            return await self.orchestrator.wait(run_id)
        result = await lease.guard(self.orchestrator.wait(run_id))
        await self._release_lease(run_id)
        return result

    async def resume(self, run_id: str, *, force: bool = False) -> str:
        """Continue an interrupted run from its stored plan.

        Raises:
            RunOwnedError: Another live process executes the run; ``force`` takes over
                one that is gone (see `arvel_flow.queue.ownership`).
        """
        await self._take_lease(run_id, force=force)
        await self.orchestrator.resume(run_id)
        return run_id

    def abandon(self, error: BaseException) -> None:
        """Stop the runs followed here because of ``error``; every `wait` raises it."""
        self.orchestrator.abandon(error)

    async def close(self) -> None:
        """Stop the driver, give up the runs it owns, and release its store."""
        for run_id in tuple(self._leases):
            await self._release_lease(run_id)
        await self.store.close()

    # Ownership --------------------------------------------------------------------------

    @property
    def executes_in_place(self) -> bool:
        """True when this process runs the jobs itself (and so owns the runs it starts)."""
        return True

    async def _take_lease(self, run_id: str, *, force: bool = False) -> None:
        if not self.executes_in_place or run_id in self._leases:
            return
        lease = RunLease(
            self.store,
            run_id,
            clock=self.clock,
            seconds=self.owner_lease,
            on_lost=lambda _error: self.stop_dispatching(),
        )
        await lease.take(force=force)
        self._leases[run_id] = lease
        if lease.previous is not None:
            logger.warning(
                "took run %s over from %s", run_id, format_owner(lease.previous, self.clock.now())
            )

    async def _release_lease(self, run_id: str) -> None:
        lease = self._leases.pop(run_id, None)
        if lease is not None:
            await lease.release()

    def stop_dispatching(self) -> None:
        """Run no more jobs here (a run was taken over); drivers that can, override."""

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
