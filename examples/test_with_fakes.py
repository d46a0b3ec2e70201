"""Testing code that dispatches jobs, and a whole pipeline, with arvel-flow's fixtures.

    pytest examples/test_with_fakes.py        (from the repository root)

The ``fake_queue`` and ``sync_queue`` fixtures come with arvel-flow: no conftest, no
configuration. The README's "Testing" section shows this file; a test runs it.
"""

from pathlib import Path

import pytest

from arvel_flow import Batch, Chain, QueueContract, SyncQueue
from arvel_flow.testing import FakeQueue, run_pipeline
from examples.jobs import ImportRows, Report, SendWeeklyDigest

pytestmark = pytest.mark.asyncio  # or anyio: the fixtures serve both


async def import_uploads(queue: QueueContract, paths: list[str]) -> None:
    """The code under test: what the application does when a user uploads files."""
    for path in paths:
        await queue.dispatch(ImportRows(path=path))
    await queue.later(3600, Report(title="uploads"))


async def test_uploads_are_imported_then_reported(fake_queue: FakeQueue) -> None:
    await import_uploads(fake_queue, ["a.csv", "b.csv"])

    fake_queue.assert_dispatched(ImportRows, count=2)
    fake_queue.assert_dispatched(ImportRows, where=lambda job: job.path == "b.csv")
    fake_queue.assert_dispatched_later(Report, delay=3600)
    fake_queue.assert_not_dispatched(SendWeeklyDigest)
    assert [job.path for job in fake_queue.dispatched(ImportRows)] == ["a.csv", "b.csv"]


async def test_digests_go_out_as_a_batch_after_the_import(fake_queue: FakeQueue) -> None:
    digests = Batch([SendWeeklyDigest(user_id=1), SendWeeklyDigest(user_id=2)], name="digests")
    await Chain(ImportRows(path="users.csv"), digests).dispatch(fake_queue)

    fake_queue.assert_chained([ImportRows, Batch])
    fake_queue.assert_batched(where=lambda batch: batch.name == "digests" and len(batch.jobs) == 2)


async def test_imports_really_run_and_the_rest_is_recorded() -> None:
    queue = FakeQueue(run=[ImportRows])  # these classes run; every other job is recorded
    await import_uploads(queue, ["a.csv"])

    queue.assert_dispatched_later(Report)


async def test_the_quickstart_pipeline_runs_to_the_end() -> None:
    result = await run_pipeline(Path(__file__).parent / "quickstart.yaml")

    assert result.succeeded == ("import", "report")


async def test_a_bounced_digest_fails_after_its_retries(sync_queue: SyncQueue) -> None:
    # Runs inline, before dispatch returns; its retries' backoffs take no real time.
    await sync_queue.dispatch(SendWeeklyDigest(user_id=7, bounce=True))

    [failed] = await sync_queue.store.list_failed()
    assert (failed.exception, failed.attempts) == ("examples.jobs.DigestBouncedError", 4)
