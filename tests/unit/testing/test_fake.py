"""`FakeQueue`: what it records, what it runs, and every assertion's failure message."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.contracts import QueueContract
from arvel_flow.testing import FakeQueue
from tests.unit.testing.jobs import (
    CLEANED,
    Flaky,
    ImportAll,
    ImportRows,
    Login,
    Report,
    SendDigest,
    cleanup,
)


@pytest.fixture(autouse=True)
def _clear_runs() -> None:
    for runs in (ImportRows.runs, SendDigest.runs, Flaky.attempts, CLEANED):
        runs.clear()


def failure(check: object) -> str:
    """The message of the AssertionError that ``check()`` raises."""
    with pytest.raises(AssertionError) as raised:
        check()  # type: ignore[operator]
    return str(raised.value)


# Recording ----------------------------------------------------------------------------


async def test_a_fake_queue_is_a_queue_contract_that_runs_nothing() -> None:
    # Given a fake queue
    queue = FakeQueue()
    # When jobs are dispatched now, later and in bulk
    first = await queue.dispatch(ImportRows(path="a.csv"))
    await queue.later(30, SendDigest(user_id=1))
    await queue.bulk([SendDigest(user_id=2), Report()])
    # Then it is a QueueContract that recorded them all in order and ran none
    assert isinstance(queue, QueueContract)
    assert isinstance(first, str)
    assert [str(record) for record in queue.jobs] == [
        "ImportRows(path='a.csv')",
        "SendDigest(user_id=1) after 30s",
        "SendDigest(user_id=2)",
        "Report(title='daily')",
    ]
    assert ImportRows.runs == []
    assert SendDigest.runs == []


async def test_dispatched_returns_the_instances_of_a_class() -> None:
    # Given two digests and an import dispatched
    queue = FakeQueue()
    one, two = SendDigest(user_id=1), SendDigest(user_id=2)
    await queue.bulk([one, ImportRows(path="a.csv"), two])
    # Then dispatched() gives the very instances, in order, filtered by where=
    assert queue.dispatched(SendDigest) == [one, two]
    assert queue.dispatched(SendDigest, where=lambda job: job.user_id == 2) == [two]
    assert queue.dispatched(Report) == []


async def test_size_counts_the_jobs_recorded_per_queue_name() -> None:
    # Given jobs on two queues (SendDigest's queue_name is set per instance here)
    queue = FakeQueue()
    await queue.bulk([ImportRows(path="a"), ImportRows(path="b")])
    await queue.dispatch(SendDigest(user_id=1, queue_name="mail"))
    # Then size() counts each queue's
    assert await queue.size() == 2
    assert await queue.size("mail") == 1
    assert await queue.size("other") == 0


# assert_dispatched ----------------------------------------------------------------------


async def test_assert_dispatched_passes_for_a_dispatched_class_count_and_condition() -> None:
    queue = FakeQueue()
    await queue.bulk([ImportRows(path="a"), ImportRows(path="b")])
    queue.assert_dispatched(ImportRows)
    queue.assert_dispatched(ImportRows, count=2)
    queue.assert_dispatched(ImportRows, count=1, where=lambda job: job.path == "b")
    queue.assert_dispatched(ImportRows(path="a"))


async def test_assert_dispatched_lists_what_was_dispatched_instead() -> None:
    # Given an import and a later digest dispatched
    queue = FakeQueue()
    await queue.dispatch(ImportRows(path="a.csv"))
    await queue.later(90, SendDigest(user_id=7))
    # When a report is expected, Then the message lists what was dispatched
    assert failure(lambda: queue.assert_dispatched(Report)) == (
        "expected Report to be dispatched, but it was not\n"
        "dispatched:\n"
        "  - ImportRows(path='a.csv')\n"
        "  - SendDigest(user_id=7) after 1m 30s"
    )


async def test_assert_dispatched_with_a_count_says_how_many_times_it_was() -> None:
    queue = FakeQueue()
    await queue.dispatch(ImportRows(path="a.csv"))
    assert failure(lambda: queue.assert_dispatched(ImportRows, count=2)) == (
        "expected ImportRows to be dispatched 2 times, but it was dispatched 1 time\n"
        "dispatched:\n"
        "  - ImportRows(path='a.csv')"
    )


async def test_assert_dispatched_with_a_condition_says_none_matched() -> None:
    queue = FakeQueue()
    await queue.dispatch(ImportRows(path="a.csv"))
    assert failure(
        lambda: queue.assert_dispatched(ImportRows, where=lambda job: job.path == "b.csv")
    ) == (
        "expected ImportRows matching the condition to be dispatched, but it was not\n"
        "dispatched:\n"
        "  - ImportRows(path='a.csv')"
    )


async def test_assert_dispatched_of_an_instance_shows_it_in_full() -> None:
    queue = FakeQueue()
    await queue.dispatch(ImportRows(path="a.csv"))
    assert failure(lambda: queue.assert_dispatched(ImportRows(path="b.csv"))) == (
        "expected ImportRows(path='b.csv') to be dispatched, but it was not\n"
        "dispatched:\n"
        "  - ImportRows(path='a.csv')"
    )


def test_assert_dispatched_on_an_empty_queue_says_nothing_was() -> None:
    FakeQueue().assert_dispatched(ImportRows, count=0)
    assert failure(lambda: FakeQueue().assert_dispatched(ImportRows)) == (
        "expected ImportRows to be dispatched, but it was not\nnothing was dispatched"
    )


async def test_a_function_job_is_asserted_by_the_function() -> None:
    queue = FakeQueue()
    await queue.dispatch(cleanup)
    queue.assert_dispatched(cleanup)
    assert failure(lambda: queue.assert_not_dispatched(cleanup)) == (
        "expected cleanup not to be dispatched, but it was dispatched 1 time:\n  - cleanup()"
    )


async def test_a_secret_parameter_is_masked_in_messages() -> None:
    # Given a job holding a password
    queue = FakeQueue()
    await queue.dispatch(Login(user="ada", password=SecretStr("hunter2-long")))
    # When an assertion fails, Then the password shows as *** and never in clear
    message = failure(lambda: queue.assert_nothing_dispatched())
    assert message == (
        "expected nothing to be dispatched, but 1 thing was:\n  - Login(user='ada', password=***)"
    )


# assert_not_dispatched / assert_nothing_dispatched --------------------------------------


async def test_assert_not_dispatched_lists_the_offending_jobs_only() -> None:
    queue = FakeQueue()
    await queue.bulk([ImportRows(path="a"), SendDigest(user_id=1), ImportRows(path="b")])
    queue.assert_not_dispatched(Report)
    queue.assert_not_dispatched(ImportRows, where=lambda job: job.path == "c")
    assert failure(lambda: queue.assert_not_dispatched(ImportRows)) == (
        "expected ImportRows not to be dispatched, but it was dispatched 2 times:\n"
        "  - ImportRows(path='a')\n"
        "  - ImportRows(path='b')"
    )
    assert failure(
        lambda: queue.assert_not_dispatched(ImportRows, where=lambda job: job.path == "b")
    ) == (
        "expected ImportRows matching the condition not to be dispatched, "
        "but it was dispatched 1 time:\n"
        "  - ImportRows(path='b')"
    )


async def test_assert_nothing_dispatched_counts_jobs_and_flows() -> None:
    queue = FakeQueue()
    queue.assert_nothing_dispatched()
    await queue.dispatch(ImportRows(path="a"))
    await Chain(ImportRows(path="b"), SendDigest(user_id=1)).dispatch(queue)
    assert failure(queue.assert_nothing_dispatched) == (
        "expected nothing to be dispatched, but 2 things were:\n"
        "  - ImportRows(path='a')\n"
        "  - chain[ImportRows(path='b'), SendDigest(user_id=1)]"
    )


# assert_dispatched_later ----------------------------------------------------------------


async def test_assert_dispatched_later_passes_for_a_delayed_job() -> None:
    queue = FakeQueue()
    await queue.later(30, SendDigest(user_id=1))
    await queue.later(5, SendDigest(user_id=2))
    queue.assert_dispatched_later(SendDigest)
    queue.assert_dispatched_later(SendDigest, delay=30)
    queue.assert_dispatched_later(SendDigest, delay=5)


async def test_assert_dispatched_later_says_which_delays_there_were() -> None:
    queue = FakeQueue()
    await queue.later(30, SendDigest(user_id=1))
    assert failure(lambda: queue.assert_dispatched_later(SendDigest, delay=60)) == (
        "expected SendDigest to be dispatched after 60s, but it was dispatched after 30s\n"
        "dispatched:\n"
        "  - SendDigest(user_id=1) after 30s"
    )


async def test_assert_dispatched_later_says_when_it_was_dispatched_to_run_now() -> None:
    queue = FakeQueue()
    await queue.dispatch(SendDigest(user_id=1))
    assert failure(lambda: queue.assert_dispatched_later(SendDigest)) == (
        "expected SendDigest to be dispatched later, but it was dispatched to run now\n"
        "dispatched:\n"
        "  - SendDigest(user_id=1)"
    )
    assert failure(lambda: queue.assert_dispatched_later(Report)) == (
        "expected Report to be dispatched later, but it was not\n"
        "dispatched:\n"
        "  - SendDigest(user_id=1)"
    )


# Chains and batches ---------------------------------------------------------------------


async def test_a_chain_is_recorded_as_a_chain_and_its_jobs_do_not_run() -> None:
    # Given a chain dispatched to a fake queue
    queue = FakeQueue()
    result = (
        await Chain(ImportRows(path="a"), Report()).catch(SendDigest(user_id=9)).dispatch(queue)
    )
    # Then it is recorded as a chain, not as dispatched jobs; nothing ran, and the run
    # ended as if every job had succeeded
    queue.assert_chained([ImportRows, Report])
    queue.assert_chained([ImportRows(path="a"), Report(title="daily")])
    queue.assert_not_dispatched(ImportRows)
    assert ImportRows.runs == []
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    assert queue.chains[0].catch == SendDigest(user_id=9)


async def test_assert_chained_lists_the_chains_dispatched_instead() -> None:
    queue = FakeQueue()
    await Chain(ImportRows(path="a"), Batch([SendDigest(user_id=1)], name="mails")).dispatch(queue)
    queue.assert_chained([ImportRows, Batch])
    assert failure(lambda: queue.assert_chained([ImportRows, Report])) == (
        "expected a chain of [ImportRows, Report], but the chains dispatched were:\n"
        "  - chain[ImportRows(path='a'), batch 'mails'[SendDigest(user_id=1)]]"
    )
    assert failure(lambda: queue.assert_chained([ImportRows, Chain])) == (
        "expected a chain of [ImportRows, chain[...]], but the chains dispatched were:\n"
        "  - chain[ImportRows(path='a'), batch 'mails'[SendDigest(user_id=1)]]"
    )


def test_assert_chained_without_any_chain_says_so() -> None:
    assert failure(lambda: FakeQueue().assert_chained([ImportRows])) == (
        "expected a chain of [ImportRows], but no chain was dispatched"
    )


async def test_a_batch_is_recorded_with_its_members_and_settings() -> None:
    # Given a batch of a fan-out and a nested chain
    queue = FakeQueue()
    batch = Batch(
        [SendDigest(user_id=1), Chain(ImportRows(path="a"), SendDigest(user_id=2))],
        name="digests",
        concurrency=2,
    ).allow_failures(1)
    await batch.then(Report()).dispatch(queue)
    # Then the record holds them, and the nested chain counts for assert_chained
    record = queue.batches[0]
    assert (record.name, record.concurrency, record.allow_failures) == ("digests", 2, 1)
    assert record.jobs == (SendDigest(user_id=1), ImportRows(path="a"), SendDigest(user_id=2))
    assert record.then == Report()
    queue.assert_batched()
    queue.assert_batched(where=lambda b: b.name == "digests" and len(b.jobs) == 3)
    queue.assert_chained([ImportRows, SendDigest])


async def test_assert_batched_lists_the_batches_dispatched_instead() -> None:
    queue = FakeQueue()
    await Batch([SendDigest(user_id=1), SendDigest(user_id=2)]).dispatch(queue)
    assert failure(lambda: queue.assert_batched(where=lambda b: len(b.jobs) == 3)) == (
        "expected a batch matching the condition to be dispatched, "
        "but the batches dispatched were:\n"
        "  - batch[SendDigest(user_id=1), SendDigest(user_id=2)]"
    )


def test_assert_batched_without_any_batch_says_so() -> None:
    assert failure(lambda: FakeQueue().assert_batched()) == (
        "expected a batch to be dispatched, but no batch was dispatched"
    )


# run= ------------------------------------------------------------------------------------


async def test_jobs_of_the_classes_in_run_run_and_the_rest_are_recorded() -> None:
    # Given a fake queue that runs imports only
    queue = FakeQueue(run=[ImportRows])
    # When an import and a digest are dispatched
    await queue.bulk([ImportRows(path="a.csv"), SendDigest(user_id=1)])
    # Then the import ran, the digest did not; both are recorded
    assert ImportRows.runs == ["a.csv"]
    assert SendDigest.runs == []
    queue.assert_dispatched(ImportRows)
    queue.assert_dispatched(SendDigest)
    # and only the digest, recorded and not run, waits in the queue
    assert await queue.size() == 1


async def test_jobs_dispatched_from_inside_a_running_job_are_recorded() -> None:
    # Given a job that dispatches more jobs, run by the fake queue
    queue = FakeQueue(run=[ImportAll, ImportRows])
    job = ImportAll(paths=["a.csv", "b.csv"])
    job._queue = queue
    # When it is dispatched
    await queue.dispatch(job)
    # Then what it dispatched is recorded, and the imports it dispatched ran too
    queue.assert_dispatched(ImportRows, count=2)
    queue.assert_dispatched_later(Report, delay=60)
    assert ImportRows.runs == ["a.csv", "b.csv"]


async def test_a_selected_job_retries_on_the_fake_clock_at_no_cost() -> None:
    # Given a job that fails twice, an hour between attempts
    queue = FakeQueue(run=[Flaky])
    # When it is dispatched, Then it ran three times, waiting two fake hours
    await queue.dispatch(Flaky())
    assert Flaky.attempts == [1, 2, 3]
    assert queue.clock.sleeps == [3600, 3600]  # type: ignore[attr-defined]


async def test_in_a_flow_only_the_selected_jobs_run() -> None:
    # Given a chain of an import and a report, only imports selected
    queue = FakeQueue(run=[ImportRows])
    # When it is dispatched
    result = await Chain(ImportRows(path="a.csv"), Report()).dispatch(queue)
    # Then the import ran, the report (which would raise) did not, and the chain succeeded
    assert ImportRows.runs == ["a.csv"]
    assert not isinstance(result, str)
    assert result.succeeded == ("root.0", "root.1")
    queue.assert_chained([ImportRows, Report])


async def test_records_read_as_messages_show_them_with_secrets_masked() -> None:
    # Given a job whose field is named like a secret, in a job and in a chain
    queue = FakeQueue()
    await queue.dispatch(Login(user="ada", password=SecretStr("hunter2-long")))
    await Chain(SendDigest(user_id=1)).dispatch(queue)
    # Then their reprs (what pytest prints of them) are short, and hold no secret
    assert repr(queue.jobs) == "[<Dispatched Login(user='ada', password=***)>]"
    assert repr(queue.flows) == "[<FlowRecord chain[SendDigest(user_id=1)]>]"


async def test_a_function_in_run_runs_when_dispatched() -> None:
    queue = FakeQueue(run=[cleanup])
    await queue.dispatch(cleanup)
    assert CLEANED == ["tmp/"]
    queue.assert_dispatched(cleanup, count=1)
