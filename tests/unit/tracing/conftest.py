"""An in-memory span exporter installed as this process's tracer, for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from arvel_flow.queue import spans
from arvel_flow.tracing.setup import ProcessTracer
from tests.unit.tracing.jobs import CALLS


class Traced:
    """The spans a test's code ended, and what the tracer said."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.said: list[str] = []
        self.tracer = ProcessTracer([self.exporter], self.said.append, batch=False)

    def spans(self) -> list[ReadableSpan]:
        """Every span ended so far."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The spans called ``name``."""
        return [span for span in self.spans() if span.name == name]

    def parent_name(self, span: ReadableSpan) -> str | None:
        """The name of ``span``'s parent (None for a root; fails for a missing parent)."""
        if span.parent is None:
            return None
        by_id = {s.context.span_id: s for s in self.spans() if s.context is not None}
        return by_id[span.parent.span_id].name


def _reset_global_provider() -> None:
    # OpenTelemetry sets its global provider once per process; each test installs its own.
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


@pytest.fixture
def traced() -> Iterator[Traced]:
    """Tracing on, into memory, for the test; off again after it."""
    CALLS.clear()
    made = Traced()
    _reset_global_provider()
    made.tracer.install()
    try:
        yield made
    finally:
        made.tracer.shutdown()
        spans.uninstall()
        _reset_global_provider()
