"""``arvel_flow_queue_depth`` and ``arvel_flow_queue_oldest_seconds``, read from the broker.

Read when Prometheus scrapes (a custom collector), through the broker's ``read_depths``
(`arvel_flow.brokers.BrokerSides`), with a short timeout: a broker that is away costs a
scrape these two figures (and a warning line), never the others nor a hang. Messages
waiting for a backoff or a release are not counted: they are not ready to run (on
NATS, until a worker first received them: see `arvel_flow.brokers.nats.depth`). A lag
the broker cannot tell (RabbitMQ) is left out, not shown as 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from arvel_flow.brokers import BROKERS
from arvel_flow.errors import BackendError

if TYPE_CHECKING:
    from arvel_flow.brokers.depth import QueueDepth
    from arvel_flow.settings import QueueSettings

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 0.5
"""Seconds the broker may take to answer, per connection and per command, in one scrape."""

DepthRead = Callable[[], Coroutine[Any, Any, list["QueueDepth"]]]
"""One reading of every queue's depth, on a connection of its own."""


def queue_collector(settings: QueueSettings) -> Collector | None:
    """The collector of the queues of ``settings``' broker; None without a broker."""
    broker = BROKERS.get(settings.broker)
    if broker is None:
        return None
    from arvel_flow.wiring import broker_url

    sides, url = broker.sides(), broker_url(settings)
    return QueueCollector(lambda: sides.read_depths(settings, url, (), SCRAPE_TIMEOUT))


class QueueCollector(Collector):
    """Each queue's ready messages and the age of the oldest, read from the broker.

    Args:
        read: One reading of the queues (each scrape runs it on an event loop of its
            own: Prometheus scrapes from a thread of its HTTP server).
    """

    def __init__(self, read: DepthRead) -> None:
        self._read = read

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
            queues = asyncio.run(self._read())
        except BackendError as error:
            logger.warning("queue metrics: the broker did not answer: %s", error)
            queues = []
        for queue in queues:
            depth.add_metric([queue.name], queue.depth)
            if queue.lag is not None:
                oldest.add_metric([queue.name], queue.lag)
        yield depth
        yield oldest
