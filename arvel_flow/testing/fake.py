"""`FakeQueue`: records what is dispatched instead of running it, and asserts on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.plan import BatchNode, ChainNode, Plan
from arvel_flow.queue.runner import Outcome, Succeeded
from arvel_flow.testing.clock import FakeClock
from arvel_flow.testing.records import (
    Dispatched,
    FlowRecord,
    format_expected,
    format_list,
    job_instance,
    matches,
)

Where = Callable[[Any], bool]


class FakeQueue(SyncQueue):
    """A queue for tests that records every job instead of running it.

    ``dispatch``, ``later`` and ``bulk`` record each job (see `dispatched`); chains
    and batches are recorded as such (`chains`, `batches`) and run through the
    orchestration as `SyncQueue` runs them, but a job that is not run counts as
    succeeded without its ``handle()`` being called, so callbacks and results are
    those of a run where every such job succeeded.

    Jobs of the classes in ``run`` do run, inline as `SyncQueue` runs them (retries,
    middleware, failure hooks); what they dispatch to this queue is recorded too.

    A job is matched to a class with ``isinstance`` (a function job by identity).
    Uniqueness is not checked for recorded jobs: each dispatch is recorded.

    Time is a `FakeClock` unless ``clock`` is given: backoffs and delays of the jobs
    that run cost nothing. Other keyword arguments are those of `SyncQueue`.

    Example::

        queue = FakeQueue()
        await import_users(queue, "rows.csv")       # the code under test
        queue.assert_dispatched(ImportRows, where=lambda job: job.path == "rows.csv")
    """

    def __init__(
        self, *, run: Iterable[type[Any] | Callable[..., Any]] = (), **options: Any
    ) -> None:
        options.setdefault("clock", FakeClock())
        super().__init__(**options)
        self.run = tuple(run)
        self.jobs: list[Dispatched] = []
        """Every job dispatched, in order (run or not)."""
        self.flows: list[FlowRecord] = []
        """Every chain or batch started, in order (nested ones inside their parent)."""
        self._waiting: list[Dispatched] = []

    # QueueContract ----------------------------------------------------------------------

    async def dispatch(self, job: Any) -> str | None:
        """Record ``job``; run it if its class is in ``run``."""
        return (await self.bulk([job]))[0]

    async def later(self, delay: float, job: Any) -> str | None:
        """Record ``job`` as due after ``delay`` seconds; run it then if selected."""
        record = Dispatched.of(job, delay)
        self.jobs.append(record)
        if self._selected(record.job):
            return await super().later(delay, job)
        self._waiting.append(record)
        return new_id()

    async def bulk(self, jobs: Sequence[Any]) -> list[str | None]:
        """Record each job; run those whose class is in ``run``."""
        records = [Dispatched.of(job) for job in jobs]
        self.jobs.extend(records)
        ids: list[str | None] = [new_id() for _ in records]
        selected = [i for i, record in enumerate(records) if self._selected(record.job)]
        chosen = set(selected)
        self._waiting.extend(r for i, r in enumerate(records) if i not in chosen)
        if selected:
            sent = await super().bulk([jobs[i] for i in selected])
            for i, message_id in zip(selected, sent, strict=True):
                ids[i] = message_id
        return ids

    async def size(self, queue_name: str = "default") -> int:
        """Jobs recorded and not run in ``queue_name``, plus any waiting to run."""
        recorded = sum(1 for record in self._waiting if record.queue_name == queue_name)
        return recorded + await super().size(queue_name)

    # Flows ------------------------------------------------------------------------------

    async def start(
        self, plan: Plan, *, source: str | None = None, run_id: str | None = None
    ) -> str:
        """Record the chain or batch, then run it (its unselected jobs succeed unrun)."""
        root = plan.root
        if isinstance(root, ChainNode | BatchNode):
            self.flows.append(FlowRecord.of(root))
        return await super().start(plan, source=source, run_id=run_id)

    async def process(self, envelope: Envelope) -> Outcome:
        """Run a selected job; any other one succeeds without running."""
        if self._selected(job_instance(envelope.job)):
            return await super().process(envelope)
        await self.orchestrator.job_finished(envelope, "succeeded", 1, None)
        return Succeeded(None, 1)

    def _selected(self, job: Any) -> bool:
        return any(matches(job, selected) for selected in self.run)

    # Reading ----------------------------------------------------------------------------

    def dispatched(self, job_class: Any, where: Where | None = None) -> list[Any]:
        """The instances of ``job_class`` dispatched (that ``where`` accepts), in order."""
        return [record.job for record in self._matching(job_class, where)]

    @property
    def chains(self) -> list[FlowRecord]:
        """Every chain started, nested ones included, outermost first."""
        return [flow for root in self.flows for flow in root.flows() if flow.kind == "chain"]

    @property
    def batches(self) -> list[FlowRecord]:
        """Every batch started, nested ones included, outermost first."""
        return [flow for root in self.flows for flow in root.flows() if flow.kind == "batch"]

    def _matching(self, job_class: Any, where: Where | None) -> list[Dispatched]:
        return [
            record
            for record in self.jobs
            if matches(record.job, job_class) and (where is None or where(record.job))
        ]

    # Assertions -------------------------------------------------------------------------

    def assert_dispatched(
        self, job_class: Any, count: int | None = None, where: Where | None = None
    ) -> None:
        """Assert that ``job_class`` was dispatched (``count`` times; matching ``where``).

        ``job_class`` may also be a function, or an instance to compare by equality.
        """
        found = len(self._matching(job_class, where))
        if found > 0 if count is None else found == count:
            return
        what = _described(job_class, where)
        times = "" if count is None else f" {_times(count)}"
        got = "it was not" if found == 0 else f"it was dispatched {_times(found)}"
        raise AssertionError(
            f"expected {what} to be dispatched{times}, but {got}\n{self._listing()}"
        )

    def assert_not_dispatched(self, job_class: Any, where: Where | None = None) -> None:
        """Assert that no ``job_class`` (matching ``where``) was dispatched."""
        found = self._matching(job_class, where)
        if not found:
            return
        raise AssertionError(
            f"expected {_described(job_class, where)} not to be dispatched, "
            f"but it was dispatched {_times(len(found))}:\n{format_list(found)}"
        )

    def assert_nothing_dispatched(self) -> None:
        """Assert that no job, chain or batch was dispatched."""
        if not self.jobs and not self.flows:
            return
        items = [*self.jobs, *self.flows]
        noun = "thing was" if len(items) == 1 else "things were"
        raise AssertionError(
            f"expected nothing to be dispatched, but {len(items)} {noun}:\n{format_list(items)}"
        )

    def assert_dispatched_later(self, job_class: Any, delay: float | None = None) -> None:
        """Assert that ``job_class`` was dispatched to run later (after ``delay`` seconds)."""
        later = [r for r in self._matching(job_class, None) if r.delay > 0]
        if any(delay is None or r.delay == delay for r in later):
            return
        when = "later" if delay is None else f"after {delay:g}s"
        if later:
            got = "it was dispatched after " + ", ".join(f"{r.delay:g}s" for r in later)
        elif self._matching(job_class, None):
            got = "it was dispatched to run now"
        else:
            got = "it was not"
        raise AssertionError(
            f"expected {format_expected(job_class)} to be dispatched {when}, "
            f"but {got}\n{self._listing()}"
        )

    def assert_chained(self, steps: Sequence[Any]) -> None:
        """Assert that a chain of these steps, in this order, was started.

        Each step is a job class, a job instance (compared by equality), a function, or
        `Chain` / `Batch` for a nested chain or batch of any content. Chains nested in
        a started flow count.
        """
        if any(_chain_matches(chain, steps) for chain in self.chains):
            return
        expected = ", ".join(_format_expected_step(step) for step in steps)
        if self.chains:
            got = f"the chains dispatched were:\n{format_list(self.chains)}"
        else:
            got = "no chain was dispatched"
        raise AssertionError(f"expected a chain of [{expected}], but {got}")

    def assert_batched(self, where: Callable[[FlowRecord], bool] | None = None) -> None:
        """Assert that a batch (that ``where`` accepts, given its `FlowRecord`) was started.

        Batches nested in a started flow count.
        """
        if any(where is None or where(batch) for batch in self.batches):
            return
        what = "a batch" if where is None else "a batch matching the condition"
        if self.batches:
            got = f"the batches dispatched were:\n{format_list(self.batches)}"
        else:
            got = "no batch was dispatched"
        raise AssertionError(f"expected {what} to be dispatched, but {got}")

    def _listing(self) -> str:
        if not self.jobs:
            return "nothing was dispatched"
        return f"dispatched:\n{format_list(self.jobs)}"


def _described(job_class: Any, where: Where | None) -> str:
    name = format_expected(job_class)
    return name if where is None else f"{name} matching the condition"


def _times(count: int) -> str:
    return "1 time" if count == 1 else f"{count} times"


def _format_expected_step(step: Any) -> str:
    if step is Chain:
        return "chain[...]"
    if step is Batch:
        return "batch[...]"
    return format_expected(step)


def _chain_matches(chain: FlowRecord, steps: Sequence[Any]) -> bool:
    return len(chain.steps) == len(steps) and all(
        _step_matches(actual, expected) for actual, expected in zip(chain.steps, steps, strict=True)
    )


def _step_matches(actual: Any, expected: Any) -> bool:
    if expected is Chain or expected is Batch:
        kind = "chain" if expected is Chain else "batch"
        return isinstance(actual, FlowRecord) and actual.kind == kind
    return not isinstance(actual, FlowRecord) and matches(actual, expected)
