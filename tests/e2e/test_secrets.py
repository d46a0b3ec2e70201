"""Secrets stay references: no store, output, event, log or failed record ever holds one.

The pipelines here take secrets from the environment: a password embedded in a DSN,
the same value in a normally named field, and a variable declared under ``secrets:``.
The job logs and prints them, and fails quoting them raw and encoded. Every channel
(output, ``--events``, ``failed``, ``status``, ``runs``) and the raw bytes of the store
are searched for each value in each encoding; the job itself notes a hash of what it
received, outside the store, to prove that resumes and retries get the real values.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.e2e.harness import Cli, Result, read_lines, started_run_id, wait_for
from tests.e2e.jobs import ApiCall, fingerprint
from tests.e2e.leaks import DSN, PASSWORD, PEPPER, assert_no_secret, leaky_step

pytestmark = pytest.mark.slow


def assert_channels_clean(results: Iterable[Result], files: Iterable[Path]) -> None:
    for result in results:
        assert_no_secret(result.stdout + result.stderr, f"arvel-flow {' '.join(result.args)}")
    for file in files:
        if file.exists():
            assert_no_secret(file.read_bytes(), str(file))


@pytest.fixture
def secret_cli(cli: Cli) -> Cli:
    """The command with the secrets in its environment."""
    cli.env.update(DB_PASSWORD=PASSWORD, APP_PEPPER=PEPPER)
    return cli


def leaky_pipeline(pipeline: Callable[[str, str], Path], tmp_path: Path) -> Path:
    """One job taking the secrets, retried once, failing until its marker exists."""
    return pipeline(
        "leaky",
        f"""
version: 1
name: leaky
secrets: [APP_PEPPER]
pipeline:
  id: leak
  retry: {{max_retries: 1, backoff: 0.01}}
  {leaky_step(tmp_path, "  ")}
""",
    )


def store_files(store: str) -> list[Path]:
    path = Path(store.removeprefix("sqlite:"))
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def received(tmp_path: Path) -> list[str]:
    """The hashes of what each run of the job received."""
    return [line for line in read_lines(tmp_path / "journal") if line != "gate"]


REAL = fingerprint(DSN, PASSWORD, PEPPER)


def test_no_secret_reaches_any_output_event_record_or_store_and_a_retry_gets_the_real_ones(
    secret_cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a pipeline whose job takes secrets from the environment and fails quoting them
    file = leaky_pipeline(pipeline, tmp_path)
    events = tmp_path / "events.jsonl"

    # When it runs with plain output and an events file, then with JSON output
    plain = secret_cli(
        "run", str(file), "--store", store, "--output", "plain", "--events", str(events)
    )
    as_json = secret_cli("run", str(file), "--store", store, "--output", "json")

    # Then both runs failed, and the job received the real values on every attempt
    assert plain.code == 1, plain
    assert as_json.code == 1, as_json
    assert received(tmp_path) == [REAL] * 4
    # And what the error said is there, with the secrets masked
    assert 'ConnectionError: refused: raw=*** url=*** repr="***" b64=*** pepper=***' in plain.stdout
    assert "dsn=postgres://app:***@db/x" in plain.stdout
    # And no channel, nor the store's files, holds any form of a secret
    run_id = started_run_id(plain)
    listed = secret_cli("failed", "list", "--store", store, "--format", "json")
    records = listed.json()
    looks = [
        listed,
        secret_cli("failed", "list", "--store", store),
        *(secret_cli("failed", "show", r["id"], "--store", store) for r in records),
        *(
            secret_cli("failed", "show", r["id"], "--store", store, "--format", "json")
            for r in records
        ),
        secret_cli("status", run_id, "--store", store, "--format", "json"),
        secret_cli("status", run_id, "--store", store),
        secret_cli("runs", "--store", store),
        secret_cli("runs", "--store", store, "--format", "json"),
    ]
    assert all(look.code == 0 for look in looks), looks
    assert_channels_clean([plain, as_json, *looks], [events, *store_files(store)])
    # And the failed record shows the references the job was given, not values
    shown = looks[3 + len(records)].json()
    assert shown["payload"]["dsn"] == "postgres://app:${DB_PASSWORD}@db/x"
    assert shown["payload"]["pepper"] == "${APP_PEPPER}"

    # When the cause is gone and one failed job is retried
    (tmp_path / "marker").touch()
    retry = secret_cli("failed", "retry", records[0]["id"], "--store", store)

    # Then it ran with the real secrets, resolved from the environment, and succeeded
    assert retry.code == 0, retry
    assert retry.stdout.rstrip().endswith(": succeeded"), retry
    assert received(tmp_path)[-1] == REAL
    assert_channels_clean([retry], store_files(store))


def test_a_resumed_run_resolves_its_secrets_again(
    secret_cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run killed while the step before the secret one was running
    gate = tmp_path / "gate"
    file = pipeline(
        "gated",
        f"""
version: 1
name: gated
secrets: [APP_PEPPER]
pipeline:
  chain:
    - id: gate
      job: tests.e2e.jobs:PathGate
      with: {{journal: {json.dumps(str(tmp_path / "journal"))}, path: {json.dumps(str(gate))}}}
    - id: leak
      {leaky_step(tmp_path, "      ")}
""",
    )
    (tmp_path / "marker").touch()
    running = secret_cli.start("run", str(file), "--store", store, "--output", "plain")
    wait_for(lambda: "gate" in read_lines(tmp_path / "journal"), what="the gate job to start")
    wait_for(
        lambda: secret_cli("runs", "--store", store, "--format", "json").json() != [],
        what="the run to be recorded",
    )
    running.signal(signal.SIGKILL)
    killed = running.wait()
    run_id = started_run_id(killed.stdout)

    # When it is resumed (taking over from the killed process), its gate open
    gate.touch()
    resumed = secret_cli(
        "run", "--resume", run_id, "--store", store, "--output", "plain", "--force"
    )

    # Then the secret step ran with the real values, and nothing leaked
    assert resumed.code == 0, resumed
    assert received(tmp_path) == [REAL]
    assert_channels_clean([killed, resumed], store_files(store))


def test_a_job_whose_variable_is_not_set_fails_naming_it(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a secret variable that is not set where the job runs
    cli.env.update(APP_PEPPER=PEPPER)
    cli.env.pop("DB_PASSWORD", None)
    file = leaky_pipeline(pipeline, tmp_path)

    # When the pipeline runs
    result = cli("run", str(file), "--store", store, "--output", "plain")

    # Then the job failed at once, without an attempt, saying which variable is missing
    assert result.code == 1, result
    assert received(tmp_path) == []
    [record] = cli("failed", "list", "--store", store, "--format", "json").json()
    assert record["exception"] == "arvel_flow.errors.SecretError"
    assert "environment variable 'DB_PASSWORD' is not set in this process" in record["message"]
    assert record["attempts"] == 0


def test_a_secret_written_in_the_file_or_used_outside_parameters_is_invalid(
    cli: Cli, pipeline: Callable[[str, str], Path]
) -> None:
    # Given a file with a password written in clear, a URL holding one, and a secret as a name
    file = pipeline(
        "written",
        """
version: 1
name: written
pipeline:
  id: leak
  job: tests.e2e.jobs:Login
  queue_name: ${API_TOKEN:-q}
  with: {user: "redis://u:hunter2-pw@cache", password: hunter2-pw, dsn: x}
""",
    )

    # When it is validated
    result = cli("validate", str(file), "--no-strict")

    # Then each is an error at its position, and the password is not echoed
    assert result.code == 2, result
    assert (
        "7:15: error: pipeline.queue_name: a secret (API_TOKEN) cannot be used here"
        in result.stdout
    )
    assert "8:16: error: pipeline.with.user: this URL holds a password in clear" in result.stdout
    assert "pipeline.with.password: parameter 'password' is named like a secret" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_retrying_a_job_given_secrets_in_python_is_refused_and_keeps_the_record(
    cli: Cli, store: str, tmp_path: Path
) -> None:
    # Given a job dispatched from Python with a token field and a SecretStr, failed for good
    journal = tmp_path / "journal"
    token = "tok-python-given-1234"
    job = ApiCall(api_token=token, signing=SecretStr("sign-python-5678"), journal=str(journal))
    asyncio.run(_dispatch_once(store, job))
    [record] = cli("failed", "list", "--store", store, "--format", "json").json()

    # When it is retried
    result = cli("failed", "retry", record["id"], "--store", store)

    # Then the retry is refused with the reason, nothing ran, and the record is kept
    assert result.code == 1, result
    assert (
        f"{record['id']} (tests.e2e.jobs:ApiCall): not retried, the record is kept" in result.stdout
    )
    assert "parameter 'api_token' held a secret given in Python" in result.stdout
    assert read_lines(journal) == [f"ran {fingerprint(token)}"]
    assert [
        r["id"] for r in cli("failed", "list", "--store", store, "--format", "json").json()
    ] == [record["id"]]
    # And neither secret was stored
    for file in store_files(store):
        if file.exists():
            assert token.encode() not in file.read_bytes()
            assert b"sign-python-5678" not in file.read_bytes()


async def _dispatch_once(store: str, job: ApiCall) -> None:
    from arvel_flow.settings import QueueSettings
    from arvel_flow.wiring import make_queue

    queue = make_queue(QueueSettings(driver="sync", store=store))
    try:
        await queue.dispatch(job)
    finally:
        await queue.close()


def test_state_directory_and_database_are_private_whatever_the_umask(
    cli: Cli, tmp_path: Path
) -> None:
    # Given a umask that takes nothing away
    store_dir = tmp_path / "state" / "nested"
    previous = os.umask(0)
    try:
        # When a run creates its store
        result = cli(
            "run", "examples/quickstart.yaml", "--store", f"sqlite:{store_dir / 'state.db'}"
        )
    finally:
        os.umask(previous)

    # Then the directories it made are 0700 and every database file 0600
    assert result.code == 0, result
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == oct(0o700)
    assert oct(store_dir.stat().st_mode & 0o777) == oct(0o700)
    assert oct((store_dir / "state.db").stat().st_mode & 0o777) == oct(0o600)
