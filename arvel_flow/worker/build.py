"""Build a `Worker` from `QueueSettings`: broker, store, queues and allowed modules."""

from __future__ import annotations

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.drivers.redis import RedisStreamTransport
from arvel_flow.queue.events import EventBus
from arvel_flow.queue.factory import (
    broker_url,
    check_shared_store,
    make_redis_queue,
    open_queue_store,
)
from arvel_flow.settings import QueueSettings
from arvel_flow.worker.worker import Worker, WorkerOptions


def make_worker(
    settings: QueueSettings, *, events: EventBus | None = None, name: str | None = None
) -> Worker:
    """A worker for the broker, store and queues of ``settings``; it owns its queue.

    Raises:
        ConfigError: The broker is not redis, the store is not shared, or no module
            prefix is allowed (a worker never imports job classes from anywhere).
    """
    if settings.broker != "redis":
        raise ConfigError(
            [
                ConfigIssue(
                    f"arvel-flow worker runs on the redis broker, not {settings.broker!r} "
                    "(see docs/distributed.md)",
                    path="queue.broker",
                )
            ]
        )
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
    queue = make_redis_queue(settings, store=open_queue_store(settings), events=events)
    transport = queue.transport
    assert isinstance(transport, RedisStreamTransport)
    options = WorkerOptions(
        queues=settings.queues,
        concurrency=settings.concurrency,
        allowed_modules=settings.allowed_modules,
        heartbeat_seconds=settings.heartbeat_seconds,
        heartbeat_timeout=settings.heartbeat_timeout,
        foreign_timeout=settings.redelivery_timeout,
        max_deliveries=settings.max_deliveries,
    )
    return Worker(queue, transport, url=broker_url(settings), options=options, name=name)
