"""Output that tells the truth (#10 §5): counts by outcome, durations for people,
releases counted, retries that say when they come, and Ctrl-C acknowledged at once.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, read_lines, started_run_id, wait_for

pytestmark = pytest.mark.slow

Pipeline = Callable[[str, str], Path]


def allowed_failure_pipeline(pipeline: Pipeline, tmp_path: Path) -> Path:
    """A batch of three jobs that succeed and one that fails, with one failure allowed."""
    touched, never = (json.dumps(str(tmp_path / name)) for name in ("touched", "never"))
    return pipeline(
        "allowed",
        f"""
version: 1
name: allowed
pipeline:
  batch:
    - job: tests.e2e.jobs:Touch
      with: {{path: {touched}}}
      each: [{{}}, {{}}, {{}}]
    - job: tests.e2e.jobs:FailsUntil
      with: {{marker: {never}}}
      retry: {{max_retries: 0}}
  allow_failures: 1
""",
    )


def test_a_run_with_allowed_failures_counts_them_apart_from_successes(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given a batch of 4 jobs, one of which fails within the batch's allowance
    file = allowed_failure_pipeline(pipeline, tmp_path)

    # When it runs
    result = cli("run", str(file), "--store", store)

    # Then it succeeds, and the last line counts the failure as such, not as a success
    assert result.code == 0, result
    run_id = started_run_id(result)
    last = result.stdout.splitlines()[-1]
    assert last == f"run {run_id} succeeded: 3 succeeded, 1 failed (allowed) of 4 jobs"
    # And `status --format json` has the same counts
    document = cli("status", run_id, "--store", store, "--format", "json").json()
    assert document["counts"] == {
        "succeeded": 3,
        "failed": 1,
        "failed_allowed": 1,
        "skipped": 0,
        "cancelled": 0,
        "duplicates": 0,
        "pending": 0,
        "total": 4,
    }


def test_run_finished_event_carries_the_counts(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given the same batch, run with JSON output
    file = allowed_failure_pipeline(pipeline, tmp_path)
    result = cli("run", str(file), "--store", store, "--output", "json")

    # Then the closing event counts each outcome
    assert result.code == 0, result
    last = result.events()[-1]
    assert last["event"] == "run.finished"
    assert last["status"] == "succeeded"
    assert last["counts"]["succeeded"] == 3
    assert last["counts"]["failed"] == last["counts"]["failed_allowed"] == 1


def test_a_failed_run_does_not_say_all_its_jobs_finished(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given a chain whose first job fails for good
    touched, never = (json.dumps(str(tmp_path / name)) for name in ("touched", "never"))
    file = pipeline(
        "fails",
        f"""
version: 1
name: fails
pipeline:
  chain:
    - job: tests.e2e.jobs:FailsUntil
      with: {{marker: {never}}}
      retry: {{max_retries: 0}}
    - job: tests.e2e.jobs:Touch
      with: {{path: {touched}}}
    - job: tests.e2e.jobs:Touch
      with: {{path: {touched}}}
""",
    )

    # When it runs
    result = cli("run", str(file), "--store", store)

    # Then the last line says one failed and two were skipped
    assert result.code == 1, result
    run_id = started_run_id(result)
    assert result.stdout.splitlines()[-1] == f"run {run_id} failed: 1 failed, 2 skipped of 3 jobs"


def test_releases_are_counted_in_a_few_lines_with_durations_for_people(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given 30 jobs that each put themselves back once, for 0.2123 s
    items = ", ".join(f"{{marker: {json.dumps(str(tmp_path / f'm{i}'))}}}" for i in range(30))
    file = pipeline(
        "releases",
        f"""
version: 1
name: releases
pipeline:
  job: tests.e2e.jobs:ReleaseOnce
  with: {{delay: 0.2123}}
  each: [{items}]
""",
    )

    # When it runs
    result = cli("run", str(file), "--store", store)

    # Then the releases are a few lines that count them, not a line each
    assert result.code == 0, result
    released = [line for line in result.stdout.splitlines() if " job.released " in line]
    assert 1 <= len(released) < 10, result.stdout
    said = [re.search(r"job\.released (\d+) times? \(busy: \1\)", line) for line in released]
    assert sum(int(match[1]) for match in said if match) == 30, result.stdout
    # And no duration is printed with more than one decimal
    assert not re.search(r"\d\.\d{2,}s", result.stdout), result.stdout


def test_a_retry_says_when_it_comes_and_which_attempt_it_is(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given a job that fails for good, with 2 retries 1 s apart
    marker = json.dumps(str(tmp_path / "never"))
    file = pipeline(
        "retries",
        f"""
version: 1
name: retries
pipeline:
  job: tests.e2e.jobs:FailsUntil
  with: {{marker: {marker}}}
  retry: {{max_retries: 2, backoff: 1}}
""",
    )

    # When it runs
    result = cli("run", str(file), "--store", store)

    # Then each wait is said, with the attempt that follows it
    assert result.code == 1, result
    assert "retrying in 1s (attempt 2 of 3)" in result.stdout, result.stdout
    assert "retrying in 1s (attempt 3 of 3)" in result.stdout, result.stdout


def gate_pipeline(pipeline: Pipeline, tmp_path: Path) -> Path:
    """Two jobs that wait for the file ``gate`` in ``tmp_path``, both running at once."""
    log, gate = (json.dumps(str(tmp_path / name)) for name in ("log", "gate"))
    return pipeline(
        "gates",
        f"""
version: 1
name: gates
queue: {{concurrency: 2}}
pipeline:
  job: tests.e2e.jobs:Gate
  with: {{log: {log}, gate: {gate}}}
  each: [{{name: a}}, {{name: b}}, {{name: c}}]
""",
    )


def test_the_first_ctrl_c_is_acknowledged_while_jobs_still_run(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given a run with two jobs running, waiting for a gate
    running = cli.start("run", str(gate_pipeline(pipeline, tmp_path)), "--store", store)
    log = tmp_path / "log"
    wait_for(lambda: len(read_lines(log)) == 2, what="two jobs to start")

    # When Ctrl-C is pressed
    running.signal(signal.SIGINT)

    # Then the command says at once what it waits for, while the jobs still run
    expected = "stopping: waiting for 2 running jobs (Ctrl-C again to cancel them)"
    wait_for(lambda: expected in running.stdout, timeout=5, what=f"{expected}: {running.stdout}")
    (tmp_path / "gate").touch()
    interrupted = running.wait()
    assert interrupted.code == 130, interrupted


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_json_output_ends_with_a_closing_event_when_interrupted(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path, signum: signal.Signals
) -> None:
    # Given a run with JSON output, two jobs running
    file = gate_pipeline(pipeline, tmp_path)
    running = cli.start("run", str(file), "--store", store, "--output", "json")
    wait_for(lambda: len(read_lines(tmp_path / "log")) == 2, what="two jobs to start")

    # When it is interrupted and the running jobs end
    running.signal(signum)
    wait_for(lambda: '"run.stopping"' in running.stdout, timeout=5, what="run.stopping")
    (tmp_path / "gate").touch()
    interrupted = running.wait()

    # Then every line is an event, the last one closing the run with its counts
    assert interrupted.code == 130, interrupted
    events = interrupted.events()
    assert [e["event"] for e in events if e["event"].startswith("run.")] == [
        "run.started",
        "run.stopping",
        "run.interrupted",
    ]
    last = events[-1]
    assert last["event"] == "run.interrupted"
    assert last["counts"]["succeeded"] == 2
    assert last["counts"]["pending"] == 1


def test_a_resumed_run_shows_progress_from_what_was_already_done(
    cli: Cli, pipeline: Pipeline, store: str, tmp_path: Path
) -> None:
    # Given a fan-out of 30 jobs interrupted once a few are done
    log = json.dumps(str(tmp_path / "log"))
    items = ", ".join(f"{{name: j{i:02d}}}" for i in range(30))
    file = pipeline(
        "slow",
        f"""
version: 1
name: slow
queue: {{concurrency: 2}}
pipeline:
  job: tests.e2e.jobs:Mark
  with: {{log: {log}, seconds: 0.1}}
  each: [{items}]
""",
    )
    running = cli.start("run", str(file), "--store", store)
    wait_for(lambda: len(read_lines(tmp_path / "log")) >= 8, what="4 jobs to finish")
    running.signal(signal.SIGINT)
    interrupted = running.wait()
    assert interrupted.code == 130, interrupted

    # When it is resumed in the live view
    resumed = cli(
        "run", "--resume", started_run_id(interrupted), "--store", store, "--output", "rich"
    )

    # Then the fan-out counts the jobs done before the resume too
    assert resumed.code == 0, resumed
    assert "✔ 30" in resumed.stdout, resumed.stdout
