"""A failed distributed run continued: its failed step runs again in the workers."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import Cluster, every_broker
from tests.integration.jobs import Flaky, Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@every_broker
async def test_a_failed_run_continued_reruns_its_failed_step_in_the_workers(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker, and a chain whose middle step fails on its first attempt only
    await cluster.start_worker("--concurrency", "4")
    chain = Chain(
        Record(journal=cluster.journal_key, tag="first"),
        Flaky(journal=cluster.journal_key, tag="flaky", failures=1, max_retries=0),
        Record(journal=cluster.journal_key, tag="last"),
    ).catch(Record(journal=cluster.journal_key, tag="catch"))
    async with asyncio.timeout(30):
        failed = await chain.dispatch(dispatcher)
    assert not isinstance(failed, str)
    assert failed.status == "failed"
    # When the run is continued
    async with asyncio.timeout(30):
        await dispatcher.resume(failed.run_id)
        result = await dispatcher.wait(failed.run_id)
    # Then the failed step ran again (its message was not taken for a copy), the skipped
    # one ran, and neither the succeeded step nor the catch ran again
    assert result.status == "succeeded"
    assert Counter(cluster.tags()) == {"first": 1, "flaky": 2, "catch": 1, "last": 1}
