"""`QueueCollector`: each queue's ready messages and their lag, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry
from redis import Redis

from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.brokers.redis.depth import read_queues
from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.metrics.queues import QueueCollector, queue_collector
from arvel_flow.settings import QueueSettings

pytestmark = pytest.mark.redis

NOW = 1_000_000.0
"""The fake clock's time, in seconds; entry ids below are milliseconds before it."""


@pytest.fixture
def client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def scrape(client: Redis, keys: StreamKeys) -> CollectorRegistry:
    async def read() -> list[QueueDepth]:
        return list(read_queues(client, keys, lambda: NOW))

    registry = CollectorRegistry()
    registry.register(QueueCollector(read))
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


@pytest.mark.parametrize(
    ("broker", "url"),
    [
        ("redis", "redis://127.0.0.1:1/0"),
        ("nats", "nats://127.0.0.1:1"),
        ("rabbitmq", "amqp://guest:guest@127.0.0.1:1/"),
    ],
)
def test_a_broker_that_is_away_costs_the_queue_figures_not_the_scrape(
    broker: str, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = QueueSettings.resolve(flags={"broker": broker, "url": url, "store": "memory"})
    collector = queue_collector(settings)
    assert collector is not None
    registry = CollectorRegistry()
    registry.register(collector)
    assert registry.get_sample_value("arvel_flow_queue_depth", {"queue": "default"}) is None
    assert "queue metrics: the broker did not answer" in caplog.text


def test_a_lag_the_broker_cannot_tell_is_left_out_not_shown_as_0() -> None:
    async def read() -> list[QueueDepth]:
        return [QueueDepth("default", 3, None, consumers=1)]

    registry = CollectorRegistry()
    registry.register(QueueCollector(read))
    assert registry.get_sample_value("arvel_flow_queue_depth", {"queue": "default"}) == 3
    assert (
        registry.get_sample_value("arvel_flow_queue_oldest_seconds", {"queue": "default"}) is None
    )
