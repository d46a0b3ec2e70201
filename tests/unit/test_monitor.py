"""`take_snapshot`: workers from the heartbeat sets, queues from the streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis import Redis

from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.monitor import QueueView, Snapshot, WorkerView, take_snapshot
from arvel_flow.store import open_store
from arvel_flow.store.contracts import StoreContract

pytestmark = pytest.mark.redis

NOW = 1_000_000.0
"""The snapshot's time, in seconds."""


@pytest.fixture
def client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def store() -> AsyncIterator[StoreContract]:
    store = open_store("memory")
    yield store
    await store.close()


async def snapshot(store: StoreContract, client: Redis, keys: StreamKeys, *queues: str) -> Snapshot:
    return await take_snapshot(store, client, keys, now=NOW, heartbeat_timeout=10, queues=queues)


async def test_workers_are_read_from_every_queue_s_heartbeats_and_the_stale_are_dead(
    client: Redis, redis_prefix: str, store: StoreContract
) -> None:
    keys = StreamKeys(redis_prefix)
    client.sadd(keys.queues, "default", "mail")
    client.xgroup_create(keys.stream("default"), GROUP, id="0", mkstream=True)
    client.xadd(keys.stream("default"), {"data": "x"}, id=f"{int((NOW - 3) * 1000)}-0")
    # One worker reads both queues; one beat long ago; one left (a score of 0)
    beat = int((NOW - 1) * 1000)
    client.zadd(keys.consumers("default"), {"a:10:x": beat, "b:20:y": (NOW - 60) * 1000})
    client.zadd(keys.consumers("mail"), {"a:10:x": beat - 500, "c:30:z": 0})
    # Only "a" says its load (the others are older workers)
    client.hset(keys.worker("a:10:x"), mapping={"concurrency": 8, "running": 3})
    taken = await snapshot(store, client, keys)
    assert taken.workers == (
        WorkerView("a:10:x", "a", 10, ("default", "mail"), 1.0, True, 8, 3),
        WorkerView("b:20:y", "b", 20, ("default",), 60.0, False),
        WorkerView("c:30:z", "c", 30, ("mail",), NOW, False),
    )
    assert taken.queues == (QueueView("default", 1, 3.0), QueueView("mail", 0, 0.0))
    assert (taken.runs, taken.failures) == ((), ())
    # --queues keeps only those queues, and the workers seen in them
    only = await snapshot(store, client, keys, "mail")
    assert [worker.name for worker in only.workers] == ["a:10:x", "c:30:z"]
    assert only.queues == (QueueView("mail", 0, 0.0),)


async def test_without_a_broker_the_snapshot_has_no_workers_nor_queues(
    store: StoreContract,
) -> None:
    taken = await take_snapshot(store, None, StreamKeys(), now=NOW, heartbeat_timeout=10)
    assert (taken.workers, taken.queues) == ((), ())
