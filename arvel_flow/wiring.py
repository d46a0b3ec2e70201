"""Wiring: the queue, store and worker a `QueueSettings` describes.

The one place that turns settings into objects: which driver, which broker's
transport and consumer, which store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from arvel_flow.brokers import BROKERS
from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.settings import QueueSettings
from arvel_flow.store import open_store
from arvel_flow.store.contracts import StoreContract
from arvel_flow.store.urls import is_redis_url

if TYPE_CHECKING:
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue
    from arvel_flow.worker.worker import Worker


def broker_url(settings: QueueSettings) -> str:
    """The broker's URL: ``url``; for redis, else a Redis store's; else the broker on localhost."""
    if settings.url:
        return settings.url
    if settings.broker == "redis" and is_redis_url(settings.store):
        return settings.store
    return BROKERS.get(settings.broker, BROKERS["redis"]).default_url


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
    if settings.broker in BROKERS:
        return make_broker_queue(settings, store=store, events=events)
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue

    return TaskiqQueue(
        concurrency=settings.concurrency,
        store=store,
        events=events,
        allowed_modules=allowed,
        owner_lease=settings.owner_lease,
    )


def make_broker_queue(
    settings: QueueSettings, *, store: StoreContract, events: EventBus | None = None
) -> TaskiqQueue:
    """The ``taskiq`` driver sending through the broker of ``settings`` to its workers.

    Raises:
        ConfigError: The broker's extra is not installed, or its URL cannot be used.
    """
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue

    transport = BROKERS[settings.broker].sides().make_transport(settings, broker_url(settings))
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


def check_worker_settings(settings: QueueSettings) -> None:
    """Refuse settings no worker can run with (before any process is started for them).

    Raises:
        ConfigError: The broker is memory, the store is not shared, or no module prefix
            is allowed.
    """
    if settings.broker not in BROKERS:
        issue = ConfigIssue(
            "arvel-flow worker needs a broker it can share: redis, nats or rabbitmq "
            "(see 'Distributed runs' in the README)",
            path="queue.broker",
        )
        raise ConfigError([issue])
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

    check_worker_settings(settings)
    sides = BROKERS[settings.broker].sides()
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
    events = events or EventBus()
    closers = []
    if is_redis_url(settings.store):
        closers.append(publish_run_events(events, settings.store, settings.prefix))
    queue = make_broker_queue(settings, store=store, events=events)
    consumer = sides.make_consumer(queue.transport, broker_url(settings))
    if settings.broker != "redis":  # seen where Redis workers are: in the store's Redis
        from arvel_flow.brokers.redis.presence import with_presence

        consumer = with_presence(consumer, settings)
    return Worker(queue, consumer, options=options, name=name, closers=closers)


def publish_run_events(events: EventBus, url: str, prefix: str) -> Callable[[], Awaitable[None]]:
    """Publish the run events on ``events`` to the store's Redis (`RunEventPublisher`).

    So that ``arvel-flow run`` follows the runs a worker executes live. Returns what
    writes the last ones and closes the publisher.
    """
    from arvel_flow.store.run_events import RunEventPublisher

    publisher = RunEventPublisher.from_url(url, prefix)

    def publish(event: Event) -> None:
        if event.run_id is not None:
            publisher.publish(event.run_id, event.to_dict())

    events.subscribe(publish)
    return publisher.close
