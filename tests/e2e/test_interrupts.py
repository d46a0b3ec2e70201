"""Crashes and Ctrl-C: a run stopped either way resumes with ``run --resume RUN_ID``.

The pipelines here have jobs that note ``start NAME`` and then ``NAME`` in a log file,
so a test can tell which jobs ran, how often, and which were cut short.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, read_lines, started_run_id, wait_for

pytestmark = pytest.mark.slow

JOBS = 30
CONCURRENCY = 2
NAMES = [f"j{i:02d}" for i in range(JOBS)]
CALLBACKS = ("then", "finally", "after")


def batch_pipeline(
    pipeline: Callable[[str, str], Path], log: Path, *, jobs: int = JOBS, seconds: float = 0.1
) -> Path:
    """A chain: a batch of ``jobs`` slow jobs (with ``then`` and ``finally``), then one more."""
    at = json.dumps(str(log))
    items = ", ".join(f"{{name: j{i:02d}}}" for i in range(jobs))
    return pipeline(
        "batch",
        f"""
version: 1
name: slow-batch
queue: {{concurrency: {CONCURRENCY}}}
pipeline:
  chain:
    - id: work
      batch:
        - job: tests.e2e.jobs:Mark
          with: {{log: {at}, seconds: {seconds}}}
          each: [{items}]
      concurrency: {CONCURRENCY}
      then: {{job: tests.e2e.jobs:Mark, with: {{log: {at}, name: then}}}}
      finally: {{job: tests.e2e.jobs:Mark, with: {{log: {at}, name: finally}}}}
    - id: after
      job: tests.e2e.jobs:Mark
      with: {{log: {at}, name: after}}
""",
    )


def finished(log: Path) -> list[str]:
    """Names of the jobs that ran to the end, once per run."""
    return [line for line in read_lines(log) if not line.startswith("start ")]


def started(log: Path) -> list[str]:
    """Names of the jobs that began, once per run."""
    return [line.removeprefix("start ") for line in read_lines(log) if line.startswith("start ")]


def member_name(step: str) -> str:
    """``work.0[7]`` → ``j07``."""
    match = re.fullmatch(r"work\.0\[(\d+)\]", step)
    assert match is not None, step
    return f"j{int(match[1]):02d}"


def test_a_run_killed_with_sigkill_resumes_without_rerunning_recorded_jobs(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run of 30 jobs of 0.1 s, two at a time, killed with SIGKILL a few jobs in
    log = tmp_path / "log"
    running = cli.start("run", str(batch_pipeline(pipeline, log)), "--store", store)
    wait_for(lambda: len(finished(log)) >= 8, what="8 jobs to finish")
    running.process.kill()
    killed = running.wait()
    assert killed.code == -signal.SIGKILL
    run_id = started_run_id(killed)
    ran_before = set(finished(log))
    before = cli("status", run_id, "--store", store, "--format", "json").json()
    recorded = {member_name(step) for step in before["succeeded"]}
    assert before["status"] == "running"
    assert recorded, "the store recorded no finished job before the kill"
    assert before["progress"]["finished"] < before["progress"]["total"]

    # When it is resumed, taking over from the killed process (its lease is still live)
    resumed = cli("run", "--resume", run_id, "--store", store, "--force")

    # Then it finishes, every job has run, and the callbacks fired exactly once
    assert resumed.code == 0, resumed
    assert f"run {run_id} (slow-batch) resumed" in resumed.stdout
    runs = Counter(finished(log))
    assert set(NAMES) <= set(runs)
    assert [runs[name] for name in CALLBACKS] == [1, 1, 1]
    # And no job the store had recorded as finished ran again
    assert {name: runs[name] for name in recorded} == dict.fromkeys(recorded, 1)
    # And only jobs that finished in the last, uncommitted interval ran twice
    twice = {name for name, count in runs.items() if count > 1}
    assert twice <= ran_before - recorded
    assert len(twice) <= 2 * CONCURRENCY, twice
    after = cli("status", run_id, "--store", store, "--format", "json").json()
    assert after["status"] == "succeeded"
    assert after["progress"]["finished"] == after["progress"]["total"]


def test_ctrl_c_lets_running_jobs_finish_exits_130_and_the_run_resumes(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run of 30 slow jobs, a few of them done
    log = tmp_path / "log"
    running = cli.start("run", str(batch_pipeline(pipeline, log)), "--store", store)
    wait_for(lambda: len(finished(log)) >= 6, what="6 jobs to finish")

    # When Ctrl-C is pressed
    running.signal(signal.SIGINT)
    interrupted = running.wait()

    # Then the command exits 130, saying how to resume, and no job was cut short
    assert interrupted.code == 130, interrupted
    run_id = started_run_id(interrupted)
    assert f"can be resumed with arvel-flow run --resume {run_id} --store {store}" in (
        interrupted.stdout
    )
    assert sorted(started(log)) == sorted(finished(log))
    assert len(finished(log)) < JOBS
    status = cli("status", run_id, "--store", store, "--format", "json").json()
    assert status["status"] == "interrupted"
    # And the resume finishes the rest, each job and callback exactly once
    resumed = cli("run", "--resume", run_id, "--store", store)
    assert resumed.code == 0, resumed
    assert Counter(finished(log)) == Counter([*NAMES, *CALLBACKS])
    status = cli("status", run_id, "--store", store, "--format", "json").json()
    assert status["status"] == "succeeded"


def test_a_second_ctrl_c_cancels_running_jobs_and_leaves_them_unfinished(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run whose jobs take 30 s, two of them running
    log = tmp_path / "log"
    file = batch_pipeline(pipeline, log, jobs=3, seconds=30)
    running = cli.start("run", str(file), "--store", store)
    wait_for(lambda: len(started(log)) == CONCURRENCY, what="two jobs to start")

    # When Ctrl-C is pressed twice
    running.signal(signal.SIGINT)
    time.sleep(0.3)
    running.signal(signal.SIGINT)
    interrupted = running.wait(timeout=15)  # a hang guard: the jobs would take 30 s

    # Then the command exits 130, the jobs cancelled, not waited for (none finished),
    # without a traceback for the cancelled jobs
    assert interrupted.code == 130, interrupted
    assert "Traceback" not in interrupted.stderr, interrupted.stderr
    assert finished(log) == []
    # And the cancelled jobs are neither succeeded nor failed: a resume runs them
    status = cli("status", started_run_id(interrupted), "--store", store, "--format", "json")
    document = status.json()
    assert document["status"] == "interrupted"
    assert document["succeeded"] == []
    assert document["failed"] == {}
    assert {"work.0[0]", "work.0[1]", "work.0[2]"} <= set(document["pending"])


def test_resuming_a_finished_run_runs_nothing_again_and_notes_the_changed_file(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run that finished, and its file edited since
    log = tmp_path / "log"
    file = batch_pipeline(pipeline, log, jobs=2, seconds=0)
    first = cli("run", str(file), "--store", store)
    assert first.code == 0, first
    file.write_text(file.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")

    # When it is resumed
    resumed = cli("run", "--resume", started_run_id(first), "--store", store)

    # Then nothing runs again, and the command says the file changed
    assert resumed.code == 0, resumed
    assert "changed since this run started; resuming the plan it started with" in resumed.stderr
    assert Counter(finished(log)) == Counter(["j00", "j01", *CALLBACKS])
