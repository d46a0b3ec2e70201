"""``--dry-run`` executes nothing; secrets never reach output, events or the failed store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, started_run_id

pytestmark = pytest.mark.slow

PASSWORD = "hunter2-correct-horse"
DSN_SECRET = "s3cr3t-dsn-pa55"


def test_a_dry_run_executes_nothing_and_lists_what_would_run(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a pipeline whose jobs leave a marker file when they run
    marker = tmp_path / "marker"
    file = pipeline(
        "touch",
        f"""
version: 1
name: touch
pipeline:
  chain:
    - id: first
      job: tests.e2e.jobs:Touch
      with: {{path: {json.dumps(str(marker))}}}
    - id: many
      batch:
        - job: tests.e2e.jobs:Touch
          each: [{{path: {json.dumps(str(marker))}}}, {{path: {json.dumps(str(marker))}}}]
""",
    )

    # When it is run with --dry-run
    result = cli("run", str(file), "--store", store, "--dry-run")

    # Then nothing ran, no run was recorded, and the jobs that would run are listed
    assert result.code == 0, result
    assert not marker.exists()
    assert "nothing was executed; it would run 3 job(s)" in result.stdout
    assert "3 x tests.e2e.jobs:Touch" in result.stdout
    assert "first tests.e2e.jobs:Touch" in result.stdout
    assert cli("runs", "--store", store, "--format", "json").json() == []


def login_pipeline(pipeline: Callable[[str, str], Path], cli: Cli) -> Path:
    """One job with a password field and a `SecretStr`, refused on every attempt.

    The secrets come from the environment: a secret may not be written in the file.
    """
    cli.env.update(LOGIN_PASSWORD=PASSWORD, LOGIN_DSN_PASSWORD=DSN_SECRET)
    return pipeline(
        "login",
        """
version: 1
name: login
pipeline:
  id: login
  job: tests.e2e.jobs:Login
  with: {user: ada, password: "${LOGIN_PASSWORD}", dsn: "postgres://ada:${LOGIN_DSN_PASSWORD}@db/app"}
  retry: {max_retries: 1, backoff: 0.01}
""",
    )


def assert_no_secret(text: str, where: str) -> None:
    assert PASSWORD not in text, f"the password leaked into {where}"
    assert DSN_SECRET not in text, f"the SecretStr leaked into {where}"


@pytest.mark.parametrize("output", ["plain", "json"])
def test_secrets_appear_in_no_output_event_or_failed_record(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path, output: str
) -> None:
    # Given a job with secrets that fails after a retry, its events also going to a file
    events = tmp_path / "events.jsonl"

    # When it runs
    result = cli(
        "run",
        str(login_pipeline(pipeline, cli)),
        "--store",
        store,
        "--output",
        output,
        "--events",
        str(events),
    )

    # Then the run failed, and its output and events name the job but not the secrets
    assert result.code == 1, result
    assert "PermissionError: login refused for ada" in events.read_text(encoding="utf-8")
    assert_no_secret(result.stdout + result.stderr, "the output")
    assert_no_secret(events.read_text(encoding="utf-8"), "the events file")
    # And the failed-jobs store shows the payload with the references the job was given
    listed = cli("failed", "list", "--store", store, "--format", "json").json()
    assert [record["step"] for record in listed] == ["login"]
    shown = cli("failed", "show", listed[0]["id"], "--store", store, "--format", "json")
    assert shown.json()["payload"] == {
        "user": "ada",
        "password": "${LOGIN_PASSWORD}",
        "dsn": "postgres://ada:${LOGIN_DSN_PASSWORD}@db/app",
    }
    text = cli("failed", "show", listed[0]["id"], "--store", store)
    assert_no_secret(shown.stdout + text.stdout, "failed show")
    run_id = next(json.loads(line)["run_id"] for line in events.read_text().splitlines())
    status = cli("status", run_id, "--store", store, "--format", "json")
    assert_no_secret(status.stdout, "status")


def test_a_dry_run_shows_no_secret(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    # When a pipeline with secrets in `with` is dry-run
    result = cli("run", str(login_pipeline(pipeline, cli)), "--store", store, "--dry-run")

    # Then what would run is listed without the secrets
    assert result.code == 0, result
    assert "1 x tests.e2e.jobs:Login" in result.stdout
    assert_no_secret(result.stdout + result.stderr, "the dry run")


def test_status_and_runs_print_one_json_document(cli: Cli, store: str) -> None:
    # Given two finished runs in a store
    first = cli("run", "examples/quickstart.yaml", "--store", store)
    second = cli("run", "examples/quickstart.yaml", "--store", store)
    ids = [started_run_id(first), started_run_id(second)]

    # When runs and status are asked for JSON
    runs = cli("runs", "--store", store, "--format", "json").json()
    status = cli("status", ids[0], "--store", store, "--format", "json").json()

    # Then each is one document: the runs most recent first, the status with its steps
    assert [run["run_id"] for run in runs] == ids[::-1]
    assert all(run["status"] == "succeeded" for run in runs)
    assert status["run_id"] == ids[0]
    assert status["progress"] == {"finished": 2, "total": 2}
    assert status["succeeded"] == ["import", "report"]
