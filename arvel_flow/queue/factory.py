"""Build the queue a `QueueSettings` describes: driver, broker and store."""

from __future__ import annotations

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.drivers.base import BaseQueue
from arvel_flow.queue.events import EventBus
from arvel_flow.settings import QueueSettings
from arvel_flow.store import open_store
from arvel_flow.store.contracts import StoreContract


def make_queue(
    settings: QueueSettings, *, events: EventBus | None = None, store: StoreContract | None = None
) -> BaseQueue:
    """The driver named by ``settings``, on the store it names (or ``store``)."""
    if store is None:
        store = open_store(settings.store, commit_interval=settings.commit_interval)
    allowed = settings.allowed_modules or None
    if settings.driver == "sync":
        from arvel_flow.queue.drivers.sync import SyncQueue

        return SyncQueue(store=store, events=events, allowed_modules=allowed)
    if settings.driver == "null":
        from arvel_flow.queue.drivers.null import NullQueue

        return NullQueue(store=store, events=events, allowed_modules=allowed)
    if settings.broker != "memory":
        raise ConfigError(
            [
                ConfigIssue(
                    f"broker {settings.broker!r} runs jobs in `arvel-flow worker` processes; "
                    "`run` embeds the in-process broker only (use --broker memory)",
                    path="queue.broker",
                )
            ]
        )
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue

    return TaskiqQueue(
        concurrency=settings.concurrency, store=store, events=events, allowed_modules=allowed
    )
