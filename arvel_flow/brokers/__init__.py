"""Brokers: one package each, holding its transport (send) and consumer (read for a worker).

`BROKERS` is the one table of them, by their ``queue.broker`` name. Each package's
``__init__`` builds its two sides (``make_transport``, ``make_consumer``) and reads its
queues' depth (``read_depths``, for the queue metrics and ``top``), importing the
broker's client library only when called, so that naming a broker costs nothing until
it is used. Adding a broker is a folder here and a line in `BROKERS`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from arvel_flow.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from arvel_flow.brokers.depth import QueueDepth
    from arvel_flow.queue.transport import Transport
    from arvel_flow.settings import QueueSettings
    from arvel_flow.worker.consumer import Consumer


class BrokerSides(Protocol):
    """What a broker's package provides (its ``__init__`` module)."""

    def make_transport(self, settings: QueueSettings, url: str) -> Transport:
        """The transport that sends to the broker at ``url``, keys under ``settings.prefix``."""
        ...

    def make_consumer(self, transport: Transport, url: str) -> Consumer:
        """The consumer a worker reads with, beside ``transport`` (made by `make_transport`)."""
        ...

    async def read_depths(
        self, settings: QueueSettings, url: str, only: Sequence[str], answer_within: float
    ) -> list[QueueDepth]:
        """Each queue's depth on the broker at ``url`` (``only`` those when given; RabbitMQ,
        which cannot list its queues, reads ``settings.queues`` otherwise), on a connection
        of its own, given up when the broker takes longer than ``answer_within`` seconds
        to connect or to answer.

        Raises:
            BackendError: The broker could not be reached or did not answer in time.
        """
        ...


@dataclass(frozen=True, slots=True)
class Broker:
    """One broker arvel-flow can send to and read from."""

    name: str
    default_url: str
    """Where the broker is looked for when no ``url`` is given."""
    package: str
    """The package holding its transport and consumer."""
    needs: str | None = None
    """The client library its extra installs (``pip install 'arvel-flow[NAME]'``), if any."""

    def sides(self) -> BrokerSides:
        """Its package, refused with one clear line when its extra is not installed."""
        if self.needs is not None and importlib.util.find_spec(self.needs) is None:
            issue = ConfigIssue(
                f"broker {self.name!r} needs the {self.name} extra: "
                f"pip install 'arvel-flow[{self.name}]'",
                path="queue.broker",
            )
            raise ConfigError([issue])
        return cast(BrokerSides, importlib.import_module(self.package))


BROKERS: dict[str, Broker] = {
    "redis": Broker("redis", "redis://localhost:6379/0", "arvel_flow.brokers.redis"),
    "nats": Broker("nats", "nats://localhost:4222", "arvel_flow.brokers.nats", "nats"),
    "rabbitmq": Broker(
        "rabbitmq", "amqp://guest:guest@localhost:5672/", "arvel_flow.brokers.rabbitmq", "aio_pika"
    ),
}
"""Every broker, by its ``queue.broker`` name (``memory`` is no broker: jobs run in process)."""
