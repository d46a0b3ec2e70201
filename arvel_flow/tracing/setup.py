"""Turn tracing on in this process: the provider, its exporters, and a bounded shutdown.

Configured by the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, the default,
over HTTP/protobuf; ``console``, one JSON object per span and line on stdout; several,
comma-separated), ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other ``OTEL_EXPORTER_OTLP_*``,
``OTEL_SERVICE_NAME`` (default ``arvel-flow``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``. Spans leave through a batch processor, on a
thread of its own: an exporter that is slow or fails never holds a job up. It says so
once (`GuardedExporter`), and at the end how many spans it lost.

At process exit (normal, Ctrl-C, SIGTERM through the commands' handlers) what is left
is flushed for at most `SHUTDOWN_SECONDS`; a collector that does not answer costs the
exit that long, no more.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue import spans
from arvel_flow.secrets import scrub_text
from arvel_flow.tracing.switch import Tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

INSTALL_HINT = "pip install 'arvel-flow[otel]'"
SHUTDOWN_SECONDS = 5.0
"""The longest a process waits, as it exits, for its last spans to be exported."""
EXPORT_SECONDS = 3.0
"""How long the OTLP exporter tries one batch (retries included), unless
``OTEL_EXPORTER_OTLP_TIMEOUT`` says: under `SHUTDOWN_SECONDS`, so that at exit a
collector that is down is found out and said, not only waited for."""
_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")

Say = Callable[[str], None]


class TracingUnavailableError(ConfigError):
    """Tracing was asked for, but OpenTelemetry is not installed."""


def require_opentelemetry(option: str = "--otel") -> None:
    """Raise `TracingUnavailableError` (saying how to install it) without the extra."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        issue = ConfigIssue(f"needs OpenTelemetry: {INSTALL_HINT}", option)
        raise TracingUnavailableError([issue]) from None


def start_tracing(wanted: Tracing, say: Say | None = None) -> ProcessTracer | None:
    """Trace this process as ``wanted`` says; the `ProcessTracer`, or None when not tracing.

    Without the extra, an implied request (only the standard variables) is said and
    dropped; an explicit one raises.

    Raises:
        TracingUnavailableError: ``--otel`` or ``ARVEL_FLOW_OTEL`` without the extra.
        ConfigError: An ``OTEL_*`` variable asks for what arvel-flow cannot export with.
    """
    say = say or _say_on_stderr
    if wanted is Tracing.OFF:
        return None
    try:
        require_opentelemetry()
    except TracingUnavailableError:
        if wanted is Tracing.REQUESTED:
            raise
        say(f"warning: OTEL_* variables are set, but traces need OpenTelemetry: {INSTALL_HINT}")
        return None
    tracer = ProcessTracer(exporters_from_environment(os.environ), say)
    tracer.install()
    atexit.register(tracer.shutdown)
    return tracer


def enable_tracing(say: Say | None = None) -> ProcessTracer:
    """Trace this process, configured by the ``OTEL_*`` variables (for the Python API).

    What ``--otel`` does for a command: arvel-flow's spans and the jobs' own go to the
    exporters the variables name, flushed at exit. Call it once, before runs start.

    Raises:
        TracingUnavailableError: The ``otel`` extra is not installed.
        ConfigError: An ``OTEL_*`` variable asks for what arvel-flow cannot export with.
    """
    tracer = start_tracing(Tracing.REQUESTED, say)
    assert tracer is not None
    return tracer


def exporters_from_environment(environ: Mapping[str, str]) -> list[object]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (``otlp`` by default).

    Raises:
        ConfigError: An exporter or OTLP protocol arvel-flow does not ship.
    """
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    exporters: list[object] = []
    for name in filter(None, names):
        if name == "console":
            exporters.append(ConsoleSpanExporter(formatter=_one_line))
        elif name == "otlp":
            protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                message = f"{protocol!r}: arvel-flow exports over http/protobuf only"
                raise ConfigError([ConfigIssue(message, "OTEL_EXPORTER_OTLP_PROTOCOL")])
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            timed = any(environ.get(n) for n in _TIMEOUT_VARIABLES)
            exporters.append(OTLPSpanExporter(timeout=None if timed else EXPORT_SECONDS))
        else:
            message = f"unknown exporter {name!r} (otlp, console or none)"
            raise ConfigError([ConfigIssue(message, "OTEL_TRACES_EXPORTER")])
    return exporters


class ProcessTracer:
    """This process's tracer provider, its exporters and their shutdown.

    ``exporters`` are OpenTelemetry span exporters; ``batch=False`` sends each span as
    it ends (tests), instead of from the batch processor's thread.
    """

    def __init__(self, exporters: Sequence[object], say: Say, *, batch: bool = True) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
            SpanExporter,
        )

        from arvel_flow.tracing.exporting import GuardedExporter
        from arvel_flow.tracing.tracer import OtelTracer, PresetIds

        named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        resource = Resource.create({} if named else {"service.name": "arvel-flow"})
        self.provider = TracerProvider(
            resource=resource, id_generator=PresetIds(), shutdown_on_exit=False
        )
        self.exporters: list[GuardedExporter] = []
        for exporter in exporters:
            assert isinstance(exporter, SpanExporter)
            guarded = GuardedExporter(exporter, say)
            self.exporters.append(guarded)
            processor = BatchSpanProcessor(guarded) if batch else SimpleSpanProcessor(guarded)
            self.provider.add_span_processor(processor)
        self.hooks = OtelTracer(self.provider.get_tracer("arvel_flow"))
        self._say = say
        self._closed = False
        # The exporters say what failed, once: not the OpenTelemetry loggers, each time.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk.trace.export").setLevel(logging.CRITICAL)

    def install(self) -> None:
        """Make this the process's tracer: arvel-flow's spans, and the jobs' own."""
        from opentelemetry import trace

        trace.set_tracer_provider(self.provider)
        spans.install(self.hooks)

    def flush(self, timeout_seconds: float = SHUTDOWN_SECONDS) -> bool:
        """Export what is buffered; False when that took longer than the timeout."""
        return self.provider.force_flush(int(timeout_seconds * 1000))

    def shutdown(self, timeout_seconds: float = SHUTDOWN_SECONDS) -> None:
        """Stop tracing; export what is left, for at most ``timeout_seconds``."""
        if self._closed:
            return
        self._closed = True
        if spans.hooks is self.hooks:
            spans.uninstall()
        failures: list[BaseException] = []

        def shut_down() -> None:  # its error is said below, not left to threading's hook
            try:
                self.provider.shutdown()
            except Exception as error:
                failures.append(error)

        worker = threading.Thread(target=shut_down, name="arvel-flow-otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout_seconds)
        if failures:
            self._say(
                f"warning: traces: the exporter failed while stopping: "
                f"{scrub_text(str(failures[0])) or type(failures[0]).__name__}"
            )
        elif worker.is_alive():
            self._say(
                f"warning: traces: the exporter did not finish within {timeout_seconds:g}s;"
                " the spans it still held are dropped"
            )
        lost = sum(exporter.lost for exporter in self.exporters)
        if lost:
            self._say(f"warning: traces: {lost:,} span(s) could not be exported")


def _one_line(span: ReadableSpan) -> str:
    """A span as one line of JSON (the console exporter's own spreads it over many)."""
    return str(span.to_json(indent=None)) + "\n"


def _say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
