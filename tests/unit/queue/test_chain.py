"""Chains: SPEC §2 "Chain", under each driver and over each store."""

from __future__ import annotations

import pytest

from arvel_flow.queue.chain import Chain
from arvel_flow.queue.result import BatchResult
from tests.unit.queue.flow_harness import Harness
from tests.unit.queue.flow_jobs import Journal, Step

pytestmark = pytest.mark.timeout(10)


async def run(harness: Harness, chain: Chain) -> BatchResult:
    result = await chain.dispatch(harness.queue())
    assert isinstance(result, BatchResult)
    return result


def fail(name: str) -> Step:
    return Step(name=name, fail_times=-1)


async def test_chain_steps_run_in_order(harness: Harness, journal: Journal) -> None:
    # Given a chain of three steps
    # When it runs
    result = await run(harness, Chain(Step(name="a"), Step(name="b"), Step(name="c")))
    # Then they ran in order and the chain succeeded
    assert journal.entries == ["a", "b", "c"]
    assert result.status == "succeeded"
    assert result.succeeded == ("root.0", "root.1", "root.2")


async def test_each_step_starts_only_after_the_previous_one_finished(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain of steps that each take 10 ms
    chain = Chain(*(Step(name=n, hold=0.01) for n in "abc"))
    # When it runs (concurrently, where the driver can)
    await run(harness, chain)
    # Then no two steps ever ran at the same time
    assert journal.max_running == 1
    assert journal.entries == ["a", "b", "c"]


async def test_a_step_that_succeeds_on_retry_lets_the_chain_go_on(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose first step fails once and has a retry
    chain = Chain(Step(name="a", fail_times=1, max_retries=1, backoff=5), Step(name="b"))
    # When it runs
    result = await run(harness, chain)
    # Then the retry is not a failure of the chain
    assert journal.entries == ["a", "a", "b"]
    assert result.status == "succeeded"


async def test_a_chain_stops_at_the_first_permanent_failure(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose second step fails for good
    chain = Chain(Step(name="a"), fail("b"), Step(name="c"), Step(name="d"))
    # When it runs
    result = await run(harness, chain)
    # Then nothing after it ran, the rest is skipped, and the chain failed
    assert journal.entries == ["a", "b"]
    assert result.status == "failed"
    assert result.succeeded == ("root.0",)
    assert result.failed == {"root.1": "RuntimeError: b failed on attempt 1"}
    assert result.skipped == ("root.2", "root.3")


async def test_catch_runs_once_when_the_chain_fails(harness: Harness, journal: Journal) -> None:
    # Given a failing chain with a catch step
    chain = Chain(Step(name="a"), fail("b"), Step(name="c")).catch(Step(name="catch"))
    # When it runs
    await run(harness, chain)
    # Then catch ran exactly once, after the failure
    assert journal.entries == ["a", "b", "catch"]


async def test_catch_does_not_run_when_the_chain_succeeds(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain that succeeds, with a catch step
    # When it runs
    await run(harness, Chain(Step(name="a")).catch(Step(name="catch")))
    # Then catch did not run
    assert journal.runs_of("catch") == 0


@pytest.mark.parametrize("fails", [False, True])
async def test_finally_runs_once_at_the_end_either_way(
    harness: Harness, journal: Journal, fails: bool
) -> None:
    # Given a chain that succeeds or fails, with a finally step
    chain = Chain(Step(name="a"), Step(name="b", fail_times=-1 if fails else 0)).finally_(
        Step(name="fin")
    )
    # When it runs
    result = await run(harness, chain)
    # Then finally ran exactly once, last
    assert journal.entries == ["a", "b", "fin"]
    assert result.status == ("failed" if fails else "succeeded")


async def test_catch_runs_before_finally(harness: Harness, journal: Journal) -> None:
    # Given a failing chain with both catch and finally
    chain = Chain(fail("a"), Step(name="b")).catch(Step(name="catch")).finally_(Step(name="fin"))
    # When it runs
    await run(harness, chain)
    # Then catch ran, then finally, each once
    assert journal.entries == ["a", "catch", "fin"]


async def test_a_failing_catch_still_lets_finally_run(harness: Harness, journal: Journal) -> None:
    # Given a failing chain whose catch fails too
    chain = Chain(fail("a")).catch(fail("catch")).finally_(Step(name="fin"))
    # When it runs
    result = await run(harness, chain)
    # Then finally still ran once and the chain failed
    assert journal.entries == ["a", "catch", "fin"]
    assert result.status == "failed"


async def test_a_chain_result_reports_progress_over_its_jobs(harness: Harness) -> None:
    # Given a chain of four steps that fails at the second, with callbacks
    chain = Chain(Step(name="a"), fail("b"), Step(name="c"), Step(name="d")).catch(Step(name="x"))
    # When it runs
    result = await run(harness, chain)
    # Then progress counts the four steps (skipped ones are finished), callbacks aside
    assert result.progress == (4, 4)
    assert result.has_failures
    assert not result.ok
