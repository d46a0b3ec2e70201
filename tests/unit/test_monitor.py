"""`take_snapshot`: workers from the heartbeat sets, queues from the streams, rates between two."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from redis import Redis

from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.brokers.redis.depth import read_queues
from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.monitor import QueueView, Snapshot, WorkerView, compute_rate, take_snapshot
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
        WorkerView("a:10:x", "a", 10, ("default", "mail"), 1.0, True, 8, 3),
        WorkerView("b:20:y", "b", 20, ("default",), 60.0, False),
        WorkerView("c:30:z", "c", 30, ("mail",), NOW, False),
    )
    assert taken.queues == (
        QueueView("default", 1, 3.0, taken=0, acknowledged=0),
        QueueView("mail", 0, 0.0, taken=0, acknowledged=0),
    )
    assert (taken.runs, taken.failures) == ((), ())
    # --queues keeps only those queues, and the workers seen in them
    only = await snapshot(store, client, keys, "mail")
    assert [worker.name for worker in only.workers] == ["a:10:x", "c:30:z"]
    assert only.queues == (QueueView("mail", 0, 0.0, taken=0, acknowledged=0),)


async def test_without_a_broker_the_snapshot_has_no_workers_nor_queues(
    store: StoreContract,
) -> None:
    taken = await take_snapshot(store, now=NOW, heartbeat_timeout=10)
    assert (taken.workers, taken.queues) == ((), ())
    assert taken.workers_seen


async def test_a_queue_s_rate_is_what_was_acknowledged_between_two_snapshots(
    client: Redis, redis_prefix: str, store: StoreContract
) -> None:
    # Given a queue of five messages, two of them taken and acknowledged (as workers do:
    # XACK then XDEL)
    keys = StreamKeys(redis_prefix)
    stream = keys.stream("default")
    client.sadd(keys.queues, "default")
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for n in range(5):
        client.xadd(stream, {"data": "x"}, id=f"{int(NOW * 1000) - 100 + n}-0")

    def complete(count: int) -> None:
        for entry_id, _ in client.xreadgroup(GROUP, "w", {stream: ">"}, count=count)[0][1]:
            client.xack(stream, GROUP, entry_id)
            client.xdel(stream, entry_id)

    complete(2)
    first = await snapshot(store, client, keys)
    # When two seconds later three more were taken and two of them acknowledged
    client.xreadgroup(GROUP, "w", {stream: ">"}, count=1)
    complete(2)
    second = await snapshot(store, client, keys, now=NOW + 2, previous=first)
    # Then the first has no rate (nothing to measure against), the second one a second
    [before], [after] = first.queues, second.queues
    assert (before.rate, before.acknowledged, before.depth) == (None, 2, 3)
    assert (after.rate, after.acknowledged, after.depth, after.taken) == (1.0, 4, 0, 1)


@pytest.mark.parametrize(
    ("before", "after", "elapsed", "rate"),
    [
        (10, 40, 3.0, 10.0),
        (None, 40, 3.0, None),  # a first reading
        (10, None, 3.0, None),  # a broker that does not count
        (40, 10, 3.0, None),  # the stream was made again
        (10, 10, 0.0, None),  # no time passed
    ],
)
def test_compute_rate(
    before: int | None, after: int | None, elapsed: float, rate: float | None
) -> None:
    assert compute_rate(before, after, elapsed) == rate
