"""The provider's exporters: chosen by OTEL_* variables, failing quietly, shut down in bounds."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult

from arvel_flow.errors import ConfigError
from arvel_flow.tracing.exporting import GuardedExporter
from arvel_flow.tracing.setup import ProcessTracer, exporters_from_environment


class Failing(SpanExporter):
    """An exporter whose collector is down: every export fails (or raises)."""

    def __init__(self, raises: bool = False) -> None:
        self.calls = 0
        self.raises = raises

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.raises:
            raise ConnectionError("refused")
        return SpanExportResult.FAILURE


class Stuck(SpanExporter):
    """An exporter that never returns until released (a collector that does not answer)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        return SpanExportResult.SUCCESS


def _spans(tracer: ProcessTracer, count: int) -> None:
    otel = tracer.provider.get_tracer("tests")
    for n in range(count):
        otel.start_span(f"s{n}").end()


@pytest.mark.parametrize("raises", [False, True], ids=["fails", "raises"])
def test_a_failing_exporter_is_said_once_and_its_lost_spans_counted(raises: bool) -> None:
    # Given a tracer whose exporter fails every time
    said: list[str] = []
    failing = Failing(raises)
    tracer = ProcessTracer([failing], said.append, batch=False)
    # When three spans end, and the tracer shuts down
    _spans(tracer, 3)
    tracer.shutdown()
    # Then it tried each, said the failure once, and at the end how many were lost
    assert failing.calls == 3
    assert len([line for line in said if "cannot export spans to Failing" in line]) == 1
    assert said[-1] == "warning: traces: 3 span(s) could not be exported"


def test_shutting_down_waits_for_a_stuck_exporter_no_longer_than_its_bound() -> None:
    # Given a tracer whose exporter hangs on its first batch
    said: list[str] = []
    stuck = Stuck()
    tracer = ProcessTracer([stuck], said.append)
    _spans(tracer, 2)
    # When it shuts down with a short bound (the test's timeout guards against a hang)
    tracer.shutdown(timeout_seconds=0.2)
    # Then it returned, saying the spans still held are dropped
    assert said == [
        "warning: traces: the exporter did not finish within 0.2s;"
        " the spans it still held are dropped"
    ]
    stuck.release.set()


def test_the_guard_names_an_otlp_endpoint_with_its_password_masked() -> None:
    exporter = OTLPSpanExporter(endpoint="https://user:hunter2@collector:4318/v1/traces")
    described = GuardedExporter(exporter, print).describe()
    assert described == "OTLPSpanExporter at https://user:***@collector:4318/v1/traces"


def test_otlp_is_the_default_exporter_and_console_can_be_added() -> None:
    (default,) = exporters_from_environment({})
    both = exporters_from_environment({"OTEL_TRACES_EXPORTER": "console, otlp"})
    assert isinstance(default, OTLPSpanExporter)
    assert [type(e) for e in both] == [ConsoleSpanExporter, OTLPSpanExporter]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "unknown exporter 'jaeger'"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "'grpc': arvel-flow exports over http"),
    ],
)
def test_what_arvel_flow_cannot_export_with_is_a_config_error(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        exporters_from_environment(environ)


def test_the_service_is_arvel_flow_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    default = ProcessTracer([], print).provider.resource.attributes["service.name"]
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-worker")
    named = ProcessTracer([], print).provider.resource.attributes["service.name"]
    assert (default, named) == ("arvel-flow", "billing-worker")


def test_an_exporter_that_raises_while_stopping_is_said_not_left_to_the_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a tracer whose provider raises when it shuts down
    said: list[str] = []
    tracer = ProcessTracer([Failing(False)], said.append, batch=False)

    def broken() -> None:
        raise RuntimeError("collector at https://user:hunter2@otel.example went away")

    monkeypatch.setattr(tracer.provider, "shutdown", broken)
    # When the tracer shuts down
    tracer.shutdown()
    # Then one warning says so, with the password scrubbed
    assert len(said) == 1
    assert said[0].startswith("warning: traces: the exporter failed while stopping: ")
    assert "hunter2" not in said[0]
