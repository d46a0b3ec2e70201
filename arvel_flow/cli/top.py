"""``arvel-flow top``: a live view of a deployment's workers, queues, runs and failures.

The data is one `arvel_flow.monitor.Snapshot` per refresh; this module only
parses options and reads snapshots; `arvel_flow.cli.top_render.format_top` draws them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING

import click

from arvel_flow.cli.common import FORMAT_OPTION, STORE_OPTION, print_renderable

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis import Redis
    from rich.console import RenderableType

    from arvel_flow.monitor import Snapshot
    from arvel_flow.settings import QueueSettings

READ_TIMEOUT = 2.0
"""Seconds the broker may take to answer one command of a refresh."""


@click.command()
@STORE_OPTION
@click.option("--broker", help="The broker the workers read: redis (the one top can read).")
@click.option("--url", help="The broker's URL (default: a Redis store's).")
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
    if settings.broker not in ("redis", "memory"):
        raise click.UsageError(
            f"top reads workers and queues from the redis broker only, not {settings.broker}: "
            "use --broker redis (or no broker, to see runs and failures alone)"
        )
    if output_format == "json" and not once:
        raise click.UsageError("--format json prints one snapshot: give --once too")
    from arvel_flow.cli.top_render import format_top

    only = tuple(name.strip() for name in (queues or "").split(",") if name.strip())
    if once:
        snapshot = asyncio.run(_snapshot(settings, only))
        if output_format == "json":
            click.echo(json.dumps(_document(snapshot), indent=2))
        else:
            print_renderable(format_top(snapshot))
        return
    _watch(settings, only, interval)


def _document(snapshot: Snapshot) -> object:
    from arvel_flow.monitor import snapshot_document

    return snapshot_document(snapshot)


def _watch(settings: QueueSettings, only: tuple[str, ...], interval: float) -> None:
    """Redraw in place on a terminal; piped, print each snapshot after the last."""
    from rich.live import Live
    from rich.text import Text

    from arvel_flow.cli.top_render import format_top

    async def refresh(show: Callable[[RenderableType], None]) -> None:
        while True:
            show(format_top(await _snapshot(settings, only)))
            await asyncio.sleep(interval)

    # Ctrl-C leaves the view (exit 0).
    with contextlib.suppress(KeyboardInterrupt):
        if not sys.stdout.isatty():
            asyncio.run(refresh(print_renderable))
            return
        with Live(Text("reading..."), auto_refresh=False) as live:
            asyncio.run(refresh(lambda view: live.update(view, refresh=True)))


async def _snapshot(settings: QueueSettings, only: tuple[str, ...]) -> Snapshot:
    from arvel_flow.brokers.redis.keys import StreamKeys
    from arvel_flow.cli.common import open_store_for
    from arvel_flow.monitor import take_snapshot
    from arvel_flow.redis_support import redis_errors
    from arvel_flow.store.urls import mask_url

    client = _broker_client(settings)
    store = open_store_for(settings.store, read_only=True)
    try:
        with redis_errors(mask_url(settings.url or settings.store)):
            return await take_snapshot(
                store,
                client,
                StreamKeys(settings.prefix),
                now=time.time(),
                heartbeat_timeout=settings.heartbeat_timeout,
                queues=only,
            )
    finally:
        await store.close()
        if client is not None:
            client.close()


def _broker_client(settings: QueueSettings) -> Redis | None:
    if settings.broker != "redis":
        return None
    from redis import Redis

    from arvel_flow.wiring import broker_url

    return Redis.from_url(
        broker_url(settings), socket_timeout=READ_TIMEOUT, socket_connect_timeout=READ_TIMEOUT
    )
