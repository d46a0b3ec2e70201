"""`PresenceConsumer`: a worker of another broker beating into the store's Redis.

A real `Worker` on the in-memory `StubBroker`, its consumer wrapped, its beats in the
real Redis: what ``top`` and ``run`` read for NATS and RabbitMQ workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis import Redis

from arvel_flow.brokers.redis.keys import StreamKeys
from arvel_flow.brokers.redis.presence import PresenceConsumer, StoreHeartbeats
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.store.memory import MemoryStore
from arvel_flow.worker import Worker, WorkerOptions
from arvel_flow.worker.stub import StubBroker
from tests.fixtures.waiting import until
from tests.unit.worker.worker_jobs import JOBS, RAN, Step

pytestmark = [pytest.mark.redis, pytest.mark.timeout(10)]


@pytest.fixture
def client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()
    RAN.clear()


async def test_a_worker_is_seen_with_its_load_and_settled_counts_until_it_leaves(
    client: Redis, redis_url: str, redis_prefix: str
) -> None:
    # Given a worker on another broker whose consumer beats into the store's Redis
    keys = StreamKeys(redis_prefix)
    broker, store = StubBroker(), MemoryStore()
    consumer = PresenceConsumer(broker.consumer(), redis_url, keys)
    options = WorkerOptions(
        allowed_modules=(JOBS,), read_block_seconds=0.05, heartbeat_seconds=0.05, concurrency=4
    )
    worker = Worker(
        TaskiqQueue(transport=broker.transport, store=store, allowed_modules=(JOBS,)),
        consumer,
        options=options,
    )
    serving = asyncio.create_task(worker.run())
    await until(worker.ready.is_set)
    heartbeats = StoreHeartbeats(redis_url, keys)
    # When it runs a chain of three steps
    dispatcher = TaskiqQueue(transport=broker.transport, store=store, allowed_modules=(JOBS,))
    await dispatcher.start(Chain(Step(name="a"), Step(name="b"), Step(name="c")).to_plan())
    load = keys.worker(worker.name)
    await until(lambda: client.hget(load, "settled:default") == b"3")
    # Then it is alive in the queue's heartbeats, with its concurrency, as run reads them
    assert client.hget(load, "concurrency") == b"4"
    [age] = (await heartbeats.last_heartbeats(["default"])).values()
    assert age is not None
    assert age < 5
    assert await heartbeats.last_heartbeats(["mail"]) == {"mail": None}
    # And once it stopped, it is gone from the heartbeats and its load with it
    worker.stop()
    await serving
    assert await heartbeats.last_heartbeats(["default"]) == {"default": None}
    assert not client.exists(load)
