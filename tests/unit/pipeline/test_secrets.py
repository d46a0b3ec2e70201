"""Secrets in pipeline files: references in parameters, errors everywhere else."""

from __future__ import annotations

from typing import Any

import pytest

from arvel_flow.compiler import compile_plan, load_pipeline
from arvel_flow.errors import ConfigError
from arvel_flow.pipeline.interpolate import interpolate
from arvel_flow.pipeline.source import parse_document
from arvel_flow.queue.plan_json import plan_to_dict
from arvel_flow.secrets import SecretRef

JOBS = "tests.fixtures.jobs_for_spec"
ENV = {"DB_PASSWORD": "pw-1234", "PEPPER": "pepper-5678", "REGION": "eu", "PORT": "6543"}


def resolved(text: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    data, problems, _ = interpolate(parse_document(text).data, env=ENV if env is None else env)
    assert problems == []
    return data


def messages(text: str, *, strict: bool = True, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_pipeline(text, strict=strict, env=ENV if env is None else env)
    return [f"{i.line}:{i.column}: {i.path}: {i.message}" for i in raised.value.issues]


def test_a_secret_variable_becomes_a_reference_and_others_their_value() -> None:
    data = resolved(
        "secrets: [PEPPER]\n"
        "a: 'pg://app:${DB_PASSWORD}@db/$${x}'\nb: ${PEPPER}\nc: ${REGION}\nd: ${PORT_TOKEN:-8}\n"
    )
    assert data["a"] == SecretRef("pg://app:${DB_PASSWORD}@db/$${x}")
    assert data["b"] == SecretRef("${PEPPER}", plain=True)
    assert data["c"] == "eu"
    assert data["d"] == SecretRef("${PORT_TOKEN:-8}", plain=True)
    assert "pw-1234" not in repr(data)
    assert "pepper-5678" not in repr(data)


def test_a_variable_holding_a_url_password_is_secret_whatever_its_name() -> None:
    data = resolved("a: ${DATABASE_URL}\n", {"DATABASE_URL": "pg://app:pw@db/x"})
    assert data["a"] == SecretRef("${DATABASE_URL}", plain=True)


def test_vars_carry_references_whole_and_embedded() -> None:
    data = resolved(
        "vars: {pw: '${DB_PASSWORD}', cost: '5$'}\na: '${vars.pw}'\nb: 'x-${vars.cost}${vars.pw}'\n"
    )
    assert data["a"] == SecretRef("${DB_PASSWORD}")
    assert data["b"] == SecretRef("x-5$$${DB_PASSWORD}")


def test_references_reach_the_plan_and_values_never_do() -> None:
    # Given a job whose parameters take a secret embedded, whole and in a fan-out
    text = f"""
version: 1
name: refs
pipeline:
  batch:
    - job: {JOBS}:Connect
      with: {{url: "pg://app:${{DB_PASSWORD}}@db/x", port: "${{PORT}}"}}
    - job: {JOBS}:Connect
      with: {{port: 1}}
      each: [{{url: "${{DB_PASSWORD}}"}}]
"""
    # When it is loaded strictly and compiled into the plan a run stores
    plan = plan_to_dict(compile_plan(load_pipeline(text, env=ENV)))
    # Then the plan holds the references, not the value
    assert "pw-1234" not in repr(plan)
    assert "pg://app:${DB_PASSWORD}@db/x" in repr(plan)


def test_a_reference_is_type_checked_with_its_value_and_skipped_when_unset() -> None:
    text = f"""
version: 1
name: typed
pipeline:
  job: {JOBS}:Connect
  with:
    url: x
    port: ${{PORT_TOKEN}}
"""
    problems = messages(text, env={"PORT_TOKEN": "not-a-number"})
    assert problems == [
        "8:11: pipeline.with.port: Input should be a valid integer, unable to parse string "
        "as an integer (parameter 'port')"
    ]
    assert load_pipeline(text, env={}).pipeline is not None  # unset: left to the worker


def test_a_secret_outside_parameters_is_an_error_at_its_position() -> None:
    text = f"""
version: 1
name: misplaced
defaults:
  queue_name: ${{API_TOKEN:-q}}
  middleware:
    - rate_limited: {{key: "k-${{DB_PASSWORD}}", max_attempts: 1, decay_seconds: 1}}
pipeline:
  id: one
  job: {JOBS}:Connect
  with: {{url: "${{DB_PASSWORD}}"}}
  middleware:
    - use: {JOBS}:Audit
      with: {{level: "${{DB_PASSWORD}}"}}
"""
    problems = messages(text, strict=False)
    assert [p.split(": a secret")[0] for p in problems] == [
        "5:15: defaults.queue_name",
        "7:27: defaults.middleware[0].rate_limited.key",
    ]
    assert all("(API_TOKEN)" in problems[0] or "(DB_PASSWORD)" in p for p in problems)


def test_secrets_written_in_the_file_are_errors() -> None:
    text = f"""
version: 1
name: written
jobs:
  conn:
    class: {JOBS}:Connect
    with: {{url: "pg://app:pw-in-clear@db/x"}}
pipeline:
  job: conn
  with: {{webhook: https://hooks/abc}}
  matrix: {{api_token: [a1, b2]}}
"""
    problems = [p for p in messages(text) if "unknown parameter" not in p]
    assert [p.split(": ")[0:2] for p in problems] == [
        ["7:17", "jobs.conn.with.url"],
        ["10:19", "pipeline.with.webhook"],
        ["11:24", "pipeline.matrix.api_token[0]"],
        ["11:28", "pipeline.matrix.api_token[1]"],
    ]
    assert "this URL holds a password in clear" in problems[0]
    assert "is a secret of tests.fixtures.jobs_for_spec:Connect (a SecretStr)" in problems[1]
    assert "parameter 'api_token' is named like a secret" in problems[2]
    assert not any("pw-in-clear" in p for p in problems)


def test_a_key_may_not_read_a_secret_field() -> None:
    text = f"""
version: 1
name: keyed
pipeline:
  job: {JOBS}:Connect
  unique_for: 60
  unique_id: "conn-{{webhook}}"
  with: {{url: x, webhook: "${{DB_PASSWORD}}"}}
"""
    [problem] = messages(text)
    assert "key 'conn-{webhook}' reads '{webhook}', a secret" in problem


def test_secrets_must_name_environment_variables() -> None:
    text = "version: 1\nname: bad\nsecrets: [OK_NAME, 'not a name']\npipeline: {job: x.y:Z}\n"
    [problem] = messages(text, strict=False)
    assert problem.startswith("3:20: secrets[1]: String should match pattern")


def test_queue_url_and_store_get_the_value_itself() -> None:
    data = resolved(
        "vars: {url: 'redis://:${REDIS_PASSWORD}@cache/0'}\n"
        "queue: {url: '${vars.url}', store: 'redis://:${REDIS_PASSWORD}@cache/1'}\n",
        {"REDIS_PASSWORD": "rpw-1234"},
    )
    assert data["queue"] == {
        "url": "redis://:rpw-1234@cache/0",
        "store": "redis://:rpw-1234@cache/1",
    }
