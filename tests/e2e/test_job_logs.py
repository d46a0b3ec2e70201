"""A job's log records, shown with time, step and job (#10 §5 job logs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli

pytestmark = pytest.mark.slow

Pipeline = Callable[[str, str], Path]

TOKEN = "tok-very-secret-4711"

CHATTY = """
version: 1
name: chatty
pipeline:
  chain:
    - id: fetch
      job: tests.e2e.jobs:Chatty
      with: {rows: 3, token: "${API_TOKEN}"}
"""


@pytest.fixture
def chatty(cli: Cli, pipeline: Pipeline) -> Path:
    """A one-step chain whose job logs an INFO line and a WARNING quoting its token."""
    cli.env["API_TOKEN"] = TOKEN
    return pipeline("chatty", CHATTY)


def test_plain_output_shows_a_jobs_log_lines_with_time_step_and_job(cli: Cli, chatty: Path) -> None:
    # When the pipeline runs without a terminal
    result = cli("run", str(chatty), "--store", "memory")
    # Then each log line of the job is shown with its time, step, job and level
    assert result.code == 0, result
    lines = [line for line in result.stdout.splitlines() if " job.log " in line]
    prefix = r"\d\d:\d\d:\d\d job\.log fetch tests\.e2e\.jobs:Chatty attempt=1"
    assert len(lines) == 2, result
    assert re.fullmatch(f"{prefix} INFO tests.e2e.chatty: fetched 3 rows", lines[0])
    assert re.fullmatch(
        rf"{prefix} WARNING tests.e2e.chatty: disk almost full \(token \*\*\*\)", lines[1]
    )
    # And the secret it quoted is shown nowhere
    assert TOKEN not in result.stdout + result.stderr


def test_json_output_has_job_log_events(cli: Cli, chatty: Path) -> None:
    # When the pipeline runs with --output json
    result = cli("run", str(chatty), "--store", "memory", "--output", "json")
    # Then its log lines are job.log events with SPEC §5's fields and level, logger, message
    assert result.code == 0, result
    said = [e for e in result.events() if e["event"] == "job.log"]
    assert [(e["step"], e["job"], e["attempt"], e["level"], e["message"]) for e in said] == [
        ("fetch", "tests.e2e.jobs:Chatty", 1, "INFO", "fetched 3 rows"),
        ("fetch", "tests.e2e.jobs:Chatty", 1, "WARNING", "disk almost full (token ***)"),
    ]
    assert all(e["logger"] == "tests.e2e.chatty" and e["run_id"] for e in said)
    assert TOKEN not in result.stdout + result.stderr


def test_log_level_warning_hides_info_lines(cli: Cli, chatty: Path) -> None:
    # When the pipeline runs with --log-level warning
    result = cli(
        "run", str(chatty), "--store", "memory", "--output", "json", "--log-level", "warning"
    )
    # Then only the WARNING line is said
    assert result.code == 0, result
    said = [e["level"] for e in result.events() if e["event"] == "job.log"]
    assert said == ["WARNING"]
