"""Wiring: the queue, store and worker a `QueueSettings` describes.

The one place that turns settings into objects: which driver, which broker's
transport and consumer, which store.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.events import EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.settings import QueueSettings
from arvel_flow.store import open_store
from arvel_flow.store.contracts import StoreContract
from arvel_flow.store.urls import is_redis_url, mask_url

if TYPE_CHECKING:
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue
    from arvel_flow.queue.transport import Transport
    from arvel_flow.worker.consumer import Consumer
    from arvel_flow.worker.worker import Worker


DEFAULT_URLS = {
    "redis": "redis://localhost:6379/0",
    "nats": "nats://localhost:4222",
    "rabbitmq": "amqp://guest:guest@localhost:5672/",
}
EXTRAS = {"nats": "taskiq_nats", "rabbitmq": "taskiq_aio_pika"}
"""The package each optional broker needs (installed by the extra of the broker's name)."""


def broker_url(settings: QueueSettings) -> str:
    """The broker's URL: ``url``; for redis, else a Redis store's; else the broker on localhost."""
    if settings.url:
        return settings.url
    if settings.broker == "redis" and is_redis_url(settings.store):
        return settings.store
    return DEFAULT_URLS.get(settings.broker, DEFAULT_URLS["redis"])


def check_extra(broker: str) -> None:
    """Refuse an optional broker whose package is not installed, saying how to install it."""
    package = EXTRAS.get(broker)
    if package is None or importlib.util.find_spec(package) is not None:
        return
    issue = ConfigIssue(
        f"broker {broker!r} needs the {broker} extra: pip install 'arvel-flow[{broker}]'",
        path="queue.broker",
    )
    raise ConfigError([issue])


def make_queue(
    settings: QueueSettings, *, events: EventBus | None = None, store: StoreContract | None = None
) -> Queue:
    """The driver named by ``settings``, on the store it names (or ``store``).

    With a broker other than ``memory`` the queue only sends: ``arvel-flow worker``
    processes run the jobs, and the store (which they must share) holds the run's progress.
    """
    if settings.driver == "taskiq" and settings.broker != "memory":
        check_shared_store(settings)
    if store is None:
        store = open_store(
            settings.store, prefix=settings.prefix, commit_interval=settings.commit_interval
        )
    allowed = settings.allowed_modules or None
    if settings.driver == "sync":
        from arvel_flow.queue.drivers.sync import SyncQueue

        return SyncQueue(
            store=store, events=events, allowed_modules=allowed, owner_lease=settings.owner_lease
        )
    if settings.driver == "null":
        from arvel_flow.queue.drivers.null import NullQueue

        return NullQueue(store=store, events=events, allowed_modules=allowed)
    if settings.broker == "redis":
        return make_redis_queue(settings, store=store, events=events)
    if settings.broker in EXTRAS:
        return make_remote_queue(settings, store=store, events=events)
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue

    return TaskiqQueue(
        concurrency=settings.concurrency,
        store=store,
        events=events,
        allowed_modules=allowed,
        owner_lease=settings.owner_lease,
    )


def make_redis_queue(
    settings: QueueSettings, *, store: StoreContract, events: EventBus | None = None
) -> TaskiqQueue:
    """A queue sending to Redis streams: streams and delays under ``settings.prefix``."""
    from redis.asyncio import ConnectionPool, Redis

    from arvel_flow.brokers.redis.keys import StreamKeys
    from arvel_flow.brokers.redis.transport import RedisStreamTransport
    from arvel_flow.redis_support import describe_client

    url = broker_url(settings)
    try:
        # A flush holds one connection: the pool is sized above the concurrency.
        pool = ConnectionPool.from_url(url, max_connections=max(64, 4 * settings.concurrency))
    except ValueError as error:
        issue = ConfigIssue(f"invalid redis URL {mask_url(url)!r}: {error}", path="queue.url")
        raise ConfigError([issue]) from None
    client = Redis.from_pool(pool)
    transport = RedisStreamTransport(
        client, StreamKeys(settings.prefix), backend=describe_client(client)
    )
    return _sending_queue(settings, transport, store=store, events=events)


def make_remote_queue(
    settings: QueueSettings, *, store: StoreContract, events: EventBus | None = None
) -> TaskiqQueue:
    """A queue sending to NATS JetStream or RabbitMQ, which arvel-flow workers read."""
    check_extra(settings.broker)
    url = broker_url(settings)
    transport: Transport
    if settings.broker == "nats":
        from arvel_flow.brokers.nats.transport import NatsTransport

        transport = NatsTransport(url, prefix=settings.prefix)
    else:
        from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

        transport = RabbitMQTransport(url, prefix=settings.prefix)
    return _sending_queue(settings, transport, store=store, events=events)


def _sending_queue(
    settings: QueueSettings,
    transport: Transport,
    *,
    store: StoreContract,
    events: EventBus | None,
) -> TaskiqQueue:
    """The ``taskiq`` driver sending through a broker's ``transport`` to workers elsewhere."""
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue

    return TaskiqQueue(
        concurrency=settings.concurrency,
        transport=transport,
        store=store,
        events=events,
        allowed_modules=settings.allowed_modules or None,
    )


def check_shared_store(settings: QueueSettings) -> None:
    """Refuse a store that workers in other processes cannot see."""
    if settings.store == "memory":
        issue = ConfigIssue(
            f"broker {settings.broker!r} runs jobs in `arvel-flow worker` processes, which "
            "cannot see a memory store: use redis://... (or sqlite:PATH on one machine)",
            path="queue.store",
        )
        raise ConfigError([issue])


def make_worker(
    settings: QueueSettings, *, events: EventBus | None = None, name: str | None = None
) -> Worker:
    """A worker for the broker, store and queues of ``settings``; it owns its queue.

    Raises:
        ConfigError: The broker is memory (or its extra is not installed), the store is
            not shared, or no module prefix is allowed (a worker never imports job
            classes from anywhere).
    """
    from arvel_flow.worker.options import WorkerOptions
    from arvel_flow.worker.worker import Worker

    if settings.broker not in CONSUMERS:
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
    queue, consumer = CONSUMERS[settings.broker](settings, store, events)
    return Worker(queue, consumer, options=options, name=name)


WorkerSide = Callable[[QueueSettings, StoreContract, EventBus | None], "tuple[Queue, Consumer]"]
"""Builds a worker's queue (sending through the broker) and its broker's consumer."""


def _redis_side(
    settings: QueueSettings, store: StoreContract, events: EventBus | None
) -> tuple[Queue, Consumer]:
    from arvel_flow.brokers.redis.consumer import RedisConsumer
    from arvel_flow.brokers.redis.transport import RedisStreamTransport

    queue = make_redis_queue(settings, store=store, events=events)
    assert isinstance(queue.transport, RedisStreamTransport)
    return queue, RedisConsumer(queue.transport, url=broker_url(settings))


def _nats_side(
    settings: QueueSettings, store: StoreContract, events: EventBus | None
) -> tuple[Queue, Consumer]:
    from arvel_flow.brokers.nats.consumer import NatsConsumer
    from arvel_flow.brokers.nats.transport import NatsTransport

    queue = make_remote_queue(settings, store=store, events=events)
    assert isinstance(queue.transport, NatsTransport)
    return queue, NatsConsumer(queue.transport, url=broker_url(settings))


def _rabbitmq_side(
    settings: QueueSettings, store: StoreContract, events: EventBus | None
) -> tuple[Queue, Consumer]:
    from arvel_flow.brokers.rabbitmq.consumer import RabbitMQConsumer
    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

    queue = make_remote_queue(settings, store=store, events=events)
    assert isinstance(queue.transport, RabbitMQTransport)
    return queue, RabbitMQConsumer(queue.transport, url=broker_url(settings))


CONSUMERS: dict[str, WorkerSide] = {
    "redis": _redis_side,
    "nats": _nats_side,
    "rabbitmq": _rabbitmq_side,
}
"""Each broker a worker can read, by its ``queue.broker`` name: adding a broker is a
folder under `arvel_flow.brokers` and a line here."""
