"""NATS JetStream: a stream per prefix, a durable consumer per queue.

`make_transport`, `make_consumer` and `read_depths` are this broker's entry in
`arvel_flow.brokers.BROKERS`; nats-py is imported when they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from arvel_flow.brokers.depth import QueueDepth
    from arvel_flow.brokers.nats.consumer import NatsConsumer
    from arvel_flow.brokers.nats.transport import NatsTransport
    from arvel_flow.queue.transport import Transport
    from arvel_flow.settings import QueueSettings


def make_transport(settings: QueueSettings, url: str) -> NatsTransport:
    """Sends to the JetStream stream of ``settings.prefix`` on ``url``."""
    from arvel_flow.brokers.nats.transport import NatsTransport
    from arvel_flow.brokers.redis.presence import store_heartbeats

    return NatsTransport(url, prefix=settings.prefix, presence=store_heartbeats(settings))


def make_consumer(transport: Transport, url: str) -> NatsConsumer:
    """Pulls from the queues' durable consumers, acknowledging through ``transport``."""
    from arvel_flow.brokers.nats.consumer import NatsConsumer
    from arvel_flow.brokers.nats.transport import NatsTransport

    assert isinstance(transport, NatsTransport)
    return NatsConsumer(transport, url=url)


async def read_depths(
    settings: QueueSettings, url: str, only: Sequence[str], answer_within: float
) -> list[QueueDepth]:
    """Each queue of the stream of ``settings.prefix`` (or ``only`` those).

    Raises:
        BackendError: NATS could not be reached or did not answer within ``answer_within``.
    """
    import asyncio

    from arvel_flow.brokers.nats.depth import read_queues
    from arvel_flow.brokers.nats.transport import (
        JetStreamNames,
        connect,
        describe_url,
        nats_errors,
    )

    backend = describe_url(url)
    with nats_errors(backend):
        async with asyncio.timeout(answer_within):
            client = await connect(url, name="arvel-flow depth", connect_timeout=answer_within)
    try:
        with nats_errors(backend):
            async with asyncio.timeout(answer_within):
                js = client.jetstream(timeout=answer_within)
                return await read_queues(js, JetStreamNames(settings.prefix), only)
    finally:
        with nats_errors(backend):
            await client.close()
