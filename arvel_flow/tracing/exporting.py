"""`GuardedExporter`: an exporter that fails is said once, counted, and never raises."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from arvel_flow.store.urls import mask_url


class GuardedExporter(SpanExporter):
    """Wraps an exporter: its first failure is one line (through ``say``), then counted.

    The line names the exporter and, for OTLP, its endpoint (its password masked; the
    headers, which may hold an API key, never). ``lost`` counts the spans not exported.
    """

    def __init__(self, inner: SpanExporter, say: Callable[[str], None]) -> None:
        self.inner = inner
        self.lost = 0
        self._say = say
        self._said = False
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the wrapped exporter; a failure or an error is a failure."""
        try:
            result = self.inner.export(spans)
            why = ""
        except Exception as error:
            result = SpanExportResult.FAILURE
            why = f" ({type(error).__name__})"
        if result is not SpanExportResult.SUCCESS:
            with self._lock:
                self.lost += len(spans)
                first, self._said = not self._said, True
            if first:
                self._say(
                    f"warning: traces: cannot export spans to {self.describe()}{why}; "
                    "jobs go on, later failures are counted, not said"
                )
        return result

    def describe(self) -> str:
        """The exporter's name, and where it sends (OTLP)."""
        endpoint = getattr(self.inner, "_endpoint", None)
        name = type(self.inner).__name__
        return f"{name} at {mask_url(endpoint)}" if isinstance(endpoint, str) else name

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)
