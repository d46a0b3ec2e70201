"""``--otel``: the real command traces a run, says what is missing, never hangs on export."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, free_port, read_lines, wait_for
from tests.fixtures.spans import parent_names, read_spans

pytestmark = pytest.mark.slow

CHAIN_OF_BATCHES = """
version: 1
name: traced
pipeline:
  chain:
    - id: first
      job: tests.unit.tracing.jobs:Work
      with: {name: first, fail_times: 1}
    - id: fan
      batch:
        - job: tests.unit.tracing.jobs:Work
          each: [{name: a}, {name: b}]
      then: {job: tests.unit.tracing.jobs:Work, with: {name: then}}
"""

PLAIN = """
version: 1
name: plain
pipeline:
  job: tests.e2e.jobs:Touch
  with: {path: touched}
"""


def test_an_embedded_run_is_one_trace_with_its_tree(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    cli.env["OTEL_TRACES_EXPORTER"] = "console"
    # When a chain of a retried job and a batch with a then runs with --otel
    result = cli("run", str(pipeline("traced", CHAIN_OF_BATCHES)), "--store", store, "--otel")
    assert result.code == 0, result
    found = read_spans(result.stdout)
    # Then it is one trace
    assert len({span.trace_id for span in found}) == 1
    # And its tree: attempts under their chain or batch, the then under its batch
    job = "job tests.unit.tracing.jobs:Work"
    assert parent_names(found) == {
        "run traced": {None},
        "chain root": {"run traced"},
        "batch fan": {"chain root"},
        job: {"chain root", "batch fan"},
        "inner first": {job},
        "inner a": {job},
        "inner b": {job},
        "inner then": {job},
    }
    attempts = [span for span in found if span.name == job]
    by_parent = Counter(
        next(s.name for s in found if s.span_id == span.parent_id) for span in attempts
    )
    assert by_parent == {"chain root": 2, "batch fan": 3}
    retried = [span for span in attempts if span.attributes["arvel_flow.outcome"] == "retrying"]
    assert [span.events for span in retried] == [["job.retrying"]]
    assert service_names(result.stdout) == {"arvel-flow"}


def service_names(output: str) -> set[str]:
    import json

    return {
        json.loads(line)["resource"]["attributes"]["service.name"]
        for line in output.splitlines()
        if line.startswith('{"name"')
    }


def test_a_collector_that_is_down_costs_one_line_and_never_the_run(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    # Given an OTLP endpoint nothing listens on (tracing on by default then)
    cli.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    # When a run ends (the hang guard is the harness's timeout)
    result = cli("run", str(pipeline("plain", PLAIN)), "--store", store, "--output", "plain")
    # Then the run succeeded, and the failed export is said once, with no traceback
    assert result.code == 0, result
    assert result.stderr.count("warning: traces: cannot export spans to OTLPSpanExporter") == 1
    assert "Traceback" not in result.stderr


@pytest.fixture
def without_opentelemetry(cli: Cli, tmp_path: Path) -> Cli:
    """The command with an ``opentelemetry`` package that cannot be imported."""
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no opentelemetry here')\n")
    cli.env["PYTHONPATH"] = f"{shadow.parent}:{cli.env['PYTHONPATH']}"
    return cli


def test_without_the_extra_otel_is_a_usage_error_saying_what_to_install(
    without_opentelemetry: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    result = without_opentelemetry("run", str(pipeline("plain", PLAIN)), "--store", store, "--otel")
    assert result.code == 2, result
    assert "--otel: needs OpenTelemetry: pip install 'arvel-flow[otel]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_extra_the_otel_variables_warn_and_the_run_goes_on(
    without_opentelemetry: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    without_opentelemetry.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
    result = without_opentelemetry("run", str(pipeline("plain", PLAIN)), "--store", store)
    assert result.code == 0, result
    assert "traces need OpenTelemetry: pip install 'arvel-flow[otel]'" in result.stderr


def test_with_tracing_off_opentelemetry_is_never_imported(
    without_opentelemetry: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    # (importing it would fail the run: the package there raises)
    result = without_opentelemetry("run", str(pipeline("plain", PLAIN)), "--store", store)
    assert result.code == 0, result
    assert "OpenTelemetry" not in result.stderr


EVERY_SECOND = """\
version: 1
name: often
schedule:
  - id: often
    every: 1s
    overlap: allow
    missed: skip
pipeline:
  job: tests.e2e.jobs:Mark
  with: {{log: "{log}", name: tick}}
"""


def test_schedule_tick_traces_the_run_it_starts(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    cli.env["OTEL_TRACES_EXPORTER"] = "console"
    path = pipeline("often", EVERY_SECOND.format(log=tmp_path / "ticks.log"))
    result = cli("schedule", "tick", str(path), "--store", store, "--otel")
    assert result.code == 0, result
    assert parent_names(read_spans(result.stdout)) == {
        "run often": {None},
        "chain root": {"run often"},
        "job tests.e2e.jobs:Mark": {"chain root"},
    }


def test_a_scheduler_stopped_by_sigterm_flushes_the_spans_of_its_runs(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    # Given a traced scheduler that has run a tick (its spans still in the batch processor)
    cli.env["OTEL_TRACES_EXPORTER"] = "console"
    log = tmp_path / "ticks.log"
    path = pipeline("often", EVERY_SECOND.format(log=log))
    scheduler = cli.start("scheduler", str(path), "--store", store, "--otel")
    wait_for(lambda: "tick" in read_lines(log), timeout=60, what="a tick")
    # When it is stopped with SIGTERM
    scheduler.signal(signal.SIGTERM)
    result = scheduler.wait()
    # Then it exited 0, and the spans of the runs it finished were printed on the way out
    assert result.code == 0, result
    names = {span.name for span in read_spans(result.stdout)}
    assert {"run often", "job tests.e2e.jobs:Mark"} <= names
