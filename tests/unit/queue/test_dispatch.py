"""The queue contract (dispatch, later, bulk, size) and the drivers' promises (SPEC §1, §2)."""

from __future__ import annotations

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.contracts import FlowQueue, QueueContract
from arvel_flow.queue.drivers import NullQueue, TaskiqQueue
from arvel_flow.queue.result import BatchResult
from tests.unit.queue.flow_harness import T0, Harness
from tests.unit.queue.flow_jobs import Journal, Step

pytestmark = pytest.mark.timeout(10)


async def test_every_driver_satisfies_the_contracts(memory_harness: Harness) -> None:
    # Given a driver / Then it offers the job API and runs flows
    queue = memory_harness.queue()
    assert isinstance(queue, QueueContract)
    assert isinstance(queue, FlowQueue)
    assert isinstance(NullQueue(), FlowQueue)


async def test_dispatch_returns_a_message_id(memory_harness: Harness, journal: Journal) -> None:
    # Given a job / When it is dispatched
    [message_id] = await memory_harness.run(Step(name="x"))
    # Then it ran, and the dispatch returned its message id
    assert isinstance(message_id, str)
    assert message_id
    assert journal.entries == ["x"]


async def test_later_runs_the_job_after_the_delay(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given a queue
    queue = memory_harness.queue()
    # When a job is queued to run in 30 s
    await queue.later(30, Step(name="later"))
    await memory_harness.settle(queue)
    # Then it ran 30 s later
    assert journal.started_at["later"] == [T0 + 30]


async def test_bulk_dispatches_every_job(memory_harness: Harness, journal: Journal) -> None:
    # Given three jobs / When they are dispatched in bulk
    ids = await memory_harness.run(*(Step(name=n) for n in "abc"))
    # Then each got an id of its own and ran
    assert len(set(ids)) == 3
    assert sorted(journal.entries) == ["a", "b", "c"]


async def test_size_counts_delayed_jobs_in_their_own_queue() -> None:
    # Given a taskiq queue on the real clock (nothing waits for it: the queue is closed)
    queue = TaskiqQueue()
    try:
        # When a job for queue "mail" is queued to run in a minute
        await queue.later(60, Step(name="m", queue_name="mail"))
        sizes = (await queue.size("mail"), await queue.size("default"))
    finally:
        await queue.close()
    # Then it is waiting in "mail", and only there
    assert sizes == (1, 0)


async def test_dispatch_without_waiting_returns_the_run_id(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given a chain
    queue = memory_harness.queue()
    # When it is dispatched with wait=False
    run_id = await Chain(Step(name="a"), Step(name="b")).dispatch(queue, wait=False)
    # Then a run id comes back, and waiting on it gives the run's result
    assert isinstance(run_id, str)
    result = await queue.wait(run_id)
    assert (result.run_id, result.status) == (run_id, "succeeded")
    assert journal.entries == ["a", "b"]


async def test_the_null_driver_runs_nothing_and_records_jobs(journal: Journal) -> None:
    # Given the null driver
    queue = NullQueue()
    # When jobs are dispatched
    await queue.dispatch(Step(name="a", queue_name="mail"))
    await queue.dispatch(Step(name="b"))
    # Then none ran, and each was recorded in its queue
    assert journal.entries == []
    assert [e.job.params["name"] for e in queue.dispatched] == ["a", "b"]
    assert (await queue.size("mail"), await queue.size("default")) == (1, 1)


async def test_the_null_driver_lists_what_a_flow_would_run(journal: Journal) -> None:
    # Given the null driver and a flow with a batch and callbacks
    queue = NullQueue()
    flow = Chain(
        Step(name="a"), Batch([Step(name="b"), Step(name="c")]).then(Step(name="t"))
    ).finally_(Step(name="f"))
    # When the flow is dispatched (a dry run)
    result = await flow.dispatch(queue)
    # Then nothing ran, and the result lists every job as pending, in tree order
    assert isinstance(result, BatchResult)
    assert journal.entries == []
    assert result.status == "dry-run"
    assert result.pending == ("root.0", "root.1.0", "root.1.1", "root.1.then", "root.finally")
