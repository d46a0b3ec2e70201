"""Failure simulation: a run of a plan's real orchestration on a virtual clock.

`simulate` runs a compiled `Plan` through the real queue front end, runner and
orchestrator (retry decisions, backoffs from `compute_backoff`, allowances, catch /
then / finally, chain stop, releases), on a memory store and a `FakeClock`, with
each attempt succeeding or failing as fault specs say (`arvel_flow.testing.faults`).
No job code runs by default: no ``handle()``, middleware or ``on_failure``; job
classes are imported (the plan's settings come from them) but never instantiated
beyond reading their parameters, so secret references stay unresolved and the
production environment is not needed.

The seam is the runner's `JobRunner._run_once` (middleware and ``handle()`` under the
timeout): `SimulatedRunner` answers there from the faults instead. The real path pays
nothing for it.

Rules a timeline follows, for it to be read as the worst case of the real run:

- An attempt takes no time, except one that times out: it takes its
  ``timeout_seconds``, without holding up the others (members of a batch time out
  side by side, as on a pool).
- Jitter takes the longest wait, so the waits are those ``plan`` lists and a step
  failing every attempt by timeout takes ``plan``'s worst-case duration.
- A failure raises the first class the step's ``retry_on`` names (so the policy
  retries it), otherwise `SimulatedFailure`.
- A release waits what the step's ``without_overlapping`` says (``release_after``),
  else its ``rate_limited`` window (``decay_seconds``), else 5 seconds.
- Batch members run in member order within the batch's ``concurrency``; the pool's
  own concurrency is not modelled.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arvel_flow.errors import JobTimeoutError
from arvel_flow.launch import Run
from arvel_flow.queue.backoff import exception_classes
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.middleware import Release
from arvel_flow.queue.plan import Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.runner import JobRunner, Outcome
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.transport import Attachment, Executor
from arvel_flow.store.contracts import FailedJob, StepRecord
from arvel_flow.testing.clock import FakeClock
from arvel_flow.testing.faults import Fault, FaultState, check_faults

DEFAULT_RELEASE = 5.0
"""Seconds a simulated release waits when the step has no middleware that says
(`WithoutOverlapping`'s default ``release_after``)."""

Starts = dict[tuple[str, int], float]
"""When each attempt that timed out started, by (envelope id, attempts before it)."""


class SimulatedFailure(Exception):
    """The error a simulated attempt fails with (unless the step's ``retry_on`` names one)."""


class LongestWaits(random.Random):
    """A random source whose ``uniform`` always gives the upper bound: jitter waits longest."""

    def uniform(self, a: float, b: float) -> float:
        """``max(a, b)``."""
        return max(a, b)


def compute_release_delay(settings: JobSettings) -> float:
    """What a simulated release of a job with ``settings`` waits (see the module's rules)."""
    for use, name in (("without_overlapping", "release_after"), ("rate_limited", "decay_seconds")):
        for ref in settings.middleware:
            if ref.use == use:
                return float(ref.kwargs.get(name, DEFAULT_RELEASE))
    return DEFAULT_RELEASE


class SimulatedRunner(JobRunner):
    """A `JobRunner` whose attempts do what the faults say instead of running the job.

    With ``run_jobs``, an attempt no fault touches runs the job for real (middleware,
    ``handle()``, ``on_failure``); without, it succeeds without running anything.
    """

    def __init__(
        self, faults: FaultState, starts: Starts, *, run_jobs: bool, **options: Any
    ) -> None:
        super().__init__(**options)
        self.faults = faults
        self.run_jobs = run_jobs
        self._starts = starts

    async def attempt(self, envelope: Envelope) -> Outcome:
        """One attempt; without ``run_jobs``, the job is built unresolved and unvalidated."""
        ref = envelope.job
        if not self.run_jobs and ref.instance is None:
            instance = ref.build_unresolved(allowed=self.allowed_modules)
            envelope = envelope.next(job=JobRef(ref.target, ref.params, ref.settings, instance))
        return await super().attempt(envelope)

    async def _run_once(self, job: Any, envelope: Envelope) -> Any:
        settings = envelope.job.settings
        kind = self.faults.take(envelope.label, envelope.attempts + 1)
        if kind is None:
            return await super()._run_once(job, envelope) if self.run_jobs else None
        if kind == "release":
            return Release(compute_release_delay(settings), "simulated release")
        if kind == "timeout":
            raise JobTimeoutError(job=envelope.job.target, timeout_seconds=settings.timeout_seconds)
        raise self._failure(settings, envelope.label)

    def _failure(self, settings: JobSettings, step: str) -> BaseException:
        message = f"simulated failure of {step}"
        if settings.retry_on:
            refused = exception_classes(settings.dont_retry_on, self.allowed_modules)
            for cls in exception_classes(settings.retry_on, self.allowed_modules):
                if issubclass(cls, refused):
                    continue
                try:
                    return cls(message)
                except Exception:  # a constructor that wants more: try the next class
                    continue
        return SimulatedFailure(message)

    async def _call_on_failure(self, job: Any, error: BaseException) -> None:
        if self.run_jobs:
            await super()._call_on_failure(job, error)

    def _emit(self, name: str, envelope: Envelope, attempt: int, **data: Any) -> None:
        started = self._starts.pop((envelope.id, envelope.attempts), None)
        if started is None or not self.events.active:
            super()._emit(name, envelope, attempt, **data)
            return
        # An attempt that timed out started its timeout earlier than now.
        data = {"queue": envelope.job.settings.queue_name, **data}
        self.events.emit(
            Event(
                name, started, envelope.run_id, envelope.label, envelope.job.target, attempt, data
            )
        )


class VirtualTimeTransport:
    """Runs envelopes in the caller, earliest due first, as `InlineTransport` does, except
    that an attempt that times out is due again at its end rather than run at its start:
    it spends its timeout of virtual time without holding up what is due meanwhile."""

    remote = False

    def __init__(self, faults: FaultState, starts: Starts) -> None:
        self._faults = faults
        self._starts = starts
        self._attachment = Attachment()
        self._due: list[tuple[float, int, Envelope, bool]] = []
        self._order = itertools.count()
        self._draining = False

    def attach(self, queue: Executor) -> None:
        """Run envelopes through ``queue``."""
        self._attachment.set(queue)

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Run ``envelopes`` (after their delays); nested sends join the running drain."""
        for envelope in envelopes:
            self._push(envelope.available_at, envelope, running=False)
        if self._draining:
            return
        queue = self._attachment.queue
        self._draining = True
        try:
            while self._due:
                due_at, _, envelope, running = heapq.heappop(self._due)
                wait = due_at - queue.clock.now()
                if wait > 0:
                    await queue.clock.sleep(wait)
                if not running and self._times_out(envelope):
                    self._start_timing_out(envelope, queue.clock.now())
                    continue
                await queue.process(envelope)
        finally:
            self._draining = False

    def _times_out(self, envelope: Envelope) -> bool:
        return self._faults.times_out(envelope.label, envelope.attempts + 1)

    def _start_timing_out(self, envelope: Envelope, now: float) -> None:
        self._starts[(envelope.id, envelope.attempts)] = now
        first = envelope.first_attempt_at if envelope.first_attempt_at is not None else now
        timeout = envelope.job.settings.timeout_seconds
        self._push(now + timeout, envelope.next(first_attempt_at=first), running=True)

    def _push(self, due_at: float, envelope: Envelope, *, running: bool) -> None:
        heapq.heappush(self._due, (due_at, next(self._order), envelope, running))

    async def size(self, queue: str) -> int:
        """Jobs due but not yet run (only while a drain is in progress)."""
        return sum(1 for _, _, e, _ in self._due if e.job.settings.queue_name == queue)

    async def close(self) -> None:
        """Nothing to release."""


class SimulatedQueue(Queue):
    """A queue for simulations: a `VirtualTimeTransport`, a `SimulatedRunner`, a memory
    store, a `FakeClock` (unless ``clock`` is given) and jitter that waits longest.

    Args:
        faults: Which attempts fail, and how.
        run_jobs: Run the job for each attempt no fault touches (see `SimulatedRunner`).
        clock: The virtual clock.
        events: Where the run's events go.
    """

    def __init__(
        self,
        faults: Sequence[Fault],
        *,
        run_jobs: bool = False,
        clock: Clock | None = None,
        events: EventBus | None = None,
    ) -> None:
        state = FaultState(faults)
        starts: Starts = {}
        rng = LongestWaits()
        clock = clock if clock is not None else FakeClock()
        super().__init__(VirtualTimeTransport(state, starts), events=events, clock=clock, rng=rng)
        # The runner the queue built is replaced by one on the same store, lock, events
        # and clock; the orchestrator keeps the first one's unique guard, which holds
        # nothing but that same lock.
        self.runner = SimulatedRunner(
            state,
            starts,
            run_jobs=run_jobs,
            store=self.store,
            lock=self.lock,
            events=self.events,
            clock=self.clock,
            rng=rng,
        )


@dataclass(frozen=True, slots=True)
class Simulation:
    """How a simulated run went.

    Attributes:
        result: The run's result, as a real run's.
        events: Every event of the run, in virtual time order.
        started_at: Virtual time the run started.
        ended_at: Virtual time the run ended.
        steps: The final record of each step.
        failures: The failed-job records the run would have written.
    """

    result: BatchResult
    events: tuple[Event, ...]
    started_at: float
    ended_at: float
    steps: Mapping[str, StepRecord]
    failures: tuple[FailedJob, ...]

    @property
    def elapsed(self) -> float:
        """Virtual seconds from start to end."""
        return self.ended_at - self.started_at

    @property
    def exit_code(self) -> int:
        """What ``arvel-flow run`` would exit with: 0 succeeded, 1 failed."""
        return 0 if self.result.ok else 1


async def simulate(
    plan: Plan,
    faults: Sequence[Fault] = (),
    *,
    run_jobs: bool = False,
    clock: Clock | None = None,
) -> Simulation:
    """Run ``plan``'s orchestration with ``faults`` on a virtual clock (see the module).

    Raises:
        FaultSpecError: A fault names no job step of ``plan``, or a timeout of a step
            that has none.
    """
    check_faults(faults, plan)
    events = EventBus()
    heard: list[Event] = []
    events.subscribe(heard.append)
    queue = SimulatedQueue(faults, run_jobs=run_jobs, clock=clock, events=events)
    started_at = queue.clock.now()
    run_id = new_id()[:12]
    async with await Run.begin(queue, plan, run_id) as handle:
        result = await handle.wait()
        steps = await queue.store.get_steps(run_id)
        failures = tuple(await queue.store.list_failed(run_id=run_id))
    ordered = tuple(sorted(heard, key=lambda event: event.time))
    return Simulation(result, ordered, started_at, queue.clock.now(), steps, failures)
