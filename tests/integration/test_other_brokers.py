"""NATS JetStream and RabbitMQ: what the Redis-only tests check through Redis internals.

The promises every broker keeps (shared batches, ``kill -9``, long and blocking jobs,
delays, the delivery cap) are tested on all three where the Redis tests are, marked
`every_broker`. These cover the rest: messages from strangers, stopping, and a
broker that cannot be reached.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import HEARTBEAT_TIMEOUT, Cluster, other_brokers, publish_raw
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.brokers, pytest.mark.slow]


def record(cluster: Cluster, tag: str, hold: float = 0.0, **settings: object) -> Record:
    return Record(journal=cluster.journal_key, tag=tag, hold=hold, **settings)


@other_brokers
async def test_poisoned_messages_are_recorded_as_failed_and_the_worker_goes_on(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker
    worker = await cluster.start_worker()
    # When a message that is not JSON and one naming another task arrive, then a good job
    await publish_raw(cluster, b"{not json")
    await publish_raw(cluster, b'{"task_id": "1", "task_name": "x", "args": [], "kwargs": {}}')
    await dispatcher.dispatch(record(cluster, "good"))
    # Then the good job runs in the same worker, and both are recorded as failed
    await cluster.wait_for(lambda: cluster.tags() == ["good"], 10, "the good job ran")
    assert worker.process.poll() is None
    failed_key = f"{cluster.prefix}failed"
    await cluster.wait_for(lambda: cluster.redis.hlen(failed_key) == 2, 5, "recorded")
    failures = await dispatcher.store.list_failed()
    assert [f.job for f in failures] == ["<unreadable message>"] * 2


@other_brokers
async def test_an_idle_worker_exits_0_on_sigterm_within_a_second_or_so(
    cluster: Cluster,
) -> None:
    # Given an idle worker
    worker = await cluster.start_worker()
    await asyncio.sleep(0.5)
    # When it gets SIGTERM
    started = time.monotonic()
    worker.terminate()
    code = worker.wait(10)
    took = time.monotonic() - started
    print(f"MEASURED {cluster.broker} idle SIGTERM: exit 0 after {took:.2f}s")
    # Then it exits 0 soon (a NATS fetch waits at most a second)
    assert code == 0, worker.output()
    assert took < 2.0, took


@other_brokers
async def test_a_busy_worker_finishes_its_job_on_sigterm_and_exits_0(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker running a 1.5 s job
    worker = await cluster.start_worker()
    await dispatcher.dispatch(record(cluster, "long", hold=1.5))
    await asyncio.sleep(0.5)
    # When it gets SIGTERM, and another job arrives after that
    started = time.monotonic()
    worker.terminate()
    await asyncio.sleep(0.2)
    await dispatcher.dispatch(record(cluster, "after"))
    code = worker.wait(10)
    took = time.monotonic() - started
    # Then it finished the running job and exited 0 within a few seconds
    assert code == 0, worker.output()
    assert took < 3.0, took
    assert cluster.tags()[:1] == ["long"]
    # And a new worker runs what is left once: the long job was acknowledged
    await cluster.start_worker()
    await cluster.wait_for(lambda: len(cluster.tags()) == 2, 10, "the other job ran")
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    assert cluster.tags() == ["long", "after"]


@other_brokers
async def test_an_unreachable_broker_exits_3_and_never_shows_the_password(
    cluster: Cluster,
) -> None:
    # Given a broker URL with a password, where nothing listens
    scheme = {"nats": "nats", "rabbitmq": "amqp"}[cluster.broker]
    url = f"{scheme}://worker:s3cret-pw@127.0.0.1:1/"
    # When a worker starts on it
    started = time.monotonic()
    worker = await cluster.start_worker(wait=False, ARVEL_FLOW_URL=url)
    # Then it exits 3 within a few seconds, naming the server with the password masked
    assert worker.wait(15) == 3, worker.output()
    assert time.monotonic() - started < 10
    output = worker.output()
    assert "s3cret-pw" not in output
    assert f"{scheme}://worker:***@127.0.0.1:1/ could not be reached" in output
    assert "Traceback" not in output
