"""Delays without a scheduler: backoffs, releases and ``later`` wait in the broker."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import Cluster, every_broker
from tests.integration.jobs import Flaky, Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@every_broker
async def test_a_retry_waits_out_its_backoff_in_the_broker_without_holding_a_slot(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker with one slot, a job failing once with a 1 s backoff, and another job
    await cluster.start_worker("--concurrency", "1")
    flaky = Flaky(journal=cluster.journal_key, tag="flaky", backoff=1, max_retries=2)
    batch = Batch([flaky, Record(journal=cluster.journal_key, tag="other", hold=0.2)])
    # When both run
    async with asyncio.timeout(15):
        result = await batch.dispatch(dispatcher)
    # Then the retry came once, after its backoff, and the other job ran meanwhile
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    entries = cluster.journal()
    flaky_starts = [e["start"] for e in entries if e["tag"] == "flaky"]
    other = next(e for e in entries if e["tag"] == "other")
    assert len(flaky_starts) == 2
    assert 1.0 <= flaky_starts[1] - flaky_starts[0] < 1.5
    assert flaky_starts[0] < other["start"] < flaky_starts[1]


@every_broker
async def test_later_runs_once_at_its_time_after_the_dispatcher_exited(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given three workers (on Redis, each promoting due messages)
    for _ in range(3):
        await cluster.start_worker()
    # When 20 jobs are queued to run in 1 s, and the dispatcher exits at once
    sent_at = time.time()
    for i in range(20):
        await dispatcher.later(1.0, Record(journal=cluster.journal_key, tag=f"later{i}"))
    assert await dispatcher.size() == 20
    await dispatcher.close()
    # Then each runs exactly once, no earlier than asked
    await cluster.wait_for(lambda: len(cluster.tags()) >= 20, 10, "the delayed jobs ran")
    await asyncio.sleep(0.5)
    assert Counter(cluster.tags()) == {f"later{i}": 1 for i in range(20)}
    starts = [e["start"] for e in cluster.journal()]
    assert min(starts) >= sent_at + 1.0
    assert max(starts) < sent_at + 2.0
