"""One trace per run across two real worker processes on Redis (``--otel``, console spans)."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.spans import PrintedSpan, read_spans
from tests.integration.conftest import STOP_TIMEOUT, Cluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]

RUN_TIMEOUT = 60
RECORD = "job tests.integration.jobs:Record"
FLAKY = "job tests.integration.jobs:Flaky"


def _pipeline(cluster: Cluster, path: Path) -> Path:
    """A chain: a job that fails once, a fan-out batch with a then, a batch holding a chain."""
    journal = cluster.journal_key
    items = ", ".join(f'{{journal: "{journal}", tag: m{i}, hold: 0.1}}' for i in range(8))
    path.write_text(
        f"""
version: 1
name: traced
pipeline:
  chain:
    - id: first
      job: tests.integration.jobs:Flaky
      with: {{journal: "{journal}", tag: first, failures: 1}}
      retry: {{max_retries: 2, backoff: 0}}
    - id: fan
      batch:
        - job: tests.integration.jobs:Record
          each: [{items}]
      then: {{job: tests.integration.jobs:Record, with: {{journal: "{journal}", tag: then}}}}
    - id: nested
      batch:
        - id: inner
          chain:
            - {{job: tests.integration.jobs:Record, with: {{journal: "{journal}", tag: c1}}}}
            - {{job: tests.integration.jobs:Record, with: {{journal: "{journal}", tag: c2}}}}
        - {{job: tests.integration.jobs:Record, with: {{journal: "{journal}", tag: d}}}}
"""
    )
    return path


async def test_a_chain_of_batches_across_two_workers_is_one_trace(
    cluster: Cluster, tmp_path: Path
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    # Given two traced workers printing their spans, two jobs at a time each
    console = {"OTEL_TRACES_EXPORTER": "console"}
    workers = [await cluster.start_worker("--concurrency", "2", "--otel", **console) for _ in "ab"]
    # When `arvel-flow run --otel` starts a chain of batches on them and follows it
    process, log = cluster.spawn(
        "run", [str(_pipeline(cluster, tmp_path / "traced.yaml")), "--otel"], console
    )
    try:
        code = process.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"run did not end:\n{log.read_text()}\n{cluster.context()}") from None
    assert code == 0, log.read_text()
    for worker in workers:  # their last spans are flushed as they stop
        worker.terminate()
        assert worker.wait(STOP_TIMEOUT) == 0, worker.output()
    found = {w.pid: read_spans(w.output()) for w in workers}
    found[process.pid] = read_spans(log.read_text())
    spans = [span for printed in found.values() for span in printed]
    # Then every span of every process is in one trace
    assert len({span.trace_id for span in spans}) == 1, spans
    # And both workers ran attempts
    assert all(any(s.name == RECORD for s in found[w.pid]) for w in workers)
    # And each span's parent is where the design puts it, whichever process emitted it
    parent = _parents(spans)
    assert Counter(parent[s.span_id] for s in spans if s.name == RECORD) == {
        "batch fan": 9,  # eight members and the then
        "batch nested": 1,
        "chain inner": 2,
    }
    assert parent[_one(spans, "chain inner").span_id] == "batch nested"
    assert {parent[_one(spans, f"batch {b}").span_id] for b in ("fan", "nested")} == {"chain root"}
    assert parent[_one(spans, "chain root").span_id] == "run traced"
    assert _one(spans, "run traced").parent_id is None
    # And the flaky job's two attempts: the first retried (an event), the second succeeded
    flaky = sorted(
        (s for s in spans if s.name == FLAKY), key=lambda s: s.attributes["arvel_flow.attempt"]
    )
    assert [s.attributes["arvel_flow.outcome"] for s in flaky] == ["retrying", "succeeded"]
    assert [s.events for s in flaky] == [["job.retrying"], []]
    assert {parent[s.span_id] for s in flaky} == {"chain root"}


def _parents(spans: list[PrintedSpan]) -> dict[str, str | None]:
    """Each span's parent's name (None: a root; a parent no process emitted fails)."""
    names = {span.span_id: span.name for span in spans}
    return {s.span_id: None if s.parent_id is None else names[s.parent_id] for s in spans}


def _one(spans: list[PrintedSpan], name: str) -> PrintedSpan:
    (found,) = [span for span in spans if span.name == name]
    return found
