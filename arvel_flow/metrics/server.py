"""``--metrics-port``: serve ``/metrics`` from this process, or say what is missing.

One process counts and serves (`serve_metrics`). With ``worker --processes N`` the
children count into files under `MULTIPROC_VARIABLE`'s directory (`count_events`,
prometheus-client's multiprocess mode) and the supervisor serves their sum
(`serve_collected`); a child that ends says so (`mark_dead`), and so does the supervisor
that reaps it, so its running jobs stop counting.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from arvel_flow.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from arvel_flow.queue.events import EventBus
    from arvel_flow.settings import QueueSettings

INSTALL_HINT = "pip install 'arvel-flow[metrics]'"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's variable: where each process of a group writes its figures."""


class MetricsUnavailableError(ConfigError):
    """``--metrics-port`` was given but prometheus-client is not installed."""


def keep_in_memory() -> None:
    """Make this process keep its figures in memory, even with `MULTIPROC_VARIABLE` set.

    prometheus-client reads the variable once, when it is first imported, and then
    writes every figure to files in that directory (and fails when there is none). A
    single process serving its own figures is no group of processes: the variable,
    set for another program, say, is dropped from this process's environment. Call it
    before prometheus-client is imported (`require_prometheus` imports it).
    """
    os.environ.pop(MULTIPROC_VARIABLE, None)
    os.environ.pop(MULTIPROC_VARIABLE.lower(), None)  # the name it read before 0.10


def serve_metrics(events: EventBus, settings: QueueSettings, host: str, port: int) -> None:
    """Count ``events`` into a registry and serve it on ``http://host:port/metrics``,
    with the queues of ``settings``' broker.

    The server runs on a daemon thread (prometheus-client's), so it never holds up the
    event loop nor the process's exit.

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
        ConfigError: The port cannot be bound.
    """
    require_prometheus()
    from prometheus_client import CollectorRegistry

    from arvel_flow.metrics.listener import MetricsListener

    registry = CollectorRegistry()
    events.subscribe(MetricsListener(registry))
    _start(registry, settings, host, port)


def count_events(events: EventBus) -> None:
    """Count ``events`` for a supervisor that serves them (`MULTIPROC_VARIABLE` is set)."""
    require_prometheus()
    from prometheus_client import CollectorRegistry

    from arvel_flow.metrics.listener import MetricsListener

    # In multiprocess mode the values live in files; the registry only names them.
    events.subscribe(MetricsListener(CollectorRegistry()))


def mark_dead(pid: int, directory: str | None = None) -> None:
    """Drop the live gauges of process ``pid`` (it ended) from the summed figures under
    ``directory`` (by default `MULTIPROC_VARIABLE`'s): the child itself as it ends, and
    the supervisor as it reaps it, in case a ``kill -9`` gave it no chance."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def serve_collected(directory: str, settings: QueueSettings, host: str, port: int) -> None:
    """Serve on ``host:port`` the figures the processes wrote under ``directory``, with
    the queues of ``settings``' broker."""
    require_prometheus()
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    _start(registry, settings, host, port)


def _start(registry: CollectorRegistry, settings: QueueSettings, host: str, port: int) -> None:
    from prometheus_client import start_http_server

    from arvel_flow.metrics.queues import queue_collector

    collector = queue_collector(settings)
    if collector is not None:
        registry.register(collector)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        issue = ConfigIssue(f"cannot serve on {host}:{port}: {error}", "--metrics-port")
        raise ConfigError([issue]) from None


def require_prometheus() -> None:
    """Raise `MetricsUnavailableError` (saying how to install it) without prometheus-client."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        issue = ConfigIssue(f"needs prometheus-client: {INSTALL_HINT}", "--metrics-port")
        raise MetricsUnavailableError([issue]) from None
