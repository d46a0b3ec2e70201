"""``run --resume`` of a failed run continues it: failed steps rerun, succeeded ones never."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, most_at_once, read_lines, started_run_id

pytestmark = pytest.mark.slow


def mark(log: Path, name: str) -> str:
    return f"{{job: tests.e2e.jobs:Mark, with: {{log: {json.dumps(str(log))}, name: {name}}}}}"


def gate(marker: Path) -> str:
    return f"{{job: tests.e2e.jobs:FailsUntil, with: {{marker: {json.dumps(str(marker))}}}}}"


def finished(log: Path) -> list[str]:
    """The names of the jobs that ran to their end, in order, one line per run."""
    return [line for line in read_lines(log) if not line.startswith("start ")]


def test_a_failed_chain_continues_from_its_failed_step(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a chain that failed at its second step, skipping the third
    log, marker = tmp_path / "journal", tmp_path / "marker"
    path = pipeline(
        "chain",
        f"""
version: 1
name: chain
defaults:
  retry: {{max_retries: 0}}
pipeline:
  id: steps
  chain:
    - {{id: first, {mark(log, "first")[1:-1]}}}
    - {{id: gate, {gate(marker)[1:-1]}}}
    - {{id: last, {mark(log, "last")[1:-1]}}}
  catch: {mark(log, "catch")}
  finally: {mark(log, "finally")}
""",
    )
    failed = cli("run", str(path), "--store", store)
    assert failed.code == 1, failed
    assert finished(log) == ["first", "catch", "finally"]
    run_id = started_run_id(failed)

    # When the cause is fixed and the run is continued
    marker.touch()
    continued = cli("run", "--resume", run_id, "--store", store)

    # Then the failed step and the skipped one run, nothing that ran runs again, and the
    # run ends succeeded (exit 0) with no failed job left to retry
    assert continued.code == 0, continued
    assert f"run {run_id} (chain) continued: the steps that did not succeed run again" in (
        continued.stdout
    )
    assert finished(log) == ["first", "catch", "finally", "last"]
    status = cli("status", run_id, "--store", store, "--format", "json").json()
    assert status["status"] == "succeeded"
    listed = cli("failed", "list", "--store", store, "--format", "json").json()
    assert listed == []


def test_a_failed_batch_continues_and_fires_then_once_and_catch_never_again(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a batch, one at a time, whose second member failed: the third was cancelled,
    # catch and finally fired
    log, marker = tmp_path / "journal", tmp_path / "marker"
    path = pipeline(
        "batch",
        f"""
version: 1
name: batch
defaults:
  retry: {{max_retries: 0}}
pipeline:
  chain:
    - id: members
      concurrency: 1
      batch:
        - {{id: one, {mark(log, "one")[1:-1]}}}
        - {{id: gate, {gate(marker)[1:-1]}}}
        - {{id: three, {mark(log, "three")[1:-1]}}}
      then: {mark(log, "then")}
      catch: {mark(log, "catch")}
      finally: {mark(log, "finally")}
    - {{id: after, {mark(log, "after")[1:-1]}}}
""",
    )
    failed = cli("run", str(path), "--store", store)
    assert failed.code == 1, failed
    assert finished(log) == ["one", "catch", "finally"]
    run_id = started_run_id(failed)

    # When it is continued twice: once still failing, once fixed
    again = cli("run", "--resume", run_id, "--store", store)
    marker.touch()
    continued = cli("run", "--resume", run_id, "--store", store)

    # Then the failing continuation fires no callback again; the fixed one runs the
    # failed and the cancelled members, `then` once, and the next step; `one`, `catch`
    # and `finally` ran once in the run's life
    assert again.code == 1, again
    assert continued.code == 0, continued
    assert finished(log) == ["one", "catch", "finally", "three", "then", "after"]


def test_a_continued_batch_runs_its_failed_members_within_its_concurrency(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a batch of six, two at a time, three failures allowed, that failed: four
    # members failed (the cause: a missing file), the last two were cancelled
    log, marker = tmp_path / "journal", tmp_path / "marker"
    at, cause = json.dumps(str(log)), json.dumps(str(marker))
    items = ", ".join(f"{{name: m{i}}}" for i in range(6))
    path = pipeline(
        "pairs",
        f"""
version: 1
name: pairs
pipeline:
  id: pairs
  concurrency: 2
  allow_failures: 3
  batch:
    - job: tests.e2e.jobs:Mark
      retry: {{max_retries: 0}}
      with: {{log: {at}, marker: {cause}, seconds: 0.2}}
      each: [{items}]
""",
    )
    failed = cli("run", str(path), "--store", store)
    assert failed.code == 1, failed
    assert read_lines(log) == []
    failed_members = cli("failed", "list", "--store", store, "--format", "json").json()
    assert len(failed_members) > 2

    # When the cause is fixed and the run continued
    marker.touch()
    continued = cli("run", "--resume", started_run_id(failed), "--store", store)

    # Then every member ran, and never more than two at once
    assert continued.code == 0, continued
    assert sorted(finished(log)) == [f"m{i}" for i in range(6)]
    assert most_at_once(read_lines(log)) == 2


def test_resuming_a_succeeded_run_runs_nothing(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run that succeeded
    log = tmp_path / "journal"
    path = pipeline(
        "done",
        f"""
version: 1
name: done
pipeline: {{id: only, {mark(log, "only")[1:-1]}}}
""",
    )
    done = cli("run", str(path), "--store", store)
    assert done.code == 0, done

    # When it is resumed
    resumed = cli("run", "--resume", started_run_id(done), "--store", store)

    # Then it ends succeeded and its job did not run again
    assert resumed.code == 0, resumed
    assert finished(log) == ["only"]


def test_failed_retry_of_a_runs_job_says_how_to_continue_the_run(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a chain that failed at its gate, skipping its last step
    log, marker = tmp_path / "journal", tmp_path / "marker"
    path = pipeline(
        "retried",
        f"""
version: 1
name: retried
defaults:
  retry: {{max_retries: 0}}
pipeline:
  chain:
    - {{id: gate, {gate(marker)[1:-1]}}}
    - {{id: last, {mark(log, "last")[1:-1]}}}
""",
    )
    failed = cli("run", str(path), "--store", store)
    run_id = started_run_id(failed)
    marker.touch()
    [record] = cli("failed", "list", "--store", store, "--format", "json").json()

    # When the failed job is retried alone, then the run is continued
    retried = cli("failed", "retry", record["id"], "--store", store)
    continued = cli("run", "--resume", run_id, "--store", store)

    # Then the retry says that it ran the job alone and how to continue the run; the
    # continuation runs the skipped step only (the retried one succeeded already)
    assert retried.code == 0, retried
    assert f"note: retried alone, outside run {run_id}, which stays failed: " in retried.stderr
    assert f"arvel-flow run --resume {run_id} --store {store} continues the run" in retried.stderr
    assert continued.code == 0, continued
    assert finished(log) == ["last"]
