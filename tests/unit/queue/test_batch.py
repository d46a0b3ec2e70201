"""Batches: SPEC §2 "Batch", under each driver and over each store."""

from __future__ import annotations

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.plan import Allowance, Matrix
from arvel_flow.queue.result import BatchResult
from tests.unit.queue.flow_harness import Events, Harness
from tests.unit.queue.flow_jobs import Journal, Step, UserJob

pytestmark = pytest.mark.timeout(10)


async def run(harness: Harness, batch: Batch, *, concurrency: int = 16) -> BatchResult:
    result = await batch.dispatch(harness.queue(concurrency=concurrency))
    assert isinstance(result, BatchResult)
    return result


def members(count: int, failing: int = 0, hold: float = 0.0) -> list[Step]:
    """``count`` steps m0, m1, ...; the first ``failing`` of them fail for good."""
    return [
        Step(name=f"m{i}", fail_times=-1 if i < failing else 0, hold=hold) for i in range(count)
    ]


async def test_every_member_runs_and_then_follows(harness: Harness, journal: Journal) -> None:
    # Given a batch of three members with a then step
    # When it runs
    result = await run(harness, Batch(members(3)).then(Step(name="then")))
    # Then all members ran, then ran once after them, and the batch succeeded
    assert sorted(journal.entries[:3]) == ["m0", "m1", "m2"]
    assert journal.entries[3:] == ["then"]
    assert result.status == "succeeded"


# Concurrency ------------------------------------------------------------------------------


async def test_batch_concurrency_limits_members_running_at_once(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given six members of 10 ms each, at most two at a time, on a driver with 16 slots
    # When the batch runs
    await run(taskiq_harness, Batch(members(6, hold=0.01), concurrency=2))
    # Then all ran, never more than two at once, and two did run together
    assert journal.max_running == 2
    assert len(journal.entries) == 6


async def test_without_a_batch_limit_the_drivers_slots_are_the_limit(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given six members of 10 ms each, no batch limit, on a driver with 3 slots
    # When the batch runs
    await run(taskiq_harness, Batch(members(6, hold=0.01)), concurrency=3)
    # Then three ran at once
    assert journal.max_running == 3


async def test_without_any_limit_all_members_run_at_once(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given six members of 10 ms each, no batch limit, and 16 driver slots
    # When the batch runs / Then all six ran together
    await run(taskiq_harness, Batch(members(6, hold=0.01)))
    assert journal.max_running == 6


async def test_a_chain_member_holds_its_slot_until_the_whole_chain_finished(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given one member at a time, and two chains of two 10 ms steps as members
    first = Chain(Step(name="a1", hold=0.01), Step(name="a2", hold=0.01))
    second = Chain(Step(name="b1", hold=0.01), Step(name="b2", hold=0.01))
    # When the batch runs
    await run(taskiq_harness, Batch([first, second], concurrency=1))
    # Then the second chain started only once the first had finished
    assert journal.entries == ["a1", "a2", "b1", "b2"]


# Allowance --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowance", "count", "failing", "status"),
    [
        (False, 3, 1, "failed"),
        (False, 3, 0, "succeeded"),
        (True, 3, 3, "succeeded"),
        (2, 4, 2, "succeeded"),
        (2, 4, 3, "failed"),
        ("10%", 10, 1, "succeeded"),
        ("10%", 10, 2, "failed"),
        ("50%", 3, 1, "succeeded"),
        ("50%", 3, 2, "failed"),
    ],
)
async def test_allow_failures_decides_whether_the_batch_failed(
    harness: Harness, journal: Journal, allowance: Allowance, count: int, failing: int, status: str
) -> None:
    # Given a batch with ``failing`` of ``count`` members failing, and an allowance
    batch = Batch(members(count, failing), allow_failures=allowance)
    batch.then(Step(name="then")).catch(Step(name="catch"))
    # When it runs
    result = await run(harness, batch)
    # Then it failed only beyond the allowance: catch if it did, then if it did not
    assert result.status == status
    assert len(result.failed) == failing
    assert journal.runs_of("then") == (status == "succeeded")
    assert journal.runs_of("catch") == (status == "failed")


async def test_allow_failures_builder_without_argument_allows_any(harness: Harness) -> None:
    # Given a batch where every member fails, built with .allow_failures()
    # When it runs / Then it succeeded all the same, with its failures reported
    result = await run(harness, Batch(members(2, failing=2)).allow_failures())
    assert result.status == "succeeded"
    assert result.has_failures


async def test_catch_runs_once_however_many_members_fail(
    harness: Harness, journal: Journal
) -> None:
    # Given a batch of four members that all fail, one failure allowed
    batch = Batch(members(4, failing=4), allow_failures=1).catch(Step(name="catch"))
    # When it runs
    await run(harness, batch)
    # Then catch ran exactly once
    assert journal.runs_of("catch") == 1


async def test_members_not_started_are_cancelled_at_the_first_failure_beyond_the_allowance(
    harness: Harness, journal: Journal
) -> None:
    # Given a batch that runs one member at a time, the first of which fails
    batch = (
        Batch(members(4, failing=1), concurrency=1)
        .then(Step(name="then"))
        .finally_(Step(name="fin"))
    )
    # When it runs
    result = await run(harness, batch)
    # Then the others never ran and are cancelled; then did not run, finally did
    assert journal.entries == ["m0", "fin"]
    assert result.cancelled == ("root.1", "root.2", "root.3")
    assert list(result.failed) == ["root.0"]
    assert result.status == "failed"


async def test_members_already_running_finish_when_the_batch_fails(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given two at a time: a slow member and one that fails at once, then two more
    batch = Batch(
        [
            Step(name="slow", hold=0.1),
            Step(name="bad", fail_times=-1),
            Step(name="c"),
            Step(name="d"),
        ],
        concurrency=2,
    )
    # When the batch runs
    result = await run(taskiq_harness, batch)
    # Then the slow member finished and succeeded, the ones not started were cancelled
    assert result.succeeded == ("root.0",)
    assert list(result.failed) == ["root.1"]
    assert result.cancelled == ("root.2", "root.3")
    assert journal.runs_of("c") == journal.runs_of("d") == 0


async def test_catch_runs_at_the_failure_and_finally_after_running_members(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given a batch whose fast member fails while a slow one runs, with catch and finally
    batch = Batch([Step(name="slow", hold=0.1), Step(name="bad", fail_times=-1)])
    batch.catch(Step(name="catch")).finally_(Step(name="fin"))
    # When it runs
    await run(taskiq_harness, batch)
    # Then catch ran at the failure, while the slow member still ran
    assert journal.timeline.index("catch>") < journal.timeline.index("<slow")
    # And finally only once the slow member had finished
    assert journal.timeline.index("<slow") < journal.timeline.index("fin>")
    assert journal.runs_of("catch") == journal.runs_of("fin") == 1


# Callbacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fails", [False, True])
async def test_then_runs_only_on_success_and_finally_either_way(
    harness: Harness, journal: Journal, fails: bool
) -> None:
    # Given a batch with then and finally, whose member succeeds or fails
    batch = Batch(members(1, failing=int(fails))).then(Step(name="then")).finally_(Step(name="fin"))
    # When it runs
    await run(harness, batch)
    # Then then ran (before finally) only on success, and finally once either way
    assert journal.entries == (["m0", "fin"] if fails else ["m0", "then", "fin"])


async def test_catch_runs_before_finally(harness: Harness, journal: Journal) -> None:
    # Given a failing batch with catch and finally
    batch = Batch(members(1, failing=1)).catch(Step(name="catch")).finally_(Step(name="fin"))
    # When it runs / Then catch ran, then finally
    await run(harness, batch)
    assert journal.entries == ["m0", "catch", "fin"]


# Results, progress and fan-out ------------------------------------------------------------


async def test_batch_result_reports_every_member(harness: Harness) -> None:
    # Given a batch with one failing member among three, failures allowed
    batch = Batch(
        [Step(name="a"), Step(name="b", fail_times=-1), Step(name="c")], allow_failures=True
    )
    # When it runs
    result = await run(harness, batch)
    # Then the result lists who succeeded and who failed with what, and full progress
    assert result.status == "succeeded"
    assert result.ok
    assert result.succeeded == ("root.0", "root.2")
    assert result.failed == {"root.1": "RuntimeError: b failed on attempt 1"}
    assert result.has_failures
    assert result.cancelled == result.skipped == result.pending == ()
    assert result.progress == (3, 3)


async def test_cancelled_members_count_as_finished_in_progress(harness: Harness) -> None:
    # Given one at a time, the first of four failing
    # When the batch runs
    result = await run(harness, Batch(members(4, failing=1), concurrency=1))
    # Then progress is complete: one failed, three cancelled
    assert result.progress == (4, 4)


async def test_batch_progress_events_count_finished_members(
    harness: Harness, events: Events
) -> None:
    # Given a batch of three members
    # When it runs
    result = await run(harness, Batch(members(3, failing=1), allow_failures=1))
    # Then each finish was announced once with the batch's counters (concurrent finishes
    # may be announced out of order), and the end with its status
    progress = {e.data["finished"]: e for e in events.named("batch.progress", "root")}
    assert sorted(progress) == [1, 2, 3]
    assert len(events.named("batch.progress", "root")) == 3
    assert {e.data["total"] for e in progress.values()} == {3}
    assert progress[3].data["failed"] == 1
    [finished] = events.named("batch.finished", "root")
    assert finished.data["status"] == "succeeded"
    assert finished.run_id == result.run_id


async def test_fan_out_runs_one_member_per_item(harness: Harness, journal: Journal) -> None:
    # Given a batch with a fan-out over three items and a plain member
    fan = FanOut(Step(name="item"), [{"name": "f0"}, {"name": "f1"}, {"name": "f2"}])
    # When it runs
    result = await run(harness, Batch([fan, Step(name="plain")]))
    # Then each item ran as a member of its own, keyed by its index
    assert sorted(journal.entries) == ["f0", "f1", "f2", "plain"]
    assert set(result.succeeded) == {"root.0[0]", "root.0[1]", "root.0[2]", "root.1"}
    assert result.progress == (4, 4)


async def test_a_failing_fan_out_item_is_a_failed_member(
    harness: Harness, journal: Journal
) -> None:
    # Given a fan-out in which one item fails, no failures allowed, one at a time
    items = [{"name": "f0"}, {"name": "f1", "fail_times": -1}, {"name": "f2"}]
    batch = Batch([FanOut(Step(name="item"), items)], concurrency=1)
    # When it runs
    result = await run(harness, batch)
    # Then that item failed the batch and the item after it was cancelled
    assert list(result.failed) == ["root.0[1]"]
    assert result.cancelled == ("root.0[2]",)
    assert journal.entries == ["f0", "f1"]


async def test_a_matrix_fan_out_runs_the_cartesian_product(
    harness: Harness, journal: Journal
) -> None:
    # Given a fan-out over a matrix of two axes
    matrix = Matrix({"name": ["a", "b"], "error": ["ValueError", "KeyError"]})
    # When it runs
    result = await run(harness, Batch([FanOut(Step(name="item"), matrix)]))
    # Then one member ran per combination
    assert len(result.succeeded) == 4
    assert sorted(journal.entries) == ["a", "a", "b", "b"]


async def test_many_duplicate_members_in_a_row_are_all_reported(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given another dispatch holds user 1's unique lock, and a one-at-a-time batch of
    # 400 unique jobs of user 1
    queue = memory_harness.queue()
    assert await queue.store.lock().acquire("unique:import-1", "another-dispatch", 3600)
    jobs = [UserJob(user_id=1, unique_for=60, unique_id="import-{user_id}") for _ in range(400)]
    # When the batch runs
    result = await run(memory_harness, Batch(jobs, concurrency=1))
    # Then every member is reported as a duplicate and none ran
    assert len(result.duplicates) == 400
    assert journal.entries == []
