"""``arvel-flow top``: a live view of a deployment's workers, queues, runs and failures.

The data is one `arvel_flow.monitor.Snapshot` per refresh; this module only
parses options and reads snapshots; `arvel_flow.cli.top_render.format_top` draws them.
Queues are read from any broker (its ``read_depths``); workers from their heartbeats,
in the Redis broker or, for the others, in a Redis store. Each snapshot is measured
against the one before it for the queue rates, so ``--once`` reads twice,
``--interval`` apart, when there is a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import TYPE_CHECKING

import click

from arvel_flow.cli.common import FORMAT_OPTION, STORE_OPTION, print_renderable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from rich.console import RenderableType

    from arvel_flow.brokers.depth import QueueDepth
    from arvel_flow.monitor import Snapshot
    from arvel_flow.settings import QueueSettings

READ_TIMEOUT = 2.0
"""Seconds the broker may take to answer one command of a refresh."""


@click.command()
@STORE_OPTION
@click.option("--broker", help="The broker the workers read: redis, nats or rabbitmq.")
@click.option("--url", help="The broker's URL (default: a Redis store's, for redis).")
@click.option("--queues", help="Only these queues (comma-separated) and their workers.")
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@FORMAT_OPTION
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
def top(
    store: str | None,
    broker: str | None,
    url: str | None,
    queues: str | None,
    once: bool,
    output_format: str,
    interval: float,
) -> None:
    """Watch workers, queues, runs in progress and recent failures (Ctrl-C to leave)."""
    from arvel_flow.settings import QueueSettings

    settings = QueueSettings.resolve(flags={"store": store, "broker": broker, "url": url})
    _quiet_connection_lines()
    if output_format == "json" and not once:
        raise click.UsageError("--format json prints one snapshot: give --once too")
    from arvel_flow.cli.top_render import format_top

    only = tuple(name.strip() for name in (queues or "").split(",") if name.strip())
    if once:
        snapshot = asyncio.run(_measured(settings, only, interval))
        if output_format == "json":
            click.echo(json.dumps(_document(snapshot), indent=2))
        else:
            print_renderable(format_top(snapshot))
        return
    _watch(settings, only, interval)


_CONNECTION_LOGGERS = ("aiormq.connection", "arvel_flow.brokers.nats.transport")
"""Where the broker clients log each refused connection (aiormq's, and our NATS client's)."""


def _quiet_connection_lines() -> None:
    """Leave an unreachable broker to top's own one-line error (exit 3): the clients'
    lines about each refused connection would only say it again, in their own words."""
    for name in _CONNECTION_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _document(snapshot: Snapshot) -> object:
    from arvel_flow.monitor import snapshot_document

    return snapshot_document(snapshot)


def _watch(settings: QueueSettings, only: tuple[str, ...], interval: float) -> None:
    """Redraw in place on a terminal; piped, print each snapshot after the last."""
    from rich.live import Live
    from rich.text import Text

    from arvel_flow.cli.top_render import format_top

    async def refresh(show: Callable[[RenderableType], None]) -> None:
        snapshot = None
        while True:
            snapshot = await _snapshot(settings, only, snapshot)
            show(format_top(snapshot))
            await asyncio.sleep(interval)

    # Ctrl-C leaves the view (exit 0).
    with contextlib.suppress(KeyboardInterrupt):
        if not sys.stdout.isatty():
            asyncio.run(refresh(print_renderable))
            return
        with Live(Text("reading..."), auto_refresh=False) as live:
            asyncio.run(refresh(lambda view: live.update(view, refresh=True)))


async def _measured(settings: QueueSettings, only: tuple[str, ...], interval: float) -> Snapshot:
    """One snapshot, its queue rates measured over ``interval`` when there is a broker."""
    first = await _snapshot(settings, only)
    if settings.broker == "memory":
        return first
    await asyncio.sleep(interval)
    return await _snapshot(settings, only, first)


async def _snapshot(
    settings: QueueSettings, only: tuple[str, ...], previous: Snapshot | None = None
) -> Snapshot:
    from redis import Redis

    from arvel_flow.brokers.redis.keys import StreamKeys
    from arvel_flow.cli.common import open_store_for
    from arvel_flow.monitor import take_snapshot
    from arvel_flow.redis_support import redis_errors
    from arvel_flow.store.urls import mask_url

    url = _heartbeats_url(settings)
    heartbeats = None
    if url is not None:
        heartbeats = Redis.from_url(
            url, socket_timeout=READ_TIMEOUT, socket_connect_timeout=READ_TIMEOUT
        )
    store = open_store_for(settings.store, read_only=True)
    try:
        with redis_errors(mask_url(url or settings.store)):
            return await take_snapshot(
                store,
                now=time.time(),
                heartbeat_timeout=settings.heartbeat_timeout,
                depths=_depth_reader(settings),
                heartbeats=heartbeats,
                keys=StreamKeys(settings.prefix),
                queues=only,
                previous=previous,
            )
    finally:
        await store.close()
        if heartbeats is not None:
            heartbeats.close()


def _depth_reader(
    settings: QueueSettings,
) -> Callable[[Sequence[str]], Awaitable[list[QueueDepth]]] | None:
    """How the broker's queues are read; None without a broker."""
    from arvel_flow.brokers import BROKERS
    from arvel_flow.wiring import broker_url

    broker = BROKERS.get(settings.broker)
    if broker is None:
        return None
    sides, url = broker.sides(), broker_url(settings)

    def read(only: Sequence[str]) -> Awaitable[list[QueueDepth]]:
        return sides.read_depths(settings, url, only, READ_TIMEOUT)

    return read


def _heartbeats_url(settings: QueueSettings) -> str | None:
    """The Redis the workers beat into: the Redis broker, or for the other brokers a
    Redis store (`arvel_flow.brokers.redis.presence`); None when there is neither."""
    from arvel_flow.store.urls import is_redis_url
    from arvel_flow.wiring import broker_url

    if settings.broker == "redis":
        return broker_url(settings)
    if settings.broker != "memory" and is_redis_url(settings.store):
        return settings.store
    return None
