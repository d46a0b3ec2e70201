"""Random nested chains and batches against a small reference model.

Hypothesis builds trees of chains and batches (any depth) whose leaf jobs succeed or
fail for good, with random allowances, concurrency and callbacks; the tree runs
through a driver, and every outcome is checked against what SPEC §2 says it must be:
final states, which callbacks fired and that each fired exactly once, the order of
steps inside chains, and that only members of a failed batch are ever cancelled.

"Fail, then continue": some failing leaves are fixed after the run, which is then
continued (``run --resume`` of a failed run). The model says which steps run again
(those that did not succeed, inside groups that failed), that a leaf that succeeded
never runs again, and that each callback fires at most once in the run's life:
``catch`` not again once fired, ``finally`` once, ``then`` when the group ends
succeeded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.sync import SyncQueue
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.queue.job import Job
from arvel_flow.queue.plan import compute_allowance
from arvel_flow.queue.result import BatchResult

FIXED: list[bool] = [False]
"""True once the cause of the fixable failures is gone (before a continuation)."""


class Scripted(Job):
    """Succeeds or fails for good, as the tree says; a fixable failure stops once fixed."""

    fail: bool = False
    fixable: bool = False
    max_retries: int = 0

    async def handle(self) -> None:
        if self.fail and not (self.fixable and FIXED[0]):
            raise RuntimeError("scripted failure")


@dataclass
class Leaf:
    fail: bool
    fixable: bool = False


@dataclass
class Group:
    kind: str  # "chain" or "batch"
    children: list[Any]
    catch: bool = False
    finally_: bool = False
    then: bool = False
    allowance: bool | int | str = False
    concurrency: int | None = None
    keys: dict[str, str] = field(default_factory=dict)


leaves = st.builds(Leaf, fail=st.booleans(), fixable=st.booleans())


def groups(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Group]:
    members = st.lists(children, min_size=1, max_size=4)
    chain = st.builds(
        Group, kind=st.just("chain"), children=members, catch=st.booleans(), finally_=st.booleans()
    )
    batch = st.builds(
        Group,
        kind=st.just("batch"),
        children=members,
        catch=st.booleans(),
        finally_=st.booleans(),
        then=st.booleans(),
        allowance=st.one_of(st.booleans(), st.integers(0, 3), st.sampled_from(["50%", "34%"])),
        concurrency=st.sampled_from([None, 1, 2]),
    )
    return st.one_of(chain, batch)


trees = st.recursive(leaves, groups, max_leaves=10).filter(lambda t: isinstance(t, Group))


def build(node: Any) -> Any:
    """The builder object for a model node."""
    if isinstance(node, Leaf):
        return Scripted(fail=node.fail, fixable=node.fixable)
    children = [build(child) for child in node.children]
    flow: Any = (
        Chain(*children)
        if node.kind == "chain"
        else Batch(children, allow_failures=node.allowance, concurrency=node.concurrency)
    )
    if node.then:
        flow = flow.then(Scripted())
    if node.catch:
        flow = flow.catch(Scripted())
    if node.finally_:
        flow = flow.finally_(Scripted())
    return flow


def expected_outcome(node: Any, fixed: bool = False) -> str:
    """What the reference model says a node ends as, if it runs (``fixed``: once fixed)."""
    if isinstance(node, Leaf):
        return "failed" if node.fail and not (fixed and node.fixable) else "succeeded"
    outcomes = [expected_outcome(child, fixed) for child in node.children]
    if node.kind == "chain":
        return "failed" if "failed" in outcomes else "succeeded"
    allowed = compute_allowance(node.allowance, len(node.children))
    failures = outcomes.count("failed")
    return "failed" if allowed is not None and failures > allowed else "succeeded"


class Trace:
    """Job events in order, by step key."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        if event.event in ("job.started", "job.succeeded", "job.failed"):
            self.events.append(event)

    def starts(self) -> Counter[str]:
        return Counter(e.step for e in self.events if e.event == "job.started" and e.step)

    def index(self, step_prefix: str, event: str, pick: Any) -> int | None:
        found = [
            i
            for i, e in enumerate(self.events)
            if e.event == event and e.step is not None and _inside(e.step, step_prefix)
        ]
        return pick(found) if found else None


def _inside(step: str, key: str) -> bool:
    return step == key or step.startswith(key + ".")


class Checker:
    """Walks the model alongside what happened."""

    def __init__(self, trace: Trace, states: dict[str, str]) -> None:
        self.trace = trace
        self.starts = trace.starts()
        self.states = states

    def check(self, node: Any, key: str, started: bool) -> None:
        if not started:
            assert not any(_inside(step, key) for step in self.starts), f"{key} ran but should not"
            return
        if isinstance(node, Leaf):
            assert self.starts[key] == 1, f"{key} started {self.starts[key]} times"
            assert self.states[key] == expected_outcome(node), key
            return
        outcome = expected_outcome(node)
        if node.kind == "chain":
            self._check_chain(node, key)
        else:
            self._check_batch(node, key, outcome)
        self._check_callbacks(node, key, outcome)

    def _check_chain(self, node: Group, key: str) -> None:
        previous_ok = True
        for i, child in enumerate(node.children):
            child_key = f"{key}.{i}"
            self.check(child, child_key, previous_ok)
            if not previous_ok:
                assert self.states.get(child_key, "skipped") == "skipped", child_key
            if previous_ok and i > 0:
                before = self.trace.index(f"{key}.{i - 1}", "job.started", max)
                first = self.trace.index(child_key, "job.started", min)
                if before is not None and first is not None:
                    assert before < first, f"{child_key} started before {key}.{i - 1} finished"
            previous_ok = previous_ok and expected_outcome(child) == "succeeded"

    def _check_batch(self, node: Group, key: str, outcome: str) -> None:
        for i, child in enumerate(node.children):
            child_key = f"{key}.{i}"
            ran = any(_inside(step, child_key) for step in self.starts) or child_key in self.states
            if not ran:
                assert outcome == "failed", f"{child_key} was cancelled in a batch that succeeded"
            self.check(child, child_key, ran)

    def _check_callbacks(self, node: Group, key: str, outcome: str) -> None:
        due = {
            "then": node.then and outcome == "succeeded",
            "catch": node.catch and outcome == "failed",
            "finally": node.finally_,
        }
        for role, fires in due.items():
            count = self.starts[f"{key}.{role}"]
            assert count == (1 if fires else 0), f"{key}.{role} fired {count} times"
        if due["catch"] and due["finally"]:
            catch_done = self.trace.index(f"{key}.catch", "job.succeeded", max)
            finally_start = self.trace.index(f"{key}.finally", "job.started", min)
            assert catch_done is not None
            assert finally_start is not None
            assert catch_done < finally_start, f"{key}: finally ran before catch finished"
        if due["finally"]:
            last_child = max(
                filter(
                    None,
                    (
                        self.trace.index(f"{key}.{i}", "job.started", max)
                        for i in range(len(node.children))
                    ),
                ),
                default=-1,
            )
            assert self.trace.index(f"{key}.finally", "job.started", min) > last_child


async def run_and_check(tree: Group, queue: Queue, trace: Trace) -> None:
    result = await build(tree).dispatch(queue)
    if isinstance(queue, TaskiqQueue):
        await queue.join()
    records = await queue.store.get_steps(result.run_id)
    states = {key: record.state for key, record in records.items()}
    assert result.status == expected_outcome(tree)
    Checker(trace, states).check(tree, "root", started=True)
    assert_counts_add_up(await queue.wait(result.run_id), tree, states)


def jobs_of(node: Any, key: str, states: dict[str, str]) -> list[str]:
    """The model's jobs of a run: every leaf, and every callback that fired (has a state)."""
    if isinstance(node, Leaf):
        return [key]
    jobs = [job for i, c in enumerate(node.children) for job in jobs_of(c, f"{key}.{i}", states)]
    roles = {"then": node.then, "catch": node.catch, "finally": node.finally_}
    return jobs + [f"{key}.{r}" for r, on in roles.items() if on and f"{key}.{r}" in states]


def assert_counts_add_up(result: BatchResult, tree: Group, states: dict[str, str]) -> None:
    """Each job of the model sits in one count, and the counts add up to the total."""
    jobs = jobs_of(tree, "root", states)
    counts = result.counts
    parts = ("succeeded", "failed", "skipped", "cancelled", "duplicates", "pending")
    assert sum(counts[part] for part in parts) == counts["total"] == len(jobs), counts
    listed = [
        *result.succeeded,
        *result.failed,
        *result.skipped,
        *result.cancelled,
        *result.duplicates,
        *result.pending,
    ]
    assert sorted(listed) == sorted(jobs)
    assert set(result.allowed_failures) <= set(result.failed)
    assert result.progress[1] == len([j for j in jobs if not j.rsplit(".", 1)[-1].isalpha()])


OK = ("succeeded", "duplicate")


class ContinuationChecker:
    """Walks the model alongside a continuation: what ran again, and what did not."""

    def __init__(self, before: dict[str, str], trace: Trace, states: dict[str, str]) -> None:
        self.before = before
        self.trace = trace
        self.starts = trace.starts()
        self.states = states

    def check(self, node: Any, key: str, runs: bool) -> None:
        """``runs``: the node runs (again, or for the first time) in the continuation."""
        if not runs:
            assert not any(_inside(step, key) for step in self.starts), f"{key} ran again"
            return
        if isinstance(node, Leaf):
            assert self.starts[key] == 1, f"{key} started {self.starts[key]} times"
            assert self.states[key] == expected_outcome(node, fixed=True), key
            return
        outcome = expected_outcome(node, fixed=True)
        assert self.states[key] == outcome, key
        if node.kind == "chain":
            previous_ok = True
            for i, child in enumerate(node.children):
                child_key = f"{key}.{i}"
                self.check(child, child_key, previous_ok and self.before.get(child_key) not in OK)
                previous_ok = previous_ok and expected_outcome(child, fixed=True) == "succeeded"
        else:
            for i, child in enumerate(node.children):
                child_key = f"{key}.{i}"
                ran = any(_inside(step, child_key) for step in self.starts)
                if self.before.get(child_key) in OK:
                    assert not ran, f"{child_key} succeeded, then ran again"
                elif not ran:
                    assert outcome == "failed", f"{child_key} cancelled in a batch that succeeded"
                self.check(child, child_key, ran)
        ended_before = self.before.get(key) in ("succeeded", "failed")
        due = {
            "then": node.then and outcome == "succeeded",
            "catch": node.catch and outcome == "failed" and self.before.get(key) != "failed",
            "finally": node.finally_ and not ended_before,
        }
        for role, fires in due.items():
            count = self.starts[f"{key}.{role}"]
            assert count == (1 if fires else 0), f"{key}.{role} fired {count} times on continuing"


async def run_fix_and_continue(tree: Group, queue: Queue, trace: Trace) -> None:
    FIXED[0] = False
    first = await build(tree).dispatch(queue)
    if isinstance(queue, TaskiqQueue):
        await queue.join()
    records = await queue.store.get_steps(first.run_id)
    before = {key: record.state for key, record in records.items()}
    assert first.status == expected_outcome(tree)
    if first.status != "failed":
        return
    FIXED[0] = True
    trace.events.clear()
    await queue.resume(first.run_id)
    result = await queue.wait(first.run_id)
    if isinstance(queue, TaskiqQueue):
        await queue.join()
    records = await queue.store.get_steps(first.run_id)
    states = {key: record.state for key, record in records.items()}
    assert result.status == expected_outcome(tree, fixed=True)
    ContinuationChecker(before, trace, states).check(tree, "root", runs=True)
    assert_counts_add_up(result, tree, states)


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(tree=trees)
async def test_sync_driver_matches_the_reference_model(tree: Group) -> None:
    trace = Trace()
    await run_and_check(tree, SyncQueue(events=EventBus(trace)), trace)


@SETTINGS
@given(tree=trees)
async def test_inmemory_taskiq_driver_matches_the_reference_model(tree: Group) -> None:
    trace = Trace()
    queue = TaskiqQueue(concurrency=3, events=EventBus(trace))
    try:
        await run_and_check(tree, queue, trace)
    finally:
        await queue.close()


@SETTINGS
@given(tree=trees)
async def test_continuing_a_failed_run_matches_the_reference_model(tree: Group) -> None:
    trace = Trace()
    queue = TaskiqQueue(concurrency=3, events=EventBus(trace))
    try:
        await run_fix_and_continue(tree, queue, trace)
    finally:
        FIXED[0] = False
        await queue.close()


@SETTINGS
@given(tree=trees)
async def test_continuing_on_the_sync_driver_matches_the_reference_model(tree: Group) -> None:
    trace = Trace()
    try:
        await run_fix_and_continue(tree, SyncQueue(events=EventBus(trace)), trace)
    finally:
        FIXED[0] = False
