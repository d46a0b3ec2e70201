"""NATS JetStream: a stream per prefix, a durable consumer per queue.

`make_transport` and `make_consumer` are this broker's entry in
`arvel_flow.brokers.BROKERS`; nats-py is imported when they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arvel_flow.brokers.nats.consumer import NatsConsumer
    from arvel_flow.brokers.nats.transport import NatsTransport
    from arvel_flow.queue.transport import Transport
    from arvel_flow.settings import QueueSettings


def make_transport(settings: QueueSettings, url: str) -> NatsTransport:
    """Sends to the JetStream stream of ``settings.prefix`` on ``url``."""
    from arvel_flow.brokers.nats.transport import NatsTransport

    return NatsTransport(url, prefix=settings.prefix)


def make_consumer(transport: Transport, url: str) -> NatsConsumer:
    """Pulls from the queues' durable consumers, acknowledging through ``transport``."""
    from arvel_flow.brokers.nats.consumer import NatsConsumer
    from arvel_flow.brokers.nats.transport import NatsTransport

    assert isinstance(transport, NatsTransport)
    return NatsConsumer(transport, url=url)
