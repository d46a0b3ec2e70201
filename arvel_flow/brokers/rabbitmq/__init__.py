"""RabbitMQ: quorum queues per queue, delays through dead-letter delay buckets.

`make_transport` and `make_consumer` are this broker's entry in
`arvel_flow.brokers.BROKERS`; aio-pika is imported when they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arvel_flow.brokers.rabbitmq.consumer import RabbitMQConsumer
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport
    from arvel_flow.queue.transport import Transport
    from arvel_flow.settings import QueueSettings


def make_transport(settings: QueueSettings, url: str) -> RabbitMQTransport:
    """Sends to the quorum queues of ``settings.prefix`` on ``url``."""
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

    return RabbitMQTransport(url, prefix=settings.prefix)


def make_consumer(transport: Transport, url: str) -> RabbitMQConsumer:
    """Consumes the queues ``transport`` sends to."""
    from arvel_flow.brokers.rabbitmq.consumer import RabbitMQConsumer
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

    assert isinstance(transport, RabbitMQTransport)
    return RabbitMQConsumer(transport, url=url)
