"""``--metrics-port`` / ``--metrics-host``: Prometheus ``/metrics`` for ``run`` and ``worker``.

The host defaults to 127.0.0.1: the figures name job classes and queues, which are no
one else's business; expose them with ``--metrics-host 0.0.0.0`` behind a firewall.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from arvel_flow.queue.events import EventBus
    from arvel_flow.settings import QueueSettings

F = TypeVar("F", bound=Callable[..., Any])


METRICS_COLLECT_OPTION = click.option(
    "--metrics-collect",
    is_flag=True,
    hidden=True,
    help="A child of worker --processes: count for the supervisor, which serves.",
)
"""Given by the supervisor of ``worker --processes`` to its children, never by a user."""


def metrics_options(command: F) -> F:
    """Add ``--metrics-port`` and ``--metrics-host`` to ``command``."""
    command = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="The address /metrics is served on (0.0.0.0: every interface).",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(min=0, max=65535),
        help="Serve Prometheus metrics on this port at /metrics (needs arvel-flow[metrics]).",
    )(command)


def check_metrics_available(port: int | None) -> None:
    """Fail early (exit 2) when ``--metrics-port`` is given without prometheus-client.

    This process serves its own figures then: it keeps them in memory, whatever
    ``PROMETHEUS_MULTIPROC_DIR`` says (`keep_in_memory`, before the import).
    """
    if port is not None:
        from arvel_flow.metrics.server import keep_in_memory, require_prometheus

        keep_in_memory()
        require_prometheus()


def start_metrics(
    events: EventBus,
    settings: QueueSettings,
    host: str,
    port: int | None,
    *,
    collect: bool = False,
) -> None:
    """With ``--metrics-port``: count ``events`` and serve them on ``host:port``.

    With ``collect`` (a child of ``worker --processes``): count them for the supervisor.
    """
    if collect:
        from arvel_flow.metrics.server import count_events

        count_events(events)
    elif port is not None:
        from arvel_flow.metrics.server import serve_metrics

        serve_metrics(events, settings, host, port)


def stop_collecting(collect: bool) -> None:
    """A child that counted for its supervisor ends: its live gauges stop counting."""
    if collect:
        from arvel_flow.metrics.server import mark_dead

        mark_dead(os.getpid())
