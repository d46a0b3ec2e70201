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
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from arvel_flow.brokers.redis.keys import GROUP, StreamKeys

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
            for queue, waiting, age in self._read():
                depth.add_metric([queue], waiting)
                oldest.add_metric([queue], age)
        except (RedisError, OSError) as error:
            logger.warning("queue metrics: the broker did not answer: %s", error)
        yield depth
        yield oldest

    def _read(self) -> Iterator[tuple[str, float, float]]:
        names = sorted(_text(name) for name in self._client.smembers(self._keys.queues))
        for queue in names:
            stream = self._keys.stream(queue)
            waiting, after = self._group(stream)
            entries: Any = self._client.xrange(stream, min=f"({after}", count=1)
            age = 0.0
            if entries:
                millis = int(_text(entries[0][0]).split("-")[0])
                age = max(0.0, self._clock() - millis / 1000)
            yield queue, float(waiting), age

    def _group(self, stream: str) -> tuple[int, str]:
        """How many entries the group has yet to deliver, and the last it delivered."""
        try:
            groups: Any = self._client.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return 0, "0-0"
        for group in groups:
            if _text(group["name"]) == GROUP:
                last = _text(group["last-delivered-id"])
                lag = group.get("lag")
                if lag is None:  # Redis < 7 (or a lag it cannot tell): acked entries are
                    # deleted, so the rest of the stream less the taken ones are waiting.
                    lag = max(0, int(self._client.xlen(stream)) - int(group["pending"]))
                return int(lag), last
        return int(self._client.xlen(stream)), "0-0"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
