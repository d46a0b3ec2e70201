"""The queue front end: the job API, the runner and the orchestration, over a transport.

`Queue(transport)` is every driver: `SyncQueue`, `NullQueue` and `TaskiqQueue` are thin
constructors that pick its transport (`arvel_flow.queue.drivers`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from arvel_flow.errors import RunExistsError
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
from arvel_flow.queue.transport import Attached, Pausable, Transport
from arvel_flow.store.contracts import StepState, StoreContract

logger = logging.getLogger(__name__)


def fan_out_items(fan_out: FanOutNode) -> Iterator[Mapping[str, Any]]:
    """The values a fan-out adds to its job's parameters: a matrix's axes, not its product."""
    if isinstance(fan_out.items, Matrix):
        for name, values in fan_out.items.axes.items():
            yield from ({name: value} for value in values)
    else:
        yield from fan_out.items


class Queue:
    """Dispatches jobs and runs flows; ``transport`` says how envelopes travel.

    Every queue executes through the same `JobRunner`, so a job behaves the same over
    each transport. Store and lock come in through the constructor (memory ones by
    default).

    A queue whose transport runs jobs here (not ``remote``) holds each run's owner lease
    (see `arvel_flow.queue.ownership`) from ``start`` or ``resume`` until the run has
    finished or the queue closes; ``owner_lease`` is its length in seconds.

    Args:
        transport: Inline, null, local, kick (`arvel_flow.queue.transports`) or a
            broker's; it serves this queue only.
    """

    def __init__(
        self,
        transport: Transport,
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
        self.transport = transport
        # Optional capabilities, discovered once: the rest of the queue asks properties.
        self._pool = transport if isinstance(transport, Pausable) else None
        if isinstance(transport, Attached):
            transport.attach(self)

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
        """Jobs waiting in ``queue_name``: here for a slot or a timer, or in the broker."""
        return await self.transport.size(queue_name)

    async def _dispatch_envelopes(self, envelopes: Sequence[Envelope]) -> list[str | None]:
        if self.remote:
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
        """Start a run of ``plan`` (under ``run_id`` if given); its id.

        Raises:
            RunExistsError: A run with ``run_id`` is in the store already.
            RunOwnedError: Another live process holds ``run_id`` (it is starting it).
        """
        if self.remote:
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
        try:
            return await self.orchestrator.start(plan, source=source, run_id=run_id)
        except RunExistsError:
            await self._release_lease(run_id)
            raise

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
        """Stop the runs followed here because of ``error``: every `wait` raises it.

        Nothing more is dispatched here and the jobs running here are cancelled: what
        they would record could not be. They stay unfinished in the store, to run again
        on resume.
        """
        self.stop_dispatching()
        self.orchestrator.abandon(error)

    @property
    def abandoned(self) -> BaseException | None:
        """The error the queue stopped for (see `abandon`), if it did."""
        return self.orchestrator.abandoned

    async def close(self) -> None:
        """Stop the transport (a pool lets running jobs end), give up runs, close the store."""
        await self.transport.close()
        for run_id in tuple(self._leases):
            await self._release_lease(run_id)
        await self.store.close()

    # Capabilities -----------------------------------------------------------------------

    @property
    def remote(self) -> bool:
        """Whether jobs run in workers elsewhere: no secret given in Python may travel,
        runs are not owned here, and an interrupted command detaches."""
        return self.transport.remote

    @property
    def pausable(self) -> bool:
        """Whether jobs run in a pool here that `pause`, `cancel_running` and `drain` control."""
        return self._pool is not None

    def pause(self) -> None:
        """Stop starting jobs; running jobs go on, waiting ones stay put (a pool only).

        What has not run stays unfinished in the store, so the run can be resumed.
        """
        if self._pool is not None:
            self._pool.pause()

    def cancel_running(self) -> None:
        """Cancel the jobs running now (a second Ctrl-C); they count as unfinished."""
        if self._pool is not None:
            self._pool.cancel_running()

    async def drain(self) -> None:
        """Wait until no job runs here."""
        if self._pool is not None:
            await self._pool.drain()

    async def join(self) -> None:
        """Wait until nothing is running, ready or scheduled here (paused: nothing running).

        Raises:
            BaseException: The error the queue stopped for (see `abandon`): what is
                left here will not run.
        """
        if self._pool is not None:
            await self._pool.join()
        if self.abandoned is not None:
            raise self.abandoned

    # Ownership --------------------------------------------------------------------------

    async def _take_lease(self, run_id: str, *, force: bool = False) -> None:
        if self.remote or run_id in self._leases:
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
        """Start nothing more and cancel the jobs running here: the run was taken over.

        Cancelled jobs stay unfinished in the store (the new owner runs them); letting
        them finish would advance the run here, into a queue that sends nothing more.
        """
        self.pause()
        self.cancel_running()

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
        """Hand ``envelopes`` to the transport (each to run at its ``available_at``)."""
        await self.transport.send(envelopes, self.clock.now())
