"""Chains inside batches and batches inside chains, to any depth (SPEC §1, §2)."""

from __future__ import annotations

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.flow import FanOut, Flow
from arvel_flow.queue.result import BatchResult
from tests.unit.queue.flow_harness import Harness
from tests.unit.queue.flow_jobs import Journal, Step

pytestmark = pytest.mark.timeout(10)


async def run(harness: Harness, flow: Flow) -> BatchResult:
    result = await flow.dispatch(harness.queue())
    assert isinstance(result, BatchResult)
    return result


def fail(name: str) -> Step:
    return Step(name=name, fail_times=-1)


async def test_a_chain_inside_a_batch_keeps_its_order(harness: Harness, journal: Journal) -> None:
    # Given a batch of a three-step chain and a plain member, with a then step
    batch = Batch([Chain(Step(name="a1"), Step(name="a2"), Step(name="a3")), Step(name="b")])
    # When it runs
    result = await run(harness, batch.then(Step(name="then")))
    # Then the chain's steps ran in order, and then ran after everything
    chain_steps = [e for e in journal.entries if e.startswith("a")]
    assert chain_steps == ["a1", "a2", "a3"]
    assert journal.entries[-1] == "then"
    assert result.status == "succeeded"
    assert set(result.succeeded) >= {"root.0.0", "root.0.1", "root.0.2", "root.1"}


async def test_a_failing_chain_is_a_failed_member_of_its_batch(
    harness: Harness, journal: Journal
) -> None:
    # Given a batch whose chain member fails at its first step
    batch = Batch(
        [Chain(fail("a1"), Step(name="a2")).catch(Step(name="chain-catch")), Step(name="b")]
    )
    batch.catch(Step(name="batch-catch"))
    # When it runs
    result = await run(harness, batch)
    # Then the chain skipped its rest and caught; the batch failed and caught, each once
    assert result.skipped == ("root.0.1",)
    assert result.status == "failed"
    assert journal.runs_of("a2") == 0
    assert journal.runs_of("chain-catch") == journal.runs_of("batch-catch") == 1
    assert journal.entries.index("chain-catch") < journal.entries.index("batch-catch")


async def test_a_batch_inside_a_chain_runs_between_its_neighbours(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain: a step, a batch of two, a step
    chain = Chain(Step(name="x"), Batch([Step(name="y"), Step(name="z")]), Step(name="w"))
    # When it runs
    result = await run(harness, chain)
    # Then the batch ran after the first step and before the last
    assert journal.entries[0] == "x"
    assert sorted(journal.entries[1:3]) == ["y", "z"]
    assert journal.entries[3] == "w"
    assert result.status == "succeeded"


async def test_a_failing_batch_stops_its_chain(harness: Harness, journal: Journal) -> None:
    # Given a chain whose batch step fails
    chain = Chain(Step(name="x"), Batch([fail("y"), Step(name="z")]), Step(name="w"))
    # When it runs
    result = await run(harness, chain.catch(Step(name="catch")).finally_(Step(name="fin")))
    # Then the step after the batch was skipped, and the chain caught and finished once
    assert result.skipped == ("root.2",)
    assert result.status == "failed"
    assert journal.runs_of("w") == 0
    assert journal.entries[-2:] == ["catch", "fin"]


async def test_a_batch_allowing_failures_lets_its_chain_go_on(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose batch step may lose a member
    chain = Chain(Batch([fail("y"), Step(name="z")], allow_failures=1), Step(name="w"))
    # When it runs / Then the chain went on and succeeded
    result = await run(harness, chain)
    assert journal.entries[-1] == "w"
    assert result.status == "succeeded"
    assert list(result.failed) == ["root.0.0"]


async def test_flows_nest_to_any_depth_and_each_callback_fires_once(
    harness: Harness, journal: Journal
) -> None:
    # Given chain > batch > chain > batch, each with its callbacks
    inner_batch = (
        Batch([Step(name="b"), Step(name="c")])
        .then(Step(name="then-inner"))
        .finally_(Step(name="fin-inner"))
    )
    inner_chain = Chain(Step(name="a"), inner_batch).finally_(Step(name="fin-chain"))
    outer_batch = Batch([inner_chain, Step(name="d")]).then(Step(name="then-outer"))
    flow = Chain(outer_batch, Step(name="e")).finally_(Step(name="fin-root"))
    # When it runs
    result = await run(harness, flow)
    # Then every job and callback ran exactly once, in an order the nesting allows
    names = [
        "a",
        "b",
        "c",
        "d",
        "e",
        "then-inner",
        "fin-inner",
        "fin-chain",
        "then-outer",
        "fin-root",
    ]
    assert {name: journal.runs_of(name) for name in names} == dict.fromkeys(names, 1)
    order = journal.entries.index
    assert order("a") < order("b") < order("then-inner") < order("fin-inner") < order("fin-chain")
    assert order("fin-chain") < order("then-outer") < order("e") < order("fin-root")
    assert result.status == "succeeded"
    assert result.progress == (5, 5)


async def test_a_failure_deep_inside_fails_every_enclosing_flow(
    harness: Harness, journal: Journal
) -> None:
    # Given a failure three levels down, and a catch at every level
    inner = Batch([fail("deep")]).catch(Step(name="catch-1"))
    middle = Chain(inner, Step(name="skipped")).catch(Step(name="catch-2"))
    outer = Batch([middle, Step(name="sibling")]).catch(Step(name="catch-3"))
    # When it runs
    result = await run(harness, Chain(outer, Step(name="after")).catch(Step(name="catch-4")))
    # Then each level caught once, innermost first, and nothing after the failure ran
    catches = [e for e in journal.entries if e.startswith("catch")]
    assert catches == ["catch-1", "catch-2", "catch-3", "catch-4"]
    assert journal.runs_of("skipped") == journal.runs_of("after") == 0
    assert result.status == "failed"


async def test_a_fan_out_step_in_a_chain_runs_every_item_before_the_next_step(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose middle step fans out over three items
    fan = FanOut(Step(name="item"), [{"name": "f0"}, {"name": "f1"}, {"name": "f2"}])
    # When it runs
    result = await run(harness, Chain(Step(name="a"), fan, Step(name="z")))
    # Then every item ran after the first step and before the last
    assert journal.entries[0] == "a"
    assert sorted(journal.entries[1:4]) == ["f0", "f1", "f2"]
    assert journal.entries[4] == "z"
    assert result.progress == (5, 5)


async def test_a_chain_inside_a_chain_stops_its_parent_when_it_fails(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose first step is a chain that fails
    inner = Chain(Step(name="a"), fail("b"), Step(name="c"))
    # When it runs
    result = await run(harness, Chain(inner, Step(name="d")))
    # Then the rest of both chains was skipped
    assert journal.entries == ["a", "b"]
    assert result.skipped == ("root.0.2", "root.1")
