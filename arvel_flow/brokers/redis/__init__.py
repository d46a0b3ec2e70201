"""Redis: streams per queue, delays in sorted sets, heartbeats, reclaiming.

`make_transport`, `make_consumer` and `read_depths` are this broker's entry in
`arvel_flow.brokers.BROKERS`; redis-py is imported when they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.store.urls import mask_url

if TYPE_CHECKING:
    from collections.abc import Sequence

    from arvel_flow.brokers.depth import QueueDepth
    from arvel_flow.brokers.redis.consumer import RedisConsumer
    from arvel_flow.brokers.redis.transport import RedisStreamTransport
    from arvel_flow.queue.transport import Transport
    from arvel_flow.settings import QueueSettings


def make_transport(settings: QueueSettings, url: str) -> RedisStreamTransport:
    """Streams and delays on ``url``, under ``settings.prefix``.

    Raises:
        ConfigError: ``url`` is no Redis URL (one line, no password).
    """
    from redis.asyncio import ConnectionPool, Redis

    from arvel_flow.brokers.redis.keys import StreamKeys
    from arvel_flow.brokers.redis.transport import RedisStreamTransport
    from arvel_flow.redis_support import describe_client

    try:
        # A flush holds one connection: the pool is sized above the concurrency.
        pool = ConnectionPool.from_url(url, max_connections=max(64, 4 * settings.concurrency))
    except ValueError as error:
        issue = ConfigIssue(f"invalid redis URL {mask_url(url)!r}: {error}", path="queue.url")
        raise ConfigError([issue]) from None
    client = Redis.from_pool(pool)
    return RedisStreamTransport(
        client, StreamKeys(settings.prefix), backend=describe_client(client)
    )


def make_consumer(transport: Transport, url: str) -> RedisConsumer:
    """Reads the streams ``transport`` sends to, acknowledging with it."""
    from arvel_flow.brokers.redis.consumer import RedisConsumer
    from arvel_flow.brokers.redis.transport import RedisStreamTransport

    assert isinstance(transport, RedisStreamTransport)
    return RedisConsumer(transport, url=url)


async def read_depths(
    settings: QueueSettings, url: str, only: Sequence[str], answer_within: float
) -> list[QueueDepth]:
    """Each queue messages were sent to under ``settings.prefix`` (or ``only`` those).

    Raises:
        BackendError: Redis could not be reached or did not answer within ``answer_within``.
    """
    import asyncio

    from redis import Redis

    from arvel_flow.brokers.redis.depth import read_queues
    from arvel_flow.brokers.redis.keys import StreamKeys
    from arvel_flow.redis_support import redis_errors

    def read() -> list[QueueDepth]:
        client = Redis.from_url(
            url, socket_timeout=answer_within, socket_connect_timeout=answer_within
        )
        try:
            with redis_errors(mask_url(url)):
                return list(read_queues(client, StreamKeys(settings.prefix), only=only))
        finally:
            client.close()

    return await asyncio.to_thread(read)
