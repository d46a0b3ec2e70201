"""Advances runs through their plans as jobs finish: continuation passing, in the store.

No coordinator holds a run in memory. When a job finishes, whoever ran it records the
outcome and advances the enclosing chain or batch with atomic store operations: a step
is claimed once, finished once, and a batch's counters change in the same step as the
member that finished. Whichever finish completes a group fires its callbacks, so they
fire once however many workers share the store. Every advance reads the state it acts
on, which makes it safe to repeat: that is how `resume` continues a crashed run.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arvel_flow.errors import RunExistsError, RunNotFoundError, SecretError
from arvel_flow.queue import spans
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.continuation import (
    OK_STATES,
    members_to_restart,
    plan_reopening,
    started_members,
)
from arvel_flow.queue.envelope import Envelope, delivery_mark, new_id
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.middleware import UniqueJobGuard
from arvel_flow.queue.plan import (
    BatchNode,
    ChainNode,
    JobNode,
    Node,
    Plan,
    Role,
    callbacks,
    compute_allowance,
)
from arvel_flow.queue.plan_json import plan_from_dict, plan_to_dict
from arvel_flow.queue.result import BatchResult, compute_result
from arvel_flow.store.contracts import (
    FINAL_RUN_STATUSES,
    BatchCounters,
    RunRecord,
    RunStatus,
    StepRecord,
    StepState,
    StoreContract,
)

Send = Callable[[Sequence[Envelope]], Awaitable[None]]


@dataclass
class _Outbox:
    """What one advance decided: envelopes to send, and duplicate steps to finish next."""

    envelopes: list[Envelope] = field(default_factory=list)
    duplicates: deque[str] = field(default_factory=deque)


DISPATCH_WINDOW = 1_000
"""Members of a batch without ``concurrency`` dispatched ahead of those finishing.

Far above any driver's concurrency, so it limits nothing in practice, while a
100,000-member batch holds 1,000 messages in flight rather than 100,000.
"""

PLAN_CACHE_SIZE = 256
"""Plans kept in memory per process; others are loaded from the store again."""

RESULT_CACHE_SIZE = 16
"""Results of runs that finished here kept for `Orchestrator.wait` (see `_finish_run`)."""


class Orchestrator:
    """Starts, advances and resumes runs of plans on a store."""

    def __init__(
        self,
        *,
        store: StoreContract,
        guard: UniqueJobGuard,
        events: EventBus,
        clock: Clock,
        send: Send,
    ) -> None:
        self.store = store
        self.guard = guard
        self.events = events
        self.clock = clock
        self._send = send
        self._plans: dict[str, Plan] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._ended: dict[str, BatchResult] = {}
        """Results computed as the latest runs finished, for `wait` (taken once)."""
        self.abandoned: BaseException | None = None
        """Why this process gave up advancing runs (see `abandon`), if it did."""

    async def start(
        self, plan: Plan, *, source: str | None = None, run_id: str | None = None
    ) -> str:
        """Record a new run of ``plan`` and dispatch its first jobs; returns the run id.

        Raises:
            RunExistsError: A run with ``run_id`` is in the store (nothing is done).
        """
        run_id = run_id or new_id()[:12]
        now = self.clock.now()
        record = RunRecord(
            run_id,
            plan.name,
            created_at=now,
            source=source or plan.origin,
            trigger=plan.trigger,
            scheduled_at=plan.scheduled_at,
        )
        if not await self.store.create_run(record, plan_to_dict(plan)):
            raise RunExistsError(run_id)
        self._remember(run_id, plan)
        if spans.hooks is not None:
            spans.hooks.run_started(run_id, plan.name)
        if plan.trigger is None:
            self._emit("run.started", run_id, name=plan.name)
        else:
            self._emit(
                "run.started",
                run_id,
                name=plan.name,
                trigger=plan.trigger,
                scheduled_at=plan.scheduled_at,
            )
        outbox = _Outbox()
        await self._start(run_id, plan, plan.root, outbox)
        await self._flush(run_id, plan, outbox)
        return run_id

    def _remember(self, run_id: str, plan: Plan) -> None:
        # A long-lived worker sees many runs: keep the most recent plans only.
        self._plans[run_id] = plan
        while len(self._plans) > PLAN_CACHE_SIZE:
            del self._plans[next(iter(self._plans))]

    async def resume(self, run_id: str) -> Plan:
        """Continue a run after its process died: resend unfinished jobs, re-advance groups.

        Finished steps are not run again and callbacks that fired do not fire again. A
        failed run is continued from the steps that did not succeed (see `reopen`); a
        succeeded run is left as it is.
        """
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        plan = await self.plan_of(run_id)
        if run.status == "failed":
            if not await self.reopen(run_id, plan):
                return plan
        elif run.status in FINAL_RUN_STATUSES:
            return plan
        await self.store.set_run_status(run_id, "running", self.clock.now())
        records = await self.store.get_steps(run_id)
        outbox = _Outbox()
        for key, record in records.items():
            if record.final:
                continue
            node = plan.node(key)
            if isinstance(node, JobNode):
                outbox.envelopes.append(self._envelope(run_id, node, attempts=record.attempts))
        for group in plan.groups_deepest_first():
            group_record = records.get(group.key)
            if group_record is None or group_record.final:
                continue
            if isinstance(group, BatchNode):
                await self._resend_started_members(run_id, plan, group, records, outbox)
            await self._advance(run_id, plan, group, outbox)
        if plan.root.key not in records:
            await self._start(run_id, plan, plan.root, outbox)
        await self._flush(run_id, plan, outbox)
        return plan

    async def reopen(self, run_id: str, plan: Plan) -> bool:
        """Make a failed run running again, its steps that did not succeed pending.

        Their failed-job records go (the steps run again, here: a later ``failed
        retry`` must not run them a second time), and so do the marks of the messages
        they last ran from, so that workers take their new messages. False when the
        run was not failed any more (another process continued it).
        """
        records = await self.store.get_steps(run_id)

        async def counters_of(batch: str) -> BatchCounters:
            return await self.store.batch_counters(run_id, batch)

        self._ended.pop(run_id, None)
        reopening = await plan_reopening(plan, records, counters_of)
        now = self.clock.now()
        if not await self.store.reopen_run(run_id, reopening.steps, reopening.counters, now):
            return False
        forgotten = set(reopening.steps)
        for failed in await self.store.list_failed(run_id=run_id):
            if failed.step in forgotten:
                await self.store.forget_failed(failed.id)
        lock = self.guard.lock
        for step in reopening.steps:
            mark = delivery_mark(run_id, step)
            holder = await lock.owner(mark)
            if holder is not None:
                await lock.release(mark, holder)
        self._emit("run.continued", run_id, name=plan.name, steps=len(reopening.steps))
        return True

    async def _restart_members(
        self,
        run_id: str,
        plan: Plan,
        batch: BatchNode,
        outbox: _Outbox,
        counters: BatchCounters | None = None,
        limit: int | None = None,
    ) -> None:
        """Start again the started members of a reopened batch that have no record.

        A batch starts with no member claimed, except one reopened by `reopen`: its
        members that did not succeed were forgotten and wait to run again. At most
        ``limit`` of them start (by default, what the batch's ``concurrency`` leaves
        beside its running members), each claimed once, in member order.
        """
        counters = counters or await self.store.batch_counters(run_id, batch.key)
        if counters.claimed == 0:
            return
        members = [batch.member(index) for index in range(started_members(batch, counters))]
        records = await self.store.get_steps(run_id, [member.key for member in members])
        if limit is None and batch.concurrency is not None:
            running = sum(1 for record in records.values() if not record.final)
            limit = batch.concurrency - running
        for member in members:
            if limit is not None and limit <= 0:
                return
            if member.key in records:
                continue
            if await self.store.claim_step(run_id, member.key, self.clock.now()):
                await self._start_claimed(run_id, plan, member, outbox)
                limit = None if limit is None else limit - 1

    async def _resend_started_members(
        self,
        run_id: str,
        plan: Plan,
        batch: BatchNode,
        records: Mapping[str, StepRecord],
        outbox: _Outbox,
    ) -> None:
        """Resend the batch's started job members that left no record before the crash.

        Members are claimed through the batch's counters, not one by one, so a started
        member has a record only once it retried or finished. In a continued batch
        with more unfinished members than its ``concurrency``, those without a record
        are waiting ones (running ones were claimed with a record): they start within
        the concurrency, as they would have.
        """
        counters = await self.store.batch_counters(run_id, batch.key)
        unfinished = started_members(batch, counters) - counters.done
        if batch.concurrency is not None and unfinished > batch.concurrency:
            await self._restart_members(run_id, plan, batch, outbox, counters)
            return
        started = min(counters.claimed, batch.total) - counters.cancelled
        for index in range(started):
            member = batch.member(index)
            if isinstance(member, JobNode) and member.key not in records:
                outbox.envelopes.append(self._envelope(run_id, member, attempts=0))

    async def job_finished(
        self, envelope: Envelope, state: StepState, attempts: int, error: str | None
    ) -> None:
        """Record a job's final state and advance its run (no-op outside a run)."""
        if envelope.run_id is None or envelope.step is None:
            return
        plan = self._plans.get(envelope.run_id) or await self.plan_of(envelope.run_id)
        outbox = _Outbox()
        await self._finish(
            envelope.run_id, plan, envelope.step, state, outbox, attempts=attempts, error=error
        )
        if outbox.envelopes or outbox.duplicates:
            await self._flush(envelope.run_id, plan, outbox)

    async def _flush(self, run_id: str, plan: Plan, outbox: _Outbox) -> None:
        """Finish the duplicates an advance found, then send what it dispatched."""
        while outbox.duplicates:
            await self._finish(run_id, plan, outbox.duplicates.popleft(), "duplicate", outbox)
        await self._send(outbox.envelopes)

    async def plan_of(self, run_id: str) -> Plan:
        """The run's plan, loaded from the store once per process."""
        plan = self._plans.get(run_id)
        if plan is None:
            plan = plan_from_dict(await self.store.load_plan(run_id))
            self._remember(run_id, plan)
        return plan

    def abandon(self, error: BaseException) -> None:
        """Give up following runs: this process cannot advance them (its store failed).

        Every `wait`, now and later, raises ``error``: the runs stay unfinished in the
        store, for ``run --resume``.
        """
        if self.abandoned is None:
            self.abandoned = error
        for done in self._done.values():
            done.set()

    async def wait(self, run_id: str, poll_seconds: float = 0.2) -> BatchResult:
        """Wait until the run has finished (here or in another process); its result.

        Raises:
            BaseException: The error the runs were abandoned for (see `abandon`).
        """
        done = self._done.setdefault(run_id, asyncio.Event())
        try:
            while True:
                if self.abandoned is not None:
                    raise self.abandoned
                run = await self.store.get_run(run_id)
                if run is None:
                    raise RunNotFoundError(run_id)
                if run.status in FINAL_RUN_STATUSES:
                    ended = self._ended.pop(run_id, None)
                    if ended is not None and ended.status == run.status:
                        return ended
                    return await self.result(run_id)
                try:
                    await asyncio.wait_for(done.wait(), poll_seconds)
                except TimeoutError:
                    continue
        finally:
            self._done.pop(run_id, None)

    async def result(self, run_id: str) -> BatchResult:
        """Where the run stands now."""
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        plan = await self.plan_of(run_id)
        return compute_result(run_id, run.status, plan, await self.store.get_steps(run_id))

    # Starting ---------------------------------------------------------------------------

    async def _start(self, run_id: str, plan: Plan, node: Node, outbox: _Outbox) -> None:
        """Claim ``node`` (once) and start it."""
        if await self.store.claim_step(run_id, node.key, self.clock.now()):
            await self._start_claimed(run_id, plan, node, outbox)

    async def _start_step(
        self, run_id: str, plan: Plan, chain: ChainNode, step: Node, outbox: _Outbox
    ) -> None:
        """Claim and start a chain's step, saying so."""
        if await self.store.claim_step(run_id, step.key, self.clock.now()):
            self._emit("chain.step", run_id, step=step.key, chain=chain.key)
            await self._start_claimed(run_id, plan, step, outbox)

    async def _start_claimed(self, run_id: str, plan: Plan, node: Node, outbox: _Outbox) -> None:
        if not isinstance(node, JobNode):
            await self.store.update_step(run_id, node.key, "running", at=self.clock.now())
            if isinstance(node, BatchNode):
                await self._restart_members(run_id, plan, node, outbox)
            await self._advance(run_id, plan, node, outbox)
            return
        envelope = await self.claim_unique(self._envelope(run_id, node, attempts=0))
        if envelope is None:
            # Finished after this advance, not inside it: a long run of duplicates
            # must not nest one call deeper each.
            outbox.duplicates.append(node.key)
            return
        outbox.envelopes.append(envelope)

    def _envelope(self, run_id: str, node: JobNode, *, attempts: int) -> Envelope:
        settings = node.job.settings
        available_at = self.clock.now() + settings.delay if settings.delay else 0.0
        # A step's unique lock belongs to the step, not to one delivery of it, so that a
        # resumed run (new envelopes) still releases it.
        owner = f"{run_id}:{node.key}" if settings.unique_for else None
        tracer = spans.hooks
        trace = (
            None
            if tracer is None
            else tracer.traceparent(run_id, self._plans.get(run_id), node.key)
        )
        return Envelope(
            node.job,
            new_id(),
            run_id,
            node.key,
            attempts=attempts,
            available_at=available_at,
            unique_owner=owner,
            trace=trace,
        )

    async def claim_unique(self, envelope: Envelope) -> Envelope | None:
        """Take the unique lock of a job with ``unique_for`` at dispatch.

        Returns the envelope marked as the lock's owner, or None (reported as
        ``job.duplicate``) when another dispatch holds the lock.
        """
        settings = envelope.job.settings
        if not settings.unique_for:
            return envelope
        try:
            job = envelope.job.build()
        except SecretError:
            # Secrets are resolved where the job runs, and this process may lack them;
            # a unique id may not read one, so the job as given serves to compute it.
            job = envelope.job.build_unresolved()
        owner = envelope.unique_owner or envelope.id
        if await self.guard.claim(job, settings, envelope.job.target, owner):
            return envelope.next(unique_owner=owner)
        self._emit(
            "job.duplicate",
            envelope.run_id,
            step=envelope.label,
            job=envelope.job.target,
            attempt=0,
            queue=settings.queue_name,
        )
        return None

    # Finishing --------------------------------------------------------------------------

    async def _finish(
        self,
        run_id: str,
        plan: Plan,
        key: str,
        state: StepState,
        outbox: _Outbox,
        *,
        attempts: int = 0,
        error: str | None = None,
    ) -> None:
        """Make ``key`` final (once) and advance whatever it belongs to."""
        parent = plan.parent(key)
        following = _following(parent, key, state)
        if following is not None:
            await self._finish_chain_step(
                run_id, plan, key, state, following, outbox, attempts=attempts, error=error
            )
            return
        batch = parent[0].key if parent is not None and parent[1] == "member" else None
        counters = await self.store.finish_step(
            run_id, key, state, attempts=attempts, error=error, at=self.clock.now(), batch=batch
        )
        if counters is False:
            return
        if spans.hooks is not None:
            await self._trace_group(
                run_id, plan, key, state, None if parent is None else parent[0].key
            )
        if parent is None:
            await self._finish_run(run_id, plan, state)
            return
        group, _ = parent
        if self.events.active and isinstance(counters, BatchCounters):
            assert isinstance(group, BatchNode)
            self._emit(
                "batch.progress",
                run_id,
                step=group.key,
                finished=counters.done + counters.cancelled,
                failed=counters.failed,
                total=group.total,
            )
        if isinstance(group, ChainNode):
            await self._advance_chain(run_id, plan, group, outbox, finished=(key, state))
            return
        if not isinstance(counters, BatchCounters):
            await self._advance(run_id, plan, group, outbox)
            return
        assert isinstance(group, BatchNode)
        restart = members_to_restart(group, counters)
        if restart:
            # A continued batch: the slot this finish freed goes to a waiting member.
            await self._restart_members(run_id, plan, group, outbox, counters, restart)
        await self._advance(run_id, plan, group, outbox, counters)

    async def _finish_chain_step(
        self,
        run_id: str,
        plan: Plan,
        key: str,
        state: StepState,
        following: tuple[ChainNode, Node],
        outbox: _Outbox,
        *,
        attempts: int,
        error: str | None,
    ) -> None:
        """Finish a chain's step that succeeded and claim the next, in one store operation.

        What `_finish` then `_start_step` do, one round trip fewer per chain step.
        """
        chain, step = following
        finished, claimed = await self.store.finish_and_claim(
            run_id, key, state, step.key, attempts=attempts, error=error, at=self.clock.now()
        )
        if not finished:
            return
        if spans.hooks is not None:
            await self._trace_group(run_id, plan, key, state, chain.key)
        if claimed:
            self._emit("chain.step", run_id, step=step.key, chain=chain.key)
            await self._start_claimed(run_id, plan, step, outbox)

    async def _finish_run(self, run_id: str, plan: Plan, state: StepState) -> None:
        status: RunStatus = "succeeded" if state in OK_STATES else "failed"
        ended = await self.store.set_run_status(run_id, status, self.clock.now())
        waiting = self._done.get(run_id)
        if ended and (self.events.active or waiting is not None):
            # Read once for the event's counts and the result `wait` returns: a million
            # members are not read and sorted twice.
            records = await self.store.get_steps(run_id)
            result = compute_result(run_id, status, plan, records)
            self._ended[run_id] = result
            while len(self._ended) > RESULT_CACHE_SIZE:
                del self._ended[next(iter(self._ended))]
            self._emit("run.finished", run_id, status=status, counts=result.counts, name=plan.name)
        if ended and spans.hooks is not None:
            await self._trace_run(run_id, plan, status)
        if waiting is not None:
            waiting.set()

    async def _trace_run(self, run_id: str, plan: Plan, status: RunStatus) -> None:
        """Tell the tracer that the run ended here."""
        tracer = spans.hooks
        run = await self.store.get_run(run_id)
        if tracer is not None and run is not None:
            ended = self.clock.now()
            tracer.run_finished(
                run_id, plan.name, status, started_at=run.created_at, ended_at=ended
            )

    async def _trace_group(
        self, run_id: str, plan: Plan, key: str, state: StepState, parent: str | None
    ) -> None:
        """Tell the tracer that chain or batch ``key`` ended here (jobs trace their attempts)."""
        node = plan.nodes.get(key)  # a fan-out's member is not there: it is a job
        tracer = spans.hooks
        if tracer is None or not isinstance(node, ChainNode | BatchNode):
            return
        record = (await self.store.get_steps(run_id, [key])).get(key)
        tracer.group_finished(
            run_id,
            node,
            state,
            parent=parent,
            started_at=None if record is None else record.started_at,
            ended_at=self.clock.now(),
        )

    # Advancing --------------------------------------------------------------------------

    async def _advance(
        self,
        run_id: str,
        plan: Plan,
        group: Node,
        outbox: _Outbox,
        counters: BatchCounters | None = None,
    ) -> None:
        if isinstance(group, ChainNode):
            await self._advance_chain(run_id, plan, group, outbox)
        elif isinstance(group, BatchNode):
            await self._advance_batch(run_id, plan, group, outbox, counters)

    async def _advance_chain(
        self,
        run_id: str,
        plan: Plan,
        chain: ChainNode,
        outbox: _Outbox,
        finished: tuple[str, StepState] | None = None,
    ) -> None:
        """Start the next step, or stop at a failure, then settle the chain.

        When a step has just succeeded, the next one starts at once: the worker that
        finishes a step dispatches the next without reading the chain back.
        """
        if finished is not None and finished[1] in OK_STATES:
            following = _step_after(chain, finished[0])
            if following is not None:
                await self._start_step(run_id, plan, chain, following, outbox)
                return
        keys = [step.key for step in chain.steps]
        records = await self.store.get_steps(run_id, keys + [cb.key for _, cb in callbacks(chain)])
        outcome: StepState = "succeeded"
        for index, step in enumerate(chain.steps):
            record = records.get(step.key)
            if record is None:
                await self._start_step(run_id, plan, chain, step, outbox)
                return
            if not record.final:
                return
            if record.state not in OK_STATES:
                outcome = "failed"
                await self.store.mark_steps(run_id, keys[index + 1 :], "skipped", self.clock.now())
                break
        await self._settle(run_id, plan, chain, outcome, records, outbox)

    async def _advance_batch(
        self,
        run_id: str,
        plan: Plan,
        batch: BatchNode,
        outbox: _Outbox,
        counters: BatchCounters | None,
    ) -> None:
        """Start members within the concurrency, or cancel the rest past the allowance."""
        total = batch.total
        allowance = compute_allowance(batch.allow_failures, total)
        counters = counters or await self.store.batch_counters(run_id, batch.key)
        failing = allowance is not None and counters.failed > allowance
        if failing:
            if not counters.cancel_flag:
                cancelled = await self.store.cancel_members(run_id, batch.key, total)
                counters = cancelled or counters
            if batch.catch is not None:
                await self._start(run_id, plan, batch.catch, outbox)
        elif counters.claimed < total and self._should_claim(batch, counters):
            limit = batch.concurrency or DISPATCH_WINDOW
            for index in await self.store.claim_members(run_id, batch.key, total, limit):
                await self._start_claimed(run_id, plan, batch.member(index), outbox)
        if counters.settled(total):
            records = await self.store.get_steps(run_id, [cb.key for _, cb in callbacks(batch)])
            await self._settle(
                run_id, plan, batch, "failed" if failing else "succeeded", records, outbox
            )

    @staticmethod
    def _should_claim(batch: BatchNode, counters: BatchCounters) -> bool:
        """Whether to claim more members now.

        With a ``concurrency``, every finish frees a slot to fill. The dispatch window
        is refilled when half of it has drained, so a big batch claims a few hundred
        members per store round trip rather than one per finished job.
        """
        if batch.concurrency is not None:
            return True
        return counters.claimed - counters.done <= DISPATCH_WINDOW // 2

    async def _settle(
        self,
        run_id: str,
        plan: Plan,
        group: ChainNode | BatchNode,
        outcome: StepState,
        records: Mapping[str, StepRecord],
        outbox: _Outbox,
    ) -> None:
        """Run the callbacks due for ``outcome`` one after another, then finish the group."""
        due = [
            node
            for role, node in callbacks(group)
            if role == "finally" or (role == "catch") == (outcome == "failed")
        ]
        for callback in due:
            record = records.get(callback.key)
            if record is None:
                await self._start(run_id, plan, callback, outbox)
                return
            if not record.final:
                return
        if isinstance(group, BatchNode):
            self._emit("batch.finished", run_id, step=group.key, status=outcome)
        await self._finish(run_id, plan, group.key, outcome, outbox)

    def _emit(
        self,
        event: str,
        run_id: str | None,
        *,
        step: str | None = None,
        job: str | None = None,
        attempt: int | None = None,
        **data: Any,
    ) -> None:
        if self.events.active:
            self.events.emit(Event(event, self.clock.now(), run_id, step, job, attempt, data))


def _following(
    parent: tuple[ChainNode | BatchNode, Role] | None, key: str, state: StepState
) -> tuple[ChainNode, Node] | None:
    """The chain and its step that start now that step ``key`` ended in ``state``, if any."""
    if parent is None or state not in OK_STATES or not isinstance(parent[0], ChainNode):
        return None
    following = _step_after(parent[0], key)
    return None if following is None else (parent[0], following)


def _step_after(chain: ChainNode, key: str) -> Node | None:
    """The step that follows step ``key`` of ``chain``; None after the last, or for a callback."""
    for index, step in enumerate(chain.steps[:-1]):
        if step.key == key:
            return chain.steps[index + 1]
    return None
