"""``run FILE --dry-run --fail SPEC`` through the real command: nothing runs or is written,
the exit code is the real run's, and no secret shows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli
from tests.e2e.test_dry_run_and_secrets import assert_no_secret, login_pipeline

pytestmark = pytest.mark.slow


def _touch_chain(pipeline: Callable[[str, str], Path], marker: Path) -> Path:
    return pipeline(
        "touch",
        f"""
version: 1
name: touch
pipeline:
  chain:
    - id: first
      job: tests.e2e.jobs:Touch
      with: {{path: {json.dumps(str(marker))}}}
      retry: {{max_retries: 2, backoff: 1h}}
    - id: second
      job: tests.e2e.jobs:Touch
      with: {{path: {json.dumps(str(marker))}}}
""",
    )


@pytest.mark.parametrize(("spec", "code"), [("first@1,2", 0), ("first", 1)])
def test_a_simulation_runs_no_job_writes_no_run_and_exits_as_the_real_run_would(
    cli: Cli,
    pipeline: Callable[[str, str], Path],
    store: str,
    tmp_path: Path,
    spec: str,
    code: int,
) -> None:
    # Given a chain of jobs that leave a marker file when they run
    marker = tmp_path / "marker"
    file = _touch_chain(pipeline, marker)
    # When a failure of the first step is simulated
    result = cli("run", str(file), "--store", store, "--dry-run", "--fail", spec)
    # Then two hours of backoff were simulated, nothing ran and no run was recorded
    assert result.code == code, result
    assert re.search(r"\+2h +first +attempt 3 ", result.stdout), result.stdout
    assert not marker.exists()
    assert not Path(store.removeprefix("sqlite:")).exists()


@pytest.mark.parametrize("output", ["plain", "json"])
def test_a_simulation_shows_no_secret(
    cli: Cli, pipeline: Callable[[str, str], Path], output: str
) -> None:
    # Given a job with secrets (in the environment), When its failure is simulated
    file = login_pipeline(pipeline, cli)
    result = cli("run", str(file), "--dry-run", "--fail", "login@1", "--output", output)
    # Then the run succeeds at the retry, and no secret shows
    assert result.code == 0, result
    assert_no_secret(result.stdout + result.stderr, "the simulation")


def test_a_simulation_needs_no_secret_set(cli: Cli, pipeline: Callable[[str, str], Path]) -> None:
    # Given the secrets the job reads are not set here, as on a developer's machine
    file = login_pipeline(pipeline, cli)
    for name in ("LOGIN_PASSWORD", "LOGIN_DSN_PASSWORD"):
        cli.env.pop(name)
    # When its failure is simulated, Then it runs, the unset variables as warnings
    result = cli("run", str(file), "--dry-run", "--fail", "login")
    assert result.code == 1, result
    assert "LOGIN_PASSWORD" in result.stderr
    assert "login  attempt 2 failed for good (SimulatedFailure)" in result.stdout
