"""``arvel_flow_queue_depth`` and ``arvel_flow_queue_oldest_seconds``, read from the broker.

Read when Prometheus scrapes (a custom collector), with a short timeout: a broker that
is away costs a scrape these two figures, never the others nor a hang. Redis only, so
far: its streams say how many messages no worker took yet (the consumer group's lag)
and the id of the oldest of them holds its time. Messages waiting for a backoff or a
release (the delayed set) are not counted: they are not ready to run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from arvel_flow.brokers.redis.depth import read_queues
from arvel_flow.brokers.redis.keys import StreamKeys

if TYPE_CHECKING:
    from arvel_flow.settings import QueueSettings

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 0.5
"""Seconds the broker may take to answer, per command, during one scrape."""


def queue_collector(settings: QueueSettings) -> Collector | None:
    """The collector of the queues of ``settings``' broker, or None when it cannot say."""
    if settings.broker != "redis":
        return None
    from arvel_flow.wiring import broker_url

    client = Redis.from_url(
        broker_url(settings), socket_timeout=SCRAPE_TIMEOUT, socket_connect_timeout=SCRAPE_TIMEOUT
    )
    return RedisQueueCollector(client, StreamKeys(settings.prefix))


class RedisQueueCollector(Collector):
    """Each queue's ready messages and the age of the oldest, from its Redis stream."""

    def __init__(
        self, client: Redis, keys: StreamKeys, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._keys = keys
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "arvel_flow_queue_depth",
            "Messages ready in a queue that no worker took yet.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "arvel_flow_queue_oldest_seconds",
            "Age of the oldest message ready in a queue that no worker took yet (lag).",
            labels=["queue"],
        )
        try:
            for queue, waiting, age in read_queues(self._client, self._keys, self._clock):
                depth.add_metric([queue], waiting)
                oldest.add_metric([queue], age)
        except (RedisError, OSError) as error:
            logger.warning("queue metrics: the broker did not answer: %s", error)
        yield depth
        yield oldest
