"""The schedule commands: ``scheduler`` (long-running), ``schedule list`` and ``schedule tick``.

``arvel-flow scheduler FILE_OR_DIR...`` starts the runs of the files' triggers when
they are due, each tick exactly once among every scheduler sharing the store; it
prints ``scheduler: ready`` once serving, a line per run started or ended, reloads a
file that changes on disk (checked every second; an invalid change is reported and the
triggers in force are kept), and stops on SIGTERM or Ctrl-C: queued ticks are dropped
and runs going on in this process are interrupted (resumable), exit 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from arvel_flow.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FORMAT_OPTION,
    STORE_OPTION,
    print_renderable,
    use_working_directory,
)
from arvel_flow.cli.env_option import ENV_FILE_OPTION, use_env_file
from arvel_flow.cli.metrics_option import check_metrics_available, metrics_options, start_metrics
from arvel_flow.cli.otel_option import OTEL_OPTION, start_tracing

if TYPE_CHECKING:
    from arvel_flow.queue.events import EventBus
    from arvel_flow.queue.result import BatchResult
    from arvel_flow.scheduler import Scheduler, Trigger
    from arvel_flow.settings import QueueSettings
    from arvel_flow.store.contracts import StoreContract

PATHS = click.argument("paths", nargs=-1, required=True, metavar="FILE_OR_DIR...")
BROKER_OPTION = click.option(
    "--broker",
    type=click.Choice(["redis", "nats", "rabbitmq"]),
    help="Dispatch runs to workers on this broker (default: run them in this process).",
)
URL_OPTION = click.option("--url", help="The broker's URL.")


def _load(paths: Sequence[str]) -> list[Trigger]:
    """The files' triggers, each file compiled strictly (`check_triggers`)."""
    from arvel_flow.scheduler import load_triggers
    from arvel_flow.scheduler.start import check_triggers

    triggers = load_triggers(paths)
    check_triggers(triggers)
    return triggers


def _settings(store: str | None, broker: str | None, url: str | None) -> QueueSettings:
    from arvel_flow.settings import QueueSettings

    flags = {"store": store, "broker": broker, "url": url}
    return QueueSettings.resolve(flags={k: v for k, v in flags.items() if v is not None})


def _run_flags(settings: QueueSettings, broker: str | None, url: str | None) -> dict[str, Any]:
    """What the runs take from the scheduler: its store, and a broker when given."""
    # Each write its own transaction: a sqlite group transaction held open by one run
    # would keep the scheduler (on the same event loop) from claiming the next tick.
    flags: dict[str, Any] = {
        "store": settings.store,
        "prefix": settings.prefix,
        "commit_interval": 0.0,
    }
    if broker is not None:
        flags["broker"] = broker
    if url is not None:
        flags["url"] = url
    return flags


def _open_store(settings: QueueSettings) -> StoreContract:
    from arvel_flow.store import open_store

    # Claims are decisions other schedulers wait on: commit each at once.
    return open_store(settings.store, prefix=settings.prefix)


def _make(
    triggers: list[Trigger],
    flags: dict[str, Any],
    store: StoreContract,
    failed: list[str] | None = None,
    events: EventBus | None = None,
) -> Scheduler:
    """A scheduler printing a line per run started and ended (``failed`` collects runs
    that did not succeed)."""
    from arvel_flow.cli.schedule_render import format_utc
    from arvel_flow.scheduler import Scheduler
    from arvel_flow.scheduler.start import start_tick

    async def start(trigger: Trigger, at: float, run_id: str) -> Any:
        return await start_tick(trigger, at, run_id, flags, events)

    def started(trigger: Trigger, at: float, run_id: str) -> None:
        click.echo(f"started run {run_id} for {trigger.key} (tick {format_utc(at)})", err=True)

    def ended(trigger: Trigger, run_id: str, result: BatchResult | None) -> None:
        status = "interrupted" if result is None else result.status
        click.echo(f"run {run_id} of {trigger.key}: {status}", err=True)
        if failed is not None and status != "succeeded":
            failed.append(run_id)

    return Scheduler(triggers, store, start=start, on_start=started, on_run=ended)


@click.command()
@PATHS
@STORE_OPTION
@BROKER_OPTION
@URL_OPTION
@click.option("-v", "--verbose", is_flag=True, help="Also log each tick skipped or queued.")
@metrics_options
@OTEL_OPTION
@ENV_FILE_OPTION
@click.pass_context
def scheduler(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    store: str | None,
    broker: str | None,
    url: str | None,
    verbose: bool,
    metrics_port: int | None,
    metrics_host: str,
    otel: bool,
    env_file: Path | None,
) -> None:
    """Start the runs of the files' schedule: triggers when due, until SIGTERM."""
    use_env_file(env_file)
    use_working_directory()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    check_metrics_available(metrics_port)
    start_tracing(otel)
    triggers = _load(paths)
    settings = _settings(store, broker, url)
    flags = _run_flags(settings, broker, url)
    metrics = (metrics_host, metrics_port)
    ctx.exit(asyncio.run(_serve(list(paths), triggers, settings, flags, metrics)))


async def _serve(
    paths: list[str],
    triggers: list[Trigger],
    settings: QueueSettings,
    flags: dict[str, Any],
    metrics: tuple[str, int | None] = ("127.0.0.1", None),
) -> int:
    from arvel_flow.errors import ConfigError
    from arvel_flow.queue.events import EventBus
    from arvel_flow.scheduler.files import files_changed
    from arvel_flow.store.urls import mask_url

    events = EventBus()
    start_metrics(events, settings, *metrics)
    store = _open_store(settings)
    served = _make(triggers, flags, store, events=events)
    stamps: dict[Path, float] = {}
    files_changed(stamps, paths)

    def reload() -> list[Trigger] | None:
        try:
            if not files_changed(stamps, paths):
                return None
            fresh = _load(paths)
        except ConfigError as error:
            click.echo(f"reload failed, keeping the triggers in force:\n{error}", err=True)
            return None
        click.echo(f"scheduler: reloaded, {len(fresh)} triggers", err=True)
        return fresh

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    click.echo(f"scheduler: {len(triggers)} triggers, store {mask_url(settings.store)}", err=True)
    click.echo("scheduler: ready", err=True)
    try:
        await served.serve(stop, reload=reload)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await store.close()
    click.echo("scheduler stopped", err=True)
    return EXIT_OK


@click.group()
def schedule() -> None:
    """Look at the files' triggers, or start what is due now (for system cron)."""


@schedule.command("list")
@PATHS
@click.option("--count", type=click.IntRange(min=1, max=1000), default=3, show_default=True)
@click.option("--store", help="Also show each trigger's last run, from this store.")
@FORMAT_OPTION
@ENV_FILE_OPTION
def list_(
    paths: tuple[str, ...],
    count: int,
    store: str | None,
    output_format: str,
    env_file: Path | None,
) -> None:
    """Every trigger with its next fire times (its time zone and UTC)."""
    from arvel_flow.cli.schedule_render import format_schedule, schedule_document
    from arvel_flow.scheduler import load_triggers

    use_env_file(env_file)
    use_working_directory()
    triggers = load_triggers(paths)
    views = asyncio.run(_views(triggers, count, store))
    if output_format == "json":
        click.echo(json.dumps(schedule_document(views, with_store=store is not None), indent=2))
    else:
        print_renderable(format_schedule(views, with_store=store is not None))


async def _views(triggers: list[Trigger], count: int, store_url: str | None) -> list[Any]:
    from arvel_flow.cli.common import open_store_for
    from arvel_flow.cli.schedule_render import compute_view

    now = time.time()
    if store_url is None:
        return [compute_view(trigger, now, count) for trigger in triggers]
    store = open_store_for(store_url, read_only=True)
    try:
        views = []
        for trigger in triggers:
            last = await store.last_tick(trigger.key)
            run = None if last is None or last.run_id is None else await store.get_run(last.run_id)
            views.append(compute_view(trigger, now, count, last, run))
        return views
    finally:
        await store.close()


@schedule.command()
@PATHS
@STORE_OPTION
@BROKER_OPTION
@URL_OPTION
@OTEL_OPTION
@ENV_FILE_OPTION
@click.pass_context
def tick(
    ctx: click.Context,
    /,
    paths: tuple[str, ...],
    store: str | None,
    broker: str | None,
    url: str | None,
    otel: bool,
    env_file: Path | None,
) -> None:
    """Start what is due now, follow those runs to their end, and exit (1 if one failed)."""

    use_env_file(env_file)
    use_working_directory()
    start_tracing(otel)
    triggers = _load(paths)
    settings = _settings(store, broker, url)
    ctx.exit(asyncio.run(_tick(triggers, settings, _run_flags(settings, broker, url))))


async def _tick(triggers: list[Trigger], settings: QueueSettings, flags: dict[str, Any]) -> int:
    store = _open_store(settings)
    failed: list[str] = []
    try:
        served = _make(triggers, flags, store, failed)
        claimed = await served.tick()
        for outcome in claimed:
            click.echo(
                f"{outcome.tick.trigger}: {outcome.action} ({outcome.tick.run_id})", err=True
            )
        if not claimed:
            click.echo("nothing due", err=True)
        await served.drain()
    finally:
        await store.close()
    return EXIT_FAILED if failed or served.errors else EXIT_OK
