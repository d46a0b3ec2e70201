"""Observers through the real command: ``observers:`` in the file, ``ARVEL_FLOW_OBSERVERS``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli

pytestmark = pytest.mark.slow

Pipeline = Callable[[str, str], Path]

TOKEN = "tok-very-secret-4711"

OBSERVED = """
version: 1
name: observed
observers:
  - tests.e2e.observers:EventFile
  - tests.e2e.observers:explode
pipeline:
  chain:
    - id: fetch
      job: tests.e2e.jobs:Chatty
      with: {rows: 3, token: "${API_TOKEN}"}
"""


def test_an_observer_in_the_file_gets_every_event_and_a_raising_one_changes_nothing(
    cli: Cli, pipeline: Pipeline, tmp_path: Path
) -> None:
    observed = tmp_path / "observed.jsonl"
    cli.env.update(API_TOKEN=TOKEN, OBSERVED=str(observed))
    # When a run's file names an observer that writes events and one that always raises
    file = str(pipeline("observed", OBSERVED))
    result = cli("run", file, "--store", "memory", "--output", "json")
    # Then the run succeeds as it would without them
    assert result.code == 0, result
    # And the writing observer received the same events as the JSON output, in order
    lines = observed.read_text(encoding="utf-8").splitlines()
    names = [json.loads(line)["event"] for line in lines]
    assert names == [event["event"] for event in result.events()], result
    assert names[0] == "run.started"
    assert names[-1] == "run.finished"
    assert "job.log" in names
    # And never a secret
    assert TOKEN not in observed.read_text(encoding="utf-8")
    # And the raising observer is told once, with its traceback, not once per event
    assert result.stderr.count("observer tests.e2e.observers:explode raised RuntimeError") == 1
    assert "Traceback" in result.stderr


def test_a_run_ends_as_it_would_while_its_observer_hangs_and_what_it_missed_is_said(
    cli: Cli, pipeline: Pipeline, tmp_path: Path
) -> None:
    observed = tmp_path / "observed.txt"
    cli.env.update(API_TOKEN=TOKEN, OBSERVED=str(observed))
    text = OBSERVED.replace(
        "  - tests.e2e.observers:EventFile\n  - tests.e2e.observers:explode",
        "  - tests.e2e.observers:stuck",
    )
    # When a run's observer blocks for ever on the first event it gets
    result = cli("run", str(pipeline("observed", text)), "--store", "memory", "--output", "json")
    # Then the run succeeds and ends, with every event of its output
    assert result.code == 0, result
    events = [event["event"] for event in result.events()]
    assert events[-1] == "run.finished"
    # And the observer held only the first; the others are counted as lost, in one line
    assert observed.read_text(encoding="utf-8").splitlines() == [events[0]]
    dropped = f"observer tests.e2e.observers:stuck: {len(events) - 1} event(s) dropped"
    assert result.stderr.count(dropped) == 1, result.stderr


def test_an_observer_outside_the_allowlist_is_refused_with_exit_2(
    cli: Cli, pipeline: Pipeline
) -> None:
    text = OBSERVED.replace("pipeline:", "queue:\n  allowed_modules: [tests.e2e.jobs]\npipeline:")
    # When a run under an allowlist names an observer outside it
    result = cli("run", str(pipeline("observed", text)), "--store", "memory")
    # Then it refuses with the reason and runs nothing
    assert result.code == 2, result
    assert "cannot use 'tests.e2e.observers:EventFile': not under the allowed modules" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_validate_strict_reports_an_unusable_observer_at_its_line_and_column(
    cli: Cli, pipeline: Pipeline
) -> None:
    text = OBSERVED.replace(
        "  - tests.e2e.observers:explode", "  - tests.e2e.observers:missing\n  - tests.e2e.jobs"
    )
    flow = pipeline("observed", text)
    # When the file is validated with its imports
    result = cli("validate", "--strict", str(flow))
    # Then each unusable observer is named where it is written, and nothing runs
    assert result.code == 2, result
    output = result.stdout + result.stderr
    assert f"{flow}:6:5: error: observers[1]: cannot use 'tests.e2e.observers:missing'" in output
    assert f"{flow}:7:5: error: observers[2]: cannot use 'tests.e2e.jobs'" in output
    assert "Traceback" not in output
