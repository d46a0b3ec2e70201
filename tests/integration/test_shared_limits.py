"""Rate limits and overlap locks live in Redis, so they hold across workers."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.job import MiddlewareRef
from arvel_flow.queue.targets import JobRef
from tests.integration.conftest import Cluster, every_broker
from tests.integration.jobs import Limited, Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# Job start times are taken after the limiter counted the run, a delay that grows on a
# loaded machine (0.053 s seen). A limit that did not hold across workers (each counting
# its own 5) would put 6 starts within about half a second, far below 1 - SLACK.
SLACK = 0.2


@every_broker
async def test_a_rate_limit_of_n_per_second_holds_across_two_workers(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers and 20 jobs limited to 5 runs per second (sliding window)
    per_second = 5
    for _ in range(2):
        await cluster.start_worker()
    job = Limited(journal=cluster.journal_key, tag="", per_second=per_second)
    batch = Batch([FanOut(job, [{"tag": f"l{i}"} for i in range(20)])])
    # When they run
    async with asyncio.timeout(30):
        result = await batch.dispatch(dispatcher)
    # Then all ran, on both workers, and no second held more than 5 starts
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    entries = cluster.journal()
    assert len({e["pid"] for e in entries}) == 2
    starts = sorted(e["start"] for e in entries)
    assert len(starts) == 20
    windows = [starts[i + per_second] - starts[i] for i in range(len(starts) - per_second)]
    assert min(windows) >= 1.0 - SLACK, windows


@every_broker
async def test_without_overlapping_holds_across_two_workers(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers and four 0.3 s jobs that must not overlap
    for _ in range(2):
        await cluster.start_worker()
    guard = MiddlewareRef("without_overlapping", {"key": "import", "release_after": 0.1})
    job = JobRef.of(Record(journal=cluster.journal_key, tag="", hold=0.3), middleware=(guard,))
    batch = Batch([FanOut(job, [{"tag": f"o{i}"} for i in range(4)])])
    # When they run
    async with asyncio.timeout(30):
        result = await batch.dispatch(dispatcher)
    # Then they ran one after another
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    spans = sorted((e["start"], e["end"]) for e in cluster.journal())
    assert len(spans) == 4
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))
