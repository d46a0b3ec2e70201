"""``--otel``: OpenTelemetry traces for the commands that run jobs.

On with ``--otel`` or ``ARVEL_FLOW_OTEL=1``, and by default when the standard
``OTEL_TRACES_EXPORTER`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` variables are set
(`arvel_flow.tracing.switch` has the rules). Off, OpenTelemetry is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click

OTEL_OPTION = click.option(
    "--otel",
    is_flag=True,
    help="Send OpenTelemetry traces, one per run (OTEL_* variables; needs arvel-flow[otel]).",
)


def start_tracing(flag: bool, say: Callable[[str], None] | None = None) -> None:
    """Trace this process when ``--otel`` or the environment asks; flushed at exit.

    Raises:
        ConfigError: Asked for without the ``otel`` extra, or an ``OTEL_*`` variable is
            invalid (exit 2).
    """
    from arvel_flow.tracing.switch import Tracing, tracing_wanted

    wanted = tracing_wanted(flag, os.environ)
    if wanted is not Tracing.OFF:
        from arvel_flow.tracing.setup import start_tracing as start

        start(wanted, say)


def check_tracing_available(flag: bool) -> None:
    """Fail early (exit 2) when tracing is asked for explicitly without the ``otel`` extra.

    For a process that traces nothing itself (the supervisor of ``worker --processes``):
    its children would each fail the same way.
    """
    from arvel_flow.tracing.switch import Tracing, tracing_wanted

    if tracing_wanted(flag, os.environ) is Tracing.REQUESTED:
        from arvel_flow.tracing.setup import require_opentelemetry

        require_opentelemetry()
