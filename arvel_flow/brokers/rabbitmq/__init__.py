"""RabbitMQ: quorum queues per queue, delays through dead-letter delay buckets.

`make_transport`, `make_consumer` and `read_depths` are this broker's entry in
`arvel_flow.brokers.BROKERS`; aio-pika is imported when they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from arvel_flow.brokers.depth import QueueDepth
    from arvel_flow.brokers.rabbitmq.consumer import RabbitMQConsumer
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport
    from arvel_flow.queue.transport import Transport
    from arvel_flow.settings import QueueSettings


def make_transport(settings: QueueSettings, url: str) -> RabbitMQTransport:
    """Sends to the quorum queues of ``settings.prefix`` on ``url``."""
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport
    from arvel_flow.brokers.redis.presence import store_heartbeats

    return RabbitMQTransport(url, prefix=settings.prefix, presence=store_heartbeats(settings))


def make_consumer(transport: Transport, url: str) -> RabbitMQConsumer:
    """Consumes the queues ``transport`` sends to."""
    from arvel_flow.brokers.rabbitmq.consumer import RabbitMQConsumer
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

    assert isinstance(transport, RabbitMQTransport)
    return RabbitMQConsumer(transport, url=url)


async def read_depths(
    settings: QueueSettings, url: str, only: Sequence[str], answer_within: float
) -> list[QueueDepth]:
    """Each of ``only`` (else of ``settings.queues``: AMQP cannot list queues).

    Raises:
        BackendError: RabbitMQ could not be reached or did not answer within ``answer_within``.
    """
    import asyncio

    import aio_pika

    from arvel_flow.brokers.rabbitmq.depth import read_queues
    from arvel_flow.brokers.rabbitmq.transport import describe_url, rabbitmq_errors

    with rabbitmq_errors(describe_url(url)):
        async with asyncio.timeout(answer_within):
            connection = await aio_pika.connect(
                url,
                timeout=answer_within,
                client_properties={"connection_name": "arvel-flow depth"},
            )
            try:
                return await read_queues(connection, settings.prefix, only or settings.queues)
            finally:
                await connection.close()
