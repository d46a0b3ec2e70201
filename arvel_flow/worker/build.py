"""Build a `Worker` from `QueueSettings`: broker, store, queues and allowed modules."""

from __future__ import annotations

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.drivers.redis import RedisStreamTransport
from arvel_flow.queue.events import EventBus
from arvel_flow.queue.factory import (
    broker_url,
    check_extra,
    check_shared_store,
    make_redis_queue,
    make_remote_queue,
)
from arvel_flow.settings import QueueSettings
from arvel_flow.store import open_store
from arvel_flow.worker.redis_worker import RedisWorker
from arvel_flow.worker.worker import Worker, WorkerOptions


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
    # A job holds one store connection at a time, so twice the concurrency never runs
    # out; redis-py's default pool fails past 100 connections in use.
    store = open_store(
        settings.store,
        prefix=settings.prefix,
        commit_interval=settings.commit_interval,
        max_connections=2 * settings.concurrency + 16,
    )
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
        return RedisWorker(queue, queue.transport, url=url, options=options, name=name)
    queue = make_remote_queue(settings, store=store, events=events)
    if settings.broker == "nats":
        from arvel_flow.queue.drivers.nats import NatsTransport
        from arvel_flow.worker.nats_worker import NatsWorker

        assert isinstance(queue.transport, NatsTransport)
        return NatsWorker(queue, queue.transport, url=url, options=options, name=name)
    from arvel_flow.queue.drivers.rabbitmq import RabbitMQTransport
    from arvel_flow.worker.rabbitmq_worker import RabbitWorker

    assert isinstance(queue.transport, RabbitMQTransport)
    return RabbitWorker(queue, queue.transport, url=url, options=options, name=name)
