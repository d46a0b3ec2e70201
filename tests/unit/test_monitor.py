"""`take_snapshot`: workers from the heartbeat sets, queues from the streams, rates between two."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from redis import Redis

from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.brokers.redis.depth import read_queues
from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.monitor import QueueView, Snapshot, WorkerView, compute_rates, take_snapshot
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


async def snapshot(
    store: StoreContract,
    client: Redis,
    keys: StreamKeys,
    *queues: str,
    now: float = NOW,
    previous: Snapshot | None = None,
) -> Snapshot:
    async def depths(only: Sequence[str]) -> list[QueueDepth]:
        return list(read_queues(client, keys, lambda: now, only))

    return await take_snapshot(
        store,
        now=now,
        heartbeat_timeout=10,
        depths=depths,
        heartbeats=client,
        keys=keys,
        queues=queues,
        previous=previous,
    )


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
        WorkerView("a:10:x", "a", 10, ("default", "mail"), 1.0, True, 8, 3, {}),
        WorkerView("b:20:y", "b", 20, ("default",), 60.0, False),
        WorkerView("c:30:z", "c", 30, ("mail",), NOW, False),
    )
    assert taken.queues == (
        QueueView("default", 1, 3.0, taken=0),
        QueueView("mail", 0, 0.0, taken=0),
    )
    assert (taken.runs, taken.failures) == ((), ())
    # --queues keeps only those queues, and the workers seen in them
    only = await snapshot(store, client, keys, "mail")
    assert [worker.name for worker in only.workers] == ["a:10:x", "c:30:z"]
    assert only.queues == (QueueView("mail", 0, 0.0, taken=0),)


async def test_without_a_broker_the_snapshot_has_no_workers_nor_queues(
    store: StoreContract,
) -> None:
    taken = await take_snapshot(store, now=NOW, heartbeat_timeout=10)
    assert (taken.workers, taken.queues) == ((), ())
    assert taken.workers_seen


async def test_a_queue_s_rate_is_what_its_workers_settled_between_two_snapshots(
    client: Redis, redis_prefix: str, store: StoreContract
) -> None:
    # Given a queue read by one worker that says, in its beats, it settled 10 messages
    keys = StreamKeys(redis_prefix)
    client.sadd(keys.queues, "default", "mail")
    beat = int(NOW * 1000)
    client.zadd(keys.consumers("default"), {"a:1:x": beat})
    client.zadd(keys.consumers("mail"), {"a:1:x": beat})
    client.hset(
        keys.worker("a:1:x"), mapping={"concurrency": 4, "running": 1, "settled:default": 10}
    )
    first = await snapshot(store, client, keys)
    # When two seconds later it settled 6 more, and a new worker 2
    client.hset(keys.worker("a:1:x"), "settled:default", 16)
    client.zadd(keys.consumers("default"), {"b:2:y": beat + 1000})
    client.hset(
        keys.worker("b:2:y"), mapping={"concurrency": 4, "running": 0, "settled:default": 2}
    )
    second = await snapshot(store, client, keys, now=NOW + 2, previous=first)
    # Then the first has no rate (nothing to measure against); the second 4/s, and 0/s
    # for the queue nothing was settled of
    assert [q.rate for q in first.queues] == [None, None]
    assert [(q.name, q.rate) for q in second.queues] == [("default", 4.0), ("mail", 0.0)]
    assert {w.name: w.settled for w in second.workers} == {
        "a:1:x": {"default": 16},
        "b:2:y": {"default": 2},
    }


def test_compute_rates_sums_what_each_worker_settled_since_the_last_reading() -> None:
    def worker(name: str, **settled: int) -> WorkerView:
        return WorkerView(name, "h", 1, ("default",), 0.0, True, 4, 0, settled)

    before = [worker("a", default=10, mail=3), worker("gone", default=50)]
    after = [worker("a", default=40, mail=3), worker("new", default=5)]
    # a: 30 more, new (started since): its 5, gone: nothing known
    assert compute_rates(before, after, 5.0) == {"default": 7.0, "mail": 0.0}
