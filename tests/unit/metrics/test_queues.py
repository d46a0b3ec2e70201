"""`RedisQueueCollector`: each queue's ready messages and their lag, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry
from redis import Redis

from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.metrics.queues import RedisQueueCollector

pytestmark = pytest.mark.redis

NOW = 1_000_000.0
"""The fake clock's time, in seconds; entry ids below are milliseconds before it."""


@pytest.fixture
def client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def scrape(client: Redis, keys: StreamKeys) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RedisQueueCollector(client, keys, clock=lambda: NOW))
    return registry


def test_ready_messages_are_counted_and_the_oldest_untaken_gives_the_lag(
    client: Redis, redis_prefix: str
) -> None:
    keys = StreamKeys(redis_prefix)
    stream = keys.stream("imports")
    client.sadd(keys.queues, "imports", "empty")
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for seconds_ago in (30, 20, 10):
        client.xadd(stream, {"data": "x"}, id=f"{int((NOW - seconds_ago) * 1000)}-0")
    # A worker took the oldest one: it is running, no longer waiting
    client.xreadgroup(GROUP, "w1", {stream: ">"}, count=1)
    registry = scrape(client, keys)
    assert registry.get_sample_value("arvel_flow_queue_depth", {"queue": "imports"}) == 2
    assert registry.get_sample_value("arvel_flow_queue_oldest_seconds", {"queue": "imports"}) == 20
    assert registry.get_sample_value("arvel_flow_queue_depth", {"queue": "empty"}) == 0
    assert registry.get_sample_value("arvel_flow_queue_oldest_seconds", {"queue": "empty"}) == 0


def test_a_broker_that_is_away_costs_the_queue_figures_not_the_scrape() -> None:
    away = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    registry = scrape(away, StreamKeys("x:"))
    assert registry.get_sample_value("arvel_flow_queue_depth", {"queue": "default"}) is None
