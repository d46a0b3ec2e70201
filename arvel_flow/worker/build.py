"""Build a `Worker` from `QueueSettings`: broker, store, queues and allowed modules."""

from __future__ import annotations

from redis.asyncio import ConnectionPool, Redis

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.drivers.redis import RedisStreamTransport
from arvel_flow.queue.events import EventBus
from arvel_flow.queue.factory import (
    broker_url,
    check_extra,
    check_shared_store,
    make_redis_queue,
    make_remote_queue,
    open_queue_store,
)
from arvel_flow.settings import QueueSettings
from arvel_flow.store.contracts import StoreContract
from arvel_flow.store.redis import RedisStore
from arvel_flow.store.urls import mask_url
from arvel_flow.worker.redis_worker import RedisWorker
from arvel_flow.worker.worker import Closer, Worker, WorkerOptions


def make_worker(
    settings: QueueSettings, *, events: EventBus | None = None, name: str | None = None
) -> Worker:
    """A worker for the broker, store and queues of ``settings``; it owns its queue.

    Raises:
        ConfigError: The broker is memory (or its extra is not installed), the store is
            not shared, or no module prefix is allowed (a worker never imports job
            classes from anywhere).
    """
    if settings.broker == "memory":
        issue = ConfigIssue(
            "arvel-flow worker needs a broker it can share: redis, nats or rabbitmq "
            "(see 'Distributed runs' in the README)",
            path="queue.broker",
        )
        raise ConfigError([issue])
    check_extra(settings.broker)
    if not settings.allowed_modules:
        raise ConfigError(
            [
                ConfigIssue(
                    "a worker imports job classes only from the module prefixes it is "
                    "allowed: pass --allow PREFIX (or set ARVEL_FLOW_ALLOWED_MODULES)",
                    path="allowed_modules",
                )
            ]
        )
    check_shared_store(settings)
    store, closers = _open_store(settings)
    options = WorkerOptions(
        queues=settings.queues,
        concurrency=settings.concurrency,
        allowed_modules=settings.allowed_modules,
        heartbeat_seconds=settings.heartbeat_seconds,
        heartbeat_timeout=settings.heartbeat_timeout,
        foreign_timeout=settings.redelivery_timeout,
        max_deliveries=settings.max_deliveries,
        outage_grace=settings.outage_grace,
    )
    url = broker_url(settings)
    if settings.broker == "redis":
        queue = make_redis_queue(settings, store=store, events=events)
        assert isinstance(queue.transport, RedisStreamTransport)
        return RedisWorker(
            queue, queue.transport, url=url, options=options, name=name, closers=closers
        )
    queue = make_remote_queue(settings, store=store, events=events)
    if settings.broker == "nats":
        from arvel_flow.queue.drivers.nats import NatsTransport
        from arvel_flow.worker.nats_worker import NatsWorker

        assert isinstance(queue.transport, NatsTransport)
        return NatsWorker(
            queue, queue.transport, url=url, options=options, name=name, closers=closers
        )
    from arvel_flow.queue.drivers.rabbitmq import RabbitMQTransport
    from arvel_flow.worker.rabbitmq_worker import RabbitWorker

    assert isinstance(queue.transport, RabbitMQTransport)
    return RabbitWorker(
        queue, queue.transport, url=url, options=options, name=name, closers=closers
    )


def _open_store(settings: QueueSettings) -> tuple[StoreContract, list[Closer]]:
    """The shared store; a Redis one with a pool sized for the worker's concurrency.

    `RedisStore` makes a pool that fails past 100 connections in use, which a worker
    running more jobs than that at once reaches. A job holds one store connection at a
    time, so twice the concurrency never runs out (and, unlike a blocking pool, costs
    nothing on each call).
    """
    if not settings.store.startswith(("redis://", "rediss://", "unix://")):
        return open_queue_store(settings), []
    try:
        pool = ConnectionPool.from_url(
            settings.store,
            max_connections=2 * settings.concurrency + 16,
            decode_responses=True,
            socket_connect_timeout=5,
        )
    except ValueError as error:
        message = f"invalid redis URL {mask_url(settings.store)!r}: {error}"
        raise ConfigError([ConfigIssue(message, path="store")]) from None
    client = Redis.from_pool(pool)
    return RedisStore.from_client(client, prefix=settings.prefix), [client.aclose]
