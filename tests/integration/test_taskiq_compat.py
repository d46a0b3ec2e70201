"""Messages stay Taskiq's own: bare Taskiq can send a job to arvel-flow workers."""

from __future__ import annotations

import pytest
from taskiq_redis import RedisStreamBroker

from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.wire import TASK_NAME
from tests.integration.conftest import Cluster
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def test_a_job_kicked_by_bare_taskiq_runs_on_an_arvel_flow_worker(cluster: Cluster) -> None:
    # Given a worker, and a stock Taskiq RedisStreamBroker on the queue's stream
    await cluster.start_worker()
    broker = RedisStreamBroker(cluster.url, queue_name=f"{cluster.prefix}queue:default")
    task = broker.register_task(lambda payload: None, task_name=TASK_NAME)
    envelope = Envelope(JobRef.of(Record(journal=cluster.journal_key, tag="kicked")), new_id())
    # When Taskiq kicks the envelope as the task's argument
    await broker.startup()
    try:
        await task.kiq(envelope.to_json())
    finally:
        await broker.shutdown()
    # Then the worker runs the job
    await cluster.wait_for(lambda: cluster.tags() == ["kicked"], 10, "the job ran")
