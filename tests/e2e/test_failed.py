"""``failed list|show|retry|forget|flush`` on the failed jobs of real runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cli, read_lines

pytestmark = pytest.mark.slow


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file whose absence makes `FailsUntil` fail."""
    return tmp_path / "marker"


@pytest.fixture
def failing(pipeline: Callable[[str, str], Path], marker: Path) -> Path:
    """A pipeline of two jobs that fail, without retries, until the marker exists."""
    at = json.dumps(str(marker))
    return pipeline(
        "failing",
        f"""
version: 1
name: failing
defaults:
  retry: {{max_retries: 0}}
pipeline:
  id: both
  batch:
    - {{id: first, job: tests.e2e.jobs:FailsUntil, with: {{marker: {at}}}}}
    - {{id: second, job: tests.e2e.jobs:FailsUntil, with: {{marker: {at}}}}}
  allow_failures: true
""",
    )


def failed_jobs(cli: Cli, store: str) -> list[dict[str, Any]]:
    result = cli("failed", "list", "--store", store, "--format", "json")
    assert result.code == 0, result
    documents: list[dict[str, Any]] = result.json()
    return documents


def test_failed_list_and_show_describe_each_failure(cli: Cli, failing: Path, store: str) -> None:
    # Given a run whose two jobs failed
    assert cli("run", str(failing), "--store", store).code == 0

    # When the failed jobs are listed and one is shown
    listed = failed_jobs(cli, store)
    shown = cli("failed", "show", listed[0]["id"], "--store", store, "--format", "json").json()
    text = cli("failed", "show", listed[0]["id"], "--store", store)

    # Then both are there with their step, class and error; show adds the traceback
    assert sorted(record["step"] for record in listed) == ["first", "second"]
    assert {record["job"] for record in listed} == {"tests.e2e.jobs:FailsUntil"}
    assert {record["exception"] for record in listed} == {"RuntimeError"}
    assert "traceback" not in listed[0]
    assert shown["id"] == listed[0]["id"]
    assert shown["traceback"].rstrip().endswith("RuntimeError: marker is not there yet")
    assert shown["attempts"] == 1
    assert "RuntimeError: marker is not there yet" in text.stdout


def test_a_retried_job_that_now_succeeds_leaves_the_store(
    cli: Cli, failing: Path, store: str, marker: Path
) -> None:
    # Given two failed jobs, and the cause of their failure gone
    assert cli("run", str(failing), "--store", store).code == 0
    first = next(r for r in failed_jobs(cli, store) if r["step"] == "first")
    marker.touch()

    # When one of them is retried
    result = cli("failed", "retry", first["id"], "--store", store)

    # Then it is reported as succeeded and only the other one is left
    assert result.code == 0, result
    assert result.stdout.strip() == f"{first['id']} first (tests.e2e.jobs:FailsUntil): succeeded"
    assert [r["step"] for r in failed_jobs(cli, store)] == ["second"]


def test_a_retried_job_that_fails_again_is_recorded_anew(
    cli: Cli, failing: Path, store: str
) -> None:
    # Given a failed job whose cause is still there
    assert cli("run", str(failing), "--store", store).code == 0
    first = next(r for r in failed_jobs(cli, store) if r["step"] == "first")

    # When it is retried
    result = cli("failed", "retry", first["id"], "--store", store)

    # Then the command fails, saying why, and the job is in the store once, as a new record
    assert result.code == 1, result
    assert "failed again: RuntimeError: marker is not there yet" in result.stdout
    records = failed_jobs(cli, store)
    assert sorted(r["step"] for r in records) == ["first", "second"]
    assert first["id"] not in {r["id"] for r in records}


def test_a_job_retried_twice_still_gets_its_real_secret(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, marker: Path
) -> None:
    # Given a failed job with a password from the environment (a reference in the store)
    password = "open-sesame"
    cli.env["UNLOCK_PASSWORD"] = password
    file = pipeline(
        "unlock",
        f"""
version: 1
name: unlock
pipeline:
  id: unlock
  job: tests.e2e.jobs:Unlock
  retry: {{max_retries: 0}}
  with:
    marker: {json.dumps(str(marker))}
    password: ${{UNLOCK_PASSWORD}}
    password_sha256: {hashlib.sha256(password.encode()).hexdigest()}
""",
    )
    assert cli("run", str(file), "--store", store).code == 1

    # When it is retried, fails again, and is retried once more after the fix
    again = cli("failed", "retry", failed_jobs(cli, store)[0]["id"], "--store", store)
    marker.touch()
    last = cli("failed", "retry", failed_jobs(cli, store)[0]["id"], "--store", store)

    # Then each retry ran with the real password, not the masked one
    assert "failed again: RuntimeError: marker is not there yet" in again.stdout, again
    assert last.code == 0, last
    assert last.stdout.rstrip().endswith("unlock (tests.e2e.jobs:Unlock): succeeded")
    assert failed_jobs(cli, store) == []


def test_retry_all_runs_every_failed_job(cli: Cli, failing: Path, store: str, marker: Path) -> None:
    # Given two failed jobs that would now succeed
    assert cli("run", str(failing), "--store", store).code == 0
    marker.touch()

    # When all are retried
    result = cli("failed", "retry", "--all", "--store", store)

    # Then both succeeded and the store is empty
    assert result.code == 0, result
    assert result.stdout.count(": succeeded") == 2
    assert failed_jobs(cli, store) == []


def test_concurrent_retries_run_each_failed_job_once_and_status_counts_them_done(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path, marker: Path
) -> None:
    # Given a run whose 20 jobs failed, and the cause of their failure gone
    log = tmp_path / "log"
    names = [f"j{i:02d}" for i in range(20)]
    items = ", ".join(f"{{name: {name}}}" for name in names)
    file = pipeline(
        "twenty",
        f"""
version: 1
name: twenty
defaults:
  retry: {{max_retries: 0}}
pipeline:
  id: all
  batch:
    - job: tests.e2e.jobs:MarkWhenReady
      with: {{marker: {json.dumps(str(marker))}, log: {json.dumps(str(log))}, seconds: 0.25}}
      each: [{items}]
  allow_failures: true
""",
    )
    ran = cli("run", str(file), "--store", store, "--output", "json")
    assert ran.code == 0, ran
    run_id = ran.events()[0]["run_id"]
    assert len(failed_jobs(cli, store)) == 20
    marker.touch()

    # When two `failed retry --all` start at once
    retries = [cli.start("failed", "retry", "--all", "--store", store) for _ in range(2)]
    results = [retry.wait() for retry in retries]

    # Then both end well, each job ran exactly once in all, and none is left failed
    assert [result.code for result in results] == [0, 0], results
    assert sorted(read_lines(log)) == names
    succeeded = sum(result.stdout.count(": succeeded") for result in results)
    skipped = sum(result.stdout.count(": skipped") for result in results)
    assert succeeded == 20, results
    assert skipped >= 1, f"the two retries did not overlap: {results}"
    assert failed_jobs(cli, store) == []
    # And the run's status no longer counts them as failed
    status = cli("status", run_id, "--store", store, "--format", "json").json()
    assert status["failed"] == {}
    assert len(status["succeeded"]) == 20


def test_forget_deletes_one_and_flush_deletes_the_rest(cli: Cli, failing: Path, store: str) -> None:
    # Given four failed jobs from two runs
    assert cli("run", str(failing), "--store", store).code == 0
    assert cli("run", str(failing), "--store", store).code == 0
    forgotten = failed_jobs(cli, store)[0]["id"]

    # When one is forgotten, then the rest flushed
    forget = cli("failed", "forget", forgotten, "--store", store)
    after_forget = failed_jobs(cli, store)
    flush = cli("failed", "flush", "--store", store)

    # Then each command says what it did and the store ends empty
    assert forget.code == 0, forget
    assert forget.stdout.strip() == f"forgot {forgotten}"
    assert len(after_forget) == 3
    assert forgotten not in {r["id"] for r in after_forget}
    assert flush.stdout.strip() == "flushed 3 failed job(s)"
    assert failed_jobs(cli, store) == []


def test_an_unknown_failed_id_is_a_usage_error(cli: Cli, store: str) -> None:
    # When a failed job that does not exist is shown, retried or forgotten
    results = [
        cli("failed", command, "nope", "--store", store) for command in ("show", "retry", "forget")
    ]

    # Then each exits 2 with a message and no traceback
    for result in results:
        assert result.code == 2, result
        assert "no failed job 'nope' in the store" in result.stderr
        assert "Traceback" not in result.stderr
