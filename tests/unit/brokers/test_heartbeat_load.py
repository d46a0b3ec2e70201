"""A heartbeat's load record: a worker's concurrency, running jobs and settled messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from arvel_flow.brokers.redis.heartbeat import Heartbeat
from arvel_flow.brokers.redis.keys import StreamKeys

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def test_each_beat_writes_the_load_which_expires_and_goes_when_marked_dead(
    client: Redis, redis_url: str, redis_prefix: str
) -> None:
    keys = StreamKeys(redis_prefix)
    load = [{"concurrency": 8, "running": 3, "settled:default": 5}]
    beats = Heartbeat(
        redis_url,
        [keys.consumers("default")],
        "w1",
        0.2,
        load=(keys.worker("w1"), lambda: load[-1]),
    )
    try:
        beats.beat()
        assert client.zscore(keys.consumers("default"), "w1")
        assert client.hgetall(keys.worker("w1")) == {
            b"concurrency": b"8",
            b"running": b"3",
            b"settled:default": b"5",
        }
        assert 0 < client.pttl(keys.worker("w1")) <= 30_000
        load.append({"concurrency": 8, "running": 0, "settled:default": 6})
        beats.beat()
        assert client.hmget(keys.worker("w1"), ["running", "settled:default"]) == [b"0", b"6"]
        beats.remove()  # it left: out of the sets, its load gone
        assert client.zscore(keys.consumers("default"), "w1") is None
        assert not client.exists(keys.worker("w1"))
        beats.beat()
        beats.mark_dead()
        assert client.zscore(keys.consumers("default"), "w1") == 0
        assert not client.exists(keys.worker("w1"))
    finally:
        beats.close()


def test_a_heartbeat_without_a_load_beats_as_before(
    client: Redis, redis_url: str, redis_prefix: str
) -> None:
    keys = StreamKeys(redis_prefix)
    beats = Heartbeat(redis_url, [keys.consumers("default")], "w1", 0.2)
    try:
        beats.beat()
        assert client.zscore(keys.consumers("default"), "w1")
        assert not client.exists(keys.worker("w1"))
    finally:
        beats.close()
