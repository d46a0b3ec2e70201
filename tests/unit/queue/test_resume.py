"""Resuming a run whose process died (SPEC §2 "Stores", "Distributed runs").

The first process is a sync driver that stops delivering after a number of sends, as
if killed; a fresh queue on the same store (memory, sqlite, redis) then resumes the run
from the plan stored with it: jobs are rebuilt from their dotted paths.
"""

from __future__ import annotations

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.events import EventBus
from arvel_flow.queue.flow import Flow
from arvel_flow.queue.result import BatchResult
from tests.unit.queue.flow_harness import CrashingQueue, Events, Harness
from tests.unit.queue.flow_jobs import JOURNAL, Journal, Step, UserJob

pytestmark = pytest.mark.timeout(10)


async def crash_then_resume(
    harness: Harness, flow: Flow, deliveries: int, *, ran_before: list[str]
) -> BatchResult:
    """Run ``flow`` in a process that dies after ``deliveries`` sends; resume it afresh.

    ``ran_before`` is what must have run when the first process died.
    """
    crashed = CrashingQueue(
        deliveries,
        store=harness.make_store(),
        clock=harness.clock,
        events=EventBus(harness.events.append),
    )
    harness.queues.append(crashed)
    run_id = await flow.dispatch(crashed, wait=False)
    assert isinstance(run_id, str)
    assert crashed.dropped, "the first process should have died before the end"
    assert JOURNAL.entries == ran_before
    # A dead process renews nothing: its owner lease runs out before the resume.
    await harness.clock.sleep(crashed.owner_lease)
    fresh = harness.queue()
    await fresh.resume(run_id)
    return await fresh.wait(run_id)


async def test_finished_steps_are_not_run_again(harness: Harness, journal: Journal) -> None:
    # Given a chain of four whose process died after running two steps
    chain = Chain(*(Step(name=name) for name in "abcd"))
    # When the run is resumed elsewhere
    result = await crash_then_resume(harness, chain, deliveries=2, ran_before=["a", "b"])
    # Then the rest ran, and every step ran exactly once, in order
    assert journal.entries == ["a", "b", "c", "d"]
    assert result.status == "succeeded"
    assert result.succeeded == ("root.0", "root.1", "root.2", "root.3")


@pytest.mark.parametrize(
    "ran_before",
    [
        pytest.param(["b1", "b2", "then"], id="died-between-then-and-finally"),
        pytest.param(["b1", "b2", "then", "fin-batch"], id="died-after-the-batch"),
    ],
)
async def test_callbacks_that_fired_do_not_fire_again(
    harness: Harness, journal: Journal, ran_before: list[str]
) -> None:
    # Given a chain holding a batch with then and finally, whose process died after
    # some of the batch's callbacks had run
    batch = Batch([Step(name="b1"), Step(name="b2")])
    batch.then(Step(name="then")).finally_(Step(name="fin-batch"))
    chain = Chain(batch, Step(name="d")).finally_(Step(name="fin-chain"))
    # When the run is resumed
    result = await crash_then_resume(harness, chain, len(ran_before), ran_before=ran_before)
    # Then the callbacks that had run did not run again, and the rest ran once, in order
    names = ["b1", "b2", "then", "fin-batch", "d", "fin-chain"]
    assert {name: journal.runs_of(name) for name in names} == dict.fromkeys(names, 1)
    assert journal.entries[-3:] == ["fin-batch", "d", "fin-chain"]
    assert result.status == "succeeded"


async def test_a_job_dispatched_but_never_run_runs_on_resume(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose process died right after dispatching its first step
    # When the run is resumed
    result = await crash_then_resume(
        harness, Chain(Step(name="a"), Step(name="b")), deliveries=0, ran_before=[]
    )
    # Then the lost step ran (at least once) and the chain finished
    assert journal.entries == ["a", "b"]
    assert result.status == "succeeded"


async def test_a_batch_resumes_with_the_members_it_had_not_started(
    harness: Harness, journal: Journal
) -> None:
    # Given a batch running one member at a time, whose process died after two
    batch = Batch([Step(name=f"m{i}") for i in range(5)], concurrency=1).then(Step(name="then"))
    # When the run is resumed
    result = await crash_then_resume(harness, batch, deliveries=2, ran_before=["m0", "m1"])
    # Then the remaining members ran, each member once, and then once
    assert journal.entries == ["m0", "m1", "m2", "m3", "m4", "then"]
    assert result.progress == (5, 5)


async def test_a_failed_chain_resumes_to_its_finally_without_catching_again(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain that failed and ran its catch before the process died
    chain = (
        Chain(Step(name="a", fail_times=-1), Step(name="b"))
        .catch(Step(name="catch"))
        .finally_(Step(name="fin"))
    )
    # When the run is resumed
    result = await crash_then_resume(harness, chain, deliveries=2, ran_before=["a", "catch"])
    # Then only finally ran; the failed step and catch did not run again, the rest stays skipped
    assert journal.entries == ["a", "catch", "fin"]
    assert result.status == "failed"
    assert result.skipped == ("root.1",)


async def test_a_resumed_run_announces_its_end_once(harness: Harness, events: Events) -> None:
    # Given a chain whose process died half way
    # When the run is resumed
    result = await crash_then_resume(
        harness, Chain(Step(name="a"), Step(name="b")), deliveries=1, ran_before=["a"]
    )
    # Then the run finished once, with its status
    [finished] = events.named("run.finished")
    assert (finished.run_id, finished.data["status"]) == (result.run_id, "succeeded")


async def test_resuming_a_finished_run_runs_nothing(harness: Harness, journal: Journal) -> None:
    # Given a run that finished
    queue = harness.queue()
    result = await Chain(Step(name="a")).dispatch(queue)
    assert isinstance(result, BatchResult)
    # When it is resumed from a fresh queue
    fresh = harness.queue()
    await fresh.resume(result.run_id)
    again = await fresh.wait(result.run_id)
    # Then nothing ran again and the result is the same
    assert journal.entries == ["a"]
    assert again.status == "succeeded"


async def test_batch_members_dispatched_but_lost_run_on_resume(
    harness: Harness, journal: Journal
) -> None:
    # Given a batch of four without a limit, whose process died after sending one member
    batch = Batch([Step(name=f"m{i}") for i in range(4)]).then(Step(name="then"))
    # When the run is resumed
    result = await crash_then_resume(harness, batch, deliveries=1, ran_before=["m0"])
    # Then the three lost members ran once each, and then once
    assert sorted(journal.entries[1:4]) == ["m1", "m2", "m3"]
    assert journal.entries[4:] == ["then"]
    assert result.status == "succeeded"


async def test_a_resumed_unique_job_releases_its_unique_lock_when_it_finishes(
    harness: Harness, journal: Journal
) -> None:
    # Given a unique job whose process died after dispatching it (lock taken, job lost)
    job = UserJob(user_id=1, unique_for=3600, unique_id="import-{user_id}")
    await crash_then_resume(harness, Chain(job), deliveries=0, ran_before=[])
    # When the same job is dispatched again after the resumed run finished
    [again] = await harness.run(job)
    # Then it is not refused as a duplicate: the finished job gave its lock back
    assert again is not None
    assert journal.runs_of("user-1") == 2
