"""Secrets given in Python run from the live job and are stored redacted; references resolve."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from arvel_flow.errors import LockError, SecretError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.events import EventBus
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.middleware import resolve_key
from arvel_flow.queue.plan import Matrix
from arvel_flow.queue.targets import JobRef, check_sendable
from arvel_flow.secrets import register_secret, secret_env
from tests.unit.queue.flow_harness import CrashingQueue, Harness
from tests.unit.queue.flow_jobs import (
    JOBS,
    DbConfig,
    Journal,
    NestedSecrets,
    Step,
    TokenUser,
)

pytestmark = pytest.mark.timeout(10)

TOKEN = "tok-given-in-python"


async def test_a_secret_given_in_python_runs_from_the_live_job_and_is_stored_redacted(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose job has a token field given in Python
    queue = harness.queue()
    # When it runs
    run_id = await Chain(TokenUser(name="t", api_token=TOKEN)).dispatch(queue, wait=False)
    assert isinstance(run_id, str)
    await harness.settle(queue)
    # Then the job got the real token, and the stored plan holds a redacted marker instead
    assert journal.seen["t"] == TOKEN
    stored = json.dumps(await queue.store.load_plan(run_id))
    assert TOKEN not in stored
    assert '{"$redacted": "api_token"}' in stored


async def test_a_resumed_job_that_held_a_python_secret_fails_saying_why(
    harness: Harness, journal: Journal
) -> None:
    # Given a run whose process died before its token job ran
    crashed = CrashingQueue(
        1, store=harness.make_store(), clock=harness.clock, events=EventBus(harness.events.append)
    )
    harness.queues.append(crashed)
    chain = Chain(Step(name="a"), TokenUser(name="t", api_token=TOKEN))
    run_id = await chain.dispatch(crashed, wait=False)
    assert isinstance(run_id, str)
    await harness.clock.sleep(crashed.owner_lease)  # a dead process renews no lease
    # When it is resumed in another process, which has only the stored plan
    fresh = harness.queue()
    await fresh.resume(run_id)
    result = await fresh.wait(run_id)
    # Then the job was not run with a placeholder: it failed, naming the parameter
    assert journal.runs_of("t") == 0
    assert result.status == "failed"
    [record] = await fresh.store.list_failed()
    assert record.exception == "arvel_flow.errors.SecretError"
    assert "parameter 'api_token' held a secret given in Python" in record.message
    assert TOKEN not in json.dumps(record.payload)


async def test_a_reference_given_in_python_resolves_where_the_job_runs(
    harness: Harness, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose token is a reference to an environment variable
    monkeypatch.setenv("UNIT_API_TOKEN", "tok-from-the-env")
    ref = JobRef(f"{JOBS}:TokenUser", {"name": "r", "api_token": secret_env("UNIT_API_TOKEN")})
    # When it runs
    await harness.run(ref)
    # Then it got the value of the variable
    assert journal.seen["r"] == "tok-from-the-env"


def test_sending_to_workers_refuses_python_secrets_wherever_they_are() -> None:
    nested = NestedSecrets(db=DbConfig(host="h", dsn=SecretStr("pg://u:p@h/d")), keys=[])
    with pytest.raises(SecretError, match=r"'db\.dsn'"):
        check_sendable([JobRef.of(nested)])
    with pytest.raises(SecretError, match="'password'"):
        check_sendable([JobRef.of(Step(name="x"))], [{"password": "hunter2"}])
    with pytest.raises(SecretError, match="'key'"):
        check_sendable([], Matrix({"key": [SecretStr("one-secret")]}))
    check_sendable(
        [JobRef(f"{JOBS}:TokenUser", {"api_token": secret_env("X")})],
        FanOut(Step(name="x"), [{"name": "ok"}]).items,
    )


async def test_fan_out_items_given_secrets_in_python_are_stored_redacted(
    harness: Harness, journal: Journal
) -> None:
    # Given a fan-out whose items carry tokens given in Python
    queue = harness.queue()
    items = [{"name": f"f{i}", "api_token": f"{TOKEN}-{i}"} for i in range(3)]
    flow = FanOut(TokenUser(name="x", api_token="unused-token"), items)
    # When it runs
    run_id = await Chain(flow).dispatch(queue, wait=False)
    assert isinstance(run_id, str)
    await harness.settle(queue)
    # Then each member got its token, and none of them was stored
    assert [journal.seen[f"f{i}"] for i in range(3)] == [f"{TOKEN}-{i}" for i in range(3)]
    stored = json.dumps(await queue.store.load_plan(run_id))
    assert TOKEN not in stored
    assert "unused-token" not in stored


async def test_a_unique_job_is_claimed_by_a_process_that_lacks_its_secret(
    harness: Harness, journal: Journal
) -> None:
    # Given a unique job whose token refers to a variable this process does not have
    ref = JobRef(
        f"{JOBS}:TokenUser",
        {"name": "u", "api_token": secret_env("UNIT_UNSET_TOKEN")},
    ).with_settings(unique_for=60, unique_id="token-user-{name}")
    queue = harness.queue()
    # When it is dispatched twice
    ids = await harness.run(ref, ref, queue=queue)
    # Then the second dispatch is a duplicate, and the first fails where it runs, naming
    # the variable (the dispatch itself did not need it)
    assert ids[0] is not None
    assert ids[1] is None
    [record] = await queue.store.list_failed()
    assert "'UNIT_UNSET_TOKEN' is not set" in record.message


async def test_a_fan_out_member_stores_no_nested_secret_given_in_python(
    harness: Harness,
) -> None:
    # Given a fan-out of a job whose secrets sit in a nested model and a list, given in
    # Python, and which fails
    queue = harness.queue()
    job = NestedSecrets(
        db=DbConfig(host="h", dsn=SecretStr("pg://u:nestedpw1@h/d")),
        keys=[SecretStr("listpw-one")],
    )
    flow = FanOut(job, [{"db": {"host": "a", "dsn": "pg://u:nestedpw2@a/d"}}, {}])
    # When its members fail
    run_id = await Chain(flow).dispatch(queue, wait=False)
    assert isinstance(run_id, str)
    await harness.settle(queue)
    # Then no failed record holds any of the secrets, nested or listed
    records = json.dumps([r.payload for r in await queue.store.list_failed()])
    assert len(await queue.store.list_failed()) >= 1
    for secret in ("nestedpw1", "nestedpw2", "listpw-one"):
        assert secret not in records


def test_a_key_that_would_hold_a_secret_is_refused() -> None:
    # Given a secret this process resolved (from a reference in a message, say)
    register_secret("key-token-resolved")
    job = Step(name="key-token-resolved")
    # When a lock or rate-limit key would be built from it, Then it is refused: keys
    # are stored and shown
    with pytest.raises(LockError, match="would hold a secret"):
        resolve_key("rate-{name}", job)
    assert resolve_key("rate-{name}", Step(name="plain")) == "rate-plain"
