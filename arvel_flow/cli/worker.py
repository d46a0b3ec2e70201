"""The ``worker`` command: run the jobs of distributed runs (Redis, NATS or RabbitMQ).

``arvel-flow worker --allow myapp.jobs`` serves until SIGTERM or Ctrl-C: the first
stops reading and lets running jobs finish (exit 0), a second cancels them, and their
messages go to the other workers at once (exit 130). It prints ``worker NAME: ready``
once it is connected and reading. Also runnable as
``python -m arvel_flow.cli.worker``.

Every line it prints has Celery's worker form (`arvel_flow.cli.worker_lines`):
``[2026-12-03 15:30:00,123: INFO/MainProcess] worker w1: ready``. A job's log records
(``--log-level`` and up) are lines too, naming the run, step and attempt:
``[...: WARNING/MainProcess] job.log run 3f2a step fetch (attempt 1) myapp.jobs: ...``.
``--processes N`` (default: the number of CPUs) runs N such workers as child processes
under a supervisor (`arvel_flow.cli.supervise`); signals reach them through it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from arvel_flow.brokers import BROKERS
from arvel_flow.cli.common import EXIT_INTERRUPTED, EXIT_OK, use_working_directory
from arvel_flow.cli.env_option import ENV_FILE_OPTION, use_env_file
from arvel_flow.cli.group import FlowGroup
from arvel_flow.cli.log_option import LOG_LEVEL_OPTION, level_number
from arvel_flow.cli.metrics_option import (
    METRICS_COLLECT_OPTION,
    check_metrics_available,
    metrics_options,
    start_metrics,
    stop_collecting,
)
from arvel_flow.cli.otel_option import OTEL_OPTION, check_tracing_available, start_tracing
from arvel_flow.cli.worker_lines import make_line_handler, say

if TYPE_CHECKING:
    from arvel_flow.queue.events import Event, EventBus
    from arvel_flow.settings import QueueSettings
    from arvel_flow.worker import Worker


_QUIET_EVENTS = frozenset({"job.dispatched", "job.started", "batch.progress", "chain.step"})

_EVENT_LEVELS = {"job.failed": logging.ERROR, "job.retrying": logging.WARNING}


@click.command()
@click.option(
    "--broker",
    type=click.Choice(list(BROKERS)),
    help="The broker (default: redis).",
)
@click.option(
    "--url", help="The broker's URL (default: a redis store's URL, else the broker on localhost)."
)
@click.option("--store", help="The shared store: redis://... (or sqlite:PATH on one machine).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once by each process.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    help="Worker processes, restarted if one dies (default: the number of CPUs).",
)
@click.option("--queues", metavar="Q,...", help="Queues to read, comma-separated (default).")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="PREFIX",
    help="Import job classes only under this module prefix (repeatable; required).",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Also print every job that starts, and INFO records."
)
@metrics_options
@METRICS_COLLECT_OPTION
@OTEL_OPTION
@LOG_LEVEL_OPTION
@ENV_FILE_OPTION
@click.pass_context
def worker(
    ctx: click.Context,
    /,
    allow: tuple[str, ...],
    verbose: bool,
    log_level: str,
    env_file: Path | None,
    metrics_port: int | None,
    metrics_host: str,
    metrics_collect: bool,
    otel: bool,
    **flags: Any,
) -> None:
    """Run jobs of distributed runs: a Taskiq worker on Redis, NATS or RabbitMQ."""
    from arvel_flow.queue.joblogs import capture_job_logs

    use_env_file(env_file)
    use_working_directory()
    settings = resolve_worker_settings(flags, allow)
    check_metrics_available(metrics_port)
    check_tracing_available(otel)
    processes = settings.processes or os.cpu_count() or 1
    if processes > 1:
        from arvel_flow.cli.supervise import supervise

        ctx.exit(supervise(ctx, settings, processes, metrics=(metrics_host, metrics_port)))
    lines = make_line_handler(logging.INFO if verbose else logging.WARNING)
    start_tracing(otel, lambda text: say(lines, text.removeprefix("warning: "), logging.WARNING))
    with capture_job_logs(level_number(log_level), outside=lines):
        metrics = (metrics_host, metrics_port)
        try:
            code = asyncio.run(
                _serve(settings, lines, verbose=verbose, metrics=metrics, collect=metrics_collect)
            )
        finally:
            stop_collecting(metrics_collect)
    ctx.exit(code)


def resolve_worker_settings(flags: dict[str, Any], allow: tuple[str, ...]) -> QueueSettings:
    """Flags over ``ARVEL_FLOW_*`` variables over defaults; the broker defaults to redis.

    Raises:
        ConfigError: A setting is invalid (such as a malformed ``--allow`` prefix).
    """
    from arvel_flow.settings import QueueSettings

    settings = QueueSettings.resolve(flags={**flags, "allowed_modules": allow or None})
    if settings.broker == "memory":
        settings = settings.model_copy(update={"broker": "redis"})
    return settings


def format_banner(worker: Worker, settings: QueueSettings) -> str:
    """The line a worker prints when it starts (URLs with their passwords masked)."""
    from arvel_flow.store.urls import mask_url
    from arvel_flow.wiring import broker_url

    options = worker.options
    return (
        f"worker {worker.name}: queues {','.join(options.queues)} on "
        f"{mask_url(broker_url(settings))}, store {mask_url(settings.store)}, "
        f"concurrency {options.concurrency}, allowed {','.join(options.allowed_modules)}"
    )


def format_event(event: Event) -> str:
    """One plain line for an event, as a worker prints it.

    Control characters are escaped: a message's path or step name is anyone's text,
    and a newline in it must not print a line of its own (a forged ``ready``, say).
    """
    line = f"{event.event} run {event.run_id}" if event.run_id else event.event
    if event.step or event.job:
        line += f" {event.step or event.job}"
    if event.attempt is not None:
        line += f" (attempt {event.attempt})"
    if event.event == "job.log":
        line += f" {event.data.get('logger')}: {event.data.get('message')}"
    status = event.data.get("status")
    if status:
        line += f": {status}"
    error = event.data.get("error")
    line = f"{line}: {error}" if error else line
    if line.isprintable():
        return line
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in line)


def event_level(event: Event) -> int:
    """The level of an event's line: a job's log record keeps its own."""
    if event.event == "job.log":
        return logging.getLevelNamesMapping().get(str(event.data.get("level")), logging.INFO)
    return _EVENT_LEVELS.get(event.event, logging.INFO)


async def _serve(
    settings: QueueSettings,
    lines: logging.Handler,
    *,
    verbose: bool,
    metrics: tuple[str, int | None] = ("127.0.0.1", None),
    collect: bool = False,
) -> int:
    from arvel_flow.queue.events import EventBus
    from arvel_flow.queue.observers import Observers

    events = EventBus()

    def show(event: Event) -> None:
        if verbose or (event.event not in _QUIET_EVENTS and event.event != "job.succeeded"):
            say(lines, format_event(event), event_level(event))

    events.subscribe(show)
    start_metrics(events, settings, *metrics, collect=collect)
    observers = Observers.load(events, settings.observers, allowed=settings.allowed_modules)
    try:
        return await _serve_with(settings, lines, events)
    finally:
        await observers.aclose()


async def _serve_with(settings: QueueSettings, lines: logging.Handler, events: EventBus) -> int:
    from arvel_flow.wiring import make_worker
    from arvel_flow.worker.parent import (
        die_with_parent,
        supervisor_pid,
        tell_ready,
        watch_parent,
    )

    served = make_worker(settings, events=events)
    say(lines, format_banner(served, settings))
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            say(lines, "stopping: finishing running jobs (again to cancel them)")
            served.stop()
        else:
            served.abort()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)

    async def announce() -> None:
        await served.ready.wait()
        say(lines, f"worker {served.name}: ready")
        tell_ready()

    tasks = [asyncio.create_task(announce())]
    parent = supervisor_pid()
    if parent is not None:
        die_with_parent()
        tasks.append(asyncio.create_task(watch_parent(parent, served.stop)))
    try:
        await served.run()
    finally:
        for task in tasks:
            task.cancel()
        # Awaited: what the ready line or the parent watch raised is said, not lost.
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                say(lines, f"error: {outcome!r}", logging.ERROR)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    say(lines, f"worker {served.name} stopped")
    return EXIT_INTERRUPTED if served.aborted else EXIT_OK


def main() -> None:
    """``python -m arvel_flow.cli.worker``: the worker command on its own."""
    group = FlowGroup(name="arvel-flow")
    group.add_command(worker)
    group.main(args=["worker", *sys.argv[1:]], prog_name="arvel-flow")


if __name__ == "__main__":
    main()
