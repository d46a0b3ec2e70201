"""Permanent failure: SPEC §2 "Permanent failure" and the failed-jobs record."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import pytest
from pydantic import SecretStr

from arvel_flow.errors import JobMaxRetriesError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.runner import Failed, JobRunner
from arvel_flow.queue.targets import JobRef
from arvel_flow.store import MemoryStore
from tests.unit.queue.flow_harness import T0, Events, Executor, FakeClock, Harness
from tests.unit.queue.flow_jobs import (
    JOBS,
    BrokenHook,
    DbConfig,
    Journal,
    NestedSecrets,
    Secretive,
    Step,
)

SECRETS = ("hunter2", "ak-123", "tok-456", "cs-789", "postgres://u:pw@db/app")


async def test_on_failure_runs_once_with_the_last_error_itself(
    executor: Executor, journal: Journal
) -> None:
    # Given a job that fails on each of its 3 attempts, each time with a new error
    # When it runs out of attempts
    await executor.run(Step(name="doomed", fail_times=-1, max_retries=2, backoff=1))
    # Then on_failure ran once, with the error of the last attempt (not a wrapper)
    assert len(journal.raised["doomed"]) == 3
    [(name, error)] = journal.failures
    assert name == "doomed"
    assert error is journal.raised["doomed"][-1]


async def test_on_failure_does_not_run_while_retries_remain(
    executor: Executor, journal: Journal
) -> None:
    # Given a job that fails twice, then succeeds
    # When it runs
    await executor.run(Step(name="recovers", fail_times=2, max_retries=2, backoff=1))
    # Then on_failure never ran
    assert journal.failures == []


async def test_a_failing_on_failure_hook_does_not_hide_the_failure(
    runner: JobRunner, journal: Journal
) -> None:
    # Given a job whose on_failure raises too
    # When the job fails for good
    with pytest.raises(JobMaxRetriesError) as caught:
        await runner.execute(BrokenHook())
    # Then the job's own error is reported and recorded, not the hook's
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert len(journal.failures) == 1
    [record] = await runner.store.list_failed()
    assert record.message == "the job broke"


async def test_the_failed_job_record_describes_the_failure(harness: Harness) -> None:
    # Given a job in a chain, on queue "mail", with one retry 5 s apart
    job = Secretive(user="ann", queue_name="mail", max_retries=1, backoff=5)
    queue = harness.queue()
    # When it fails on both attempts
    result = await Chain(job).dispatch(queue)
    # Then the failed-jobs store holds one record saying what failed, where and when
    assert isinstance(result, BatchResult)
    [record] = await queue.store.list_failed()
    assert record.job == f"{JOBS}:Secretive"
    assert record.queue == "mail"
    assert record.exception == "RuntimeError"
    assert record.message == "cannot import for ann"
    assert "RuntimeError: cannot import for ann" in record.traceback
    assert "in handle" in record.traceback
    assert record.attempts == 2
    assert record.run_id == result.run_id
    assert record.step == "root.0"
    assert record.failed_at == T0 + 5
    assert await queue.store.get_failed(record.id) == record


async def test_the_failed_job_record_redacts_sensitive_fields(harness: Harness) -> None:
    # Given a job with a password, an api key, a token, a secret and a SecretStr
    queue = harness.queue()
    # When it fails for good
    await Chain(Secretive(user="ann")).dispatch(queue)
    # Then those fields are redacted markers in the record and their values appear nowhere in it
    [record] = await queue.store.list_failed()
    assert record.payload == {
        "user": "ann",
        "password": {"$redacted": "password"},
        "api_key": {"$redacted": "api_key"},
        "auth_token": {"$redacted": "auth_token"},
        "client_secret": {"$redacted": "client_secret"},
        "dsn": {"$redacted": "dsn"},
        "count": 1,
    }
    dumped = json.dumps(asdict(record), default=str)
    assert not [secret for secret in SECRETS if secret in dumped]


async def test_secrets_nested_in_parameters_are_redacted_too(harness: Harness) -> None:
    # Given a job with a SecretStr inside a nested model and a list of SecretStr
    db = DbConfig(host="db.internal", dsn=SecretStr("postgres://u:nested-pw@db/app"))
    job = NestedSecrets(db=db, keys=[SecretStr("key-one"), SecretStr("key-two")])
    queue = harness.queue()
    # When it fails for good
    await Chain(job).dispatch(queue)
    # Then none of the secret values reached the failed-jobs store
    [record] = await queue.store.list_failed()
    dumped = json.dumps(asdict(record), default=str)
    assert "db.internal" in dumped
    assert not [s for s in ("nested-pw", "key-one", "key-two") if s in dumped]


async def test_a_lone_job_is_recorded_without_run_or_step(memory_harness: Harness) -> None:
    # Given a job dispatched on its own, outside any chain or batch
    queue = memory_harness.queue()
    # When it fails for good
    await memory_harness.run(Step(name="alone", fail_times=-1), queue=queue)
    # Then its record has no run and no step
    [record] = await queue.store.list_failed()
    assert (record.job, record.run_id, record.step) == (
        f"{JOBS}:Step",
        None,
        None,
    )


UNBUILDABLE = [
    pytest.param(
        JobRef(f"{JOBS}:NoSuchJob"),
        "arvel_flow.errors.ImportTargetError",
        id="missing-class",
    ),
    pytest.param(
        JobRef("no_such_module.jobs:Job"),
        "arvel_flow.errors.ImportTargetError",
        id="missing-module",
    ),
    pytest.param(
        JobRef(f"{JOBS}:Journal"),
        "arvel_flow.errors.ImportTargetError",
        id="not-a-job",
    ),
    pytest.param(
        JobRef(f"{JOBS}:Step", {"title": "no name"}),
        "pydantic_core._pydantic_core.ValidationError",
        id="missing-param",
    ),
    pytest.param(
        JobRef(f"{JOBS}:Step", {"name": "x", "hold": "long"}),
        "pydantic_core._pydantic_core.ValidationError",
        id="mistyped-param",
    ),
]


@pytest.mark.parametrize(("ref", "exception"), UNBUILDABLE)
async def test_a_job_that_cannot_be_built_is_recorded_as_failed_without_retrying(
    memory_harness: Harness, events: Events, ref: JobRef, exception: str
) -> None:
    # Given a job, with retries to spare, that cannot be built
    queue = memory_harness.queue()
    # When it is dispatched
    await memory_harness.run(ref.with_settings(max_retries=3), queue=queue)
    # Then it failed at once: recorded, never started, never retried
    [record] = await queue.store.list_failed()
    assert record.exception == exception
    assert record.job == ref.target
    assert events.named("job.started") == []
    assert events.named("job.retrying") == []
    assert len(events.named("job.failed")) == 1


async def test_a_job_that_cannot_be_built_fails_its_chain(
    harness: Harness, journal: Journal
) -> None:
    # Given a chain whose first step names a class that does not exist
    chain = Chain(JobRef(f"{JOBS}:NoSuchJob"), Step(name="after"))
    # When it runs
    result = await chain.dispatch(harness.queue())
    # Then the chain failed there and the next step was skipped
    assert isinstance(result, BatchResult)
    assert result.status == "failed"
    assert list(result.failed) == ["root.0"]
    assert result.skipped == ("root.1",)
    assert journal.runs_of("after") == 0


async def test_a_job_whose_middleware_cannot_be_built_fails_without_retrying(
    memory_harness: Harness, events: Events, journal: Journal
) -> None:
    # Given a job with retries whose middleware names a class that does not exist
    broken = MiddlewareRef("no_such_module.middleware:Audit")
    job = JobRef.of(Step(name="guarded", max_retries=3, backoff=1), middleware=(broken,))
    queue = memory_harness.queue()
    # When it is dispatched
    await memory_harness.run(job, queue=queue)
    # Then it failed at once, without running and without retries
    [record] = await queue.store.list_failed()
    assert record.exception == "arvel_flow.errors.ImportTargetError"
    assert journal.runs_of("guarded") == 0
    assert events.named("job.retrying") == []


@pytest.mark.parametrize("policy", ["retry_on", "dont_retry_on"])
async def test_a_retry_policy_naming_an_unknown_exception_fails_the_job_at_once(
    executor: Executor, journal: Journal, policy: str
) -> None:
    # Given a job with retries whose policy names an exception class that does not exist
    job = Step(
        name="misconfigured", fail_times=-1, max_retries=3, **{policy: ("no_such_module.Error",)}
    )
    # When it is run
    await executor.run(job)
    # Then it failed for good at once, recorded with the reason, without running
    [record] = await executor.failed()
    assert record.exception == "arvel_flow.errors.ImportTargetError"
    assert "no_such_module.Error" in record.message
    assert journal.runs_of("misconfigured") == 0


async def test_secret_fields_stay_redacted_when_the_job_cannot_be_built(
    memory_harness: Harness,
) -> None:
    # Given a stored job whose SecretStr parameter arrives as plain text, next to a bad one
    ref = JobRef(
        f"{JOBS}:Secretive",
        {"user": "ann", "count": "many", "dsn": "postgres://u:pw@db/app"},
    )
    queue = memory_harness.queue()
    # When it fails to build
    await memory_harness.run(ref, queue=queue)
    # Then the SecretStr field is masked all the same
    [record] = await queue.store.list_failed()
    assert record.payload["dsn"] == {"$redacted": "dsn"}
    assert record.payload["user"] == "ann"


async def test_a_job_outside_the_allowed_modules_is_refused_and_not_imported(
    clock: FakeClock,
) -> None:
    # Given a runner that may import jobs from the test jobs' module only
    runner = JobRunner(store=MemoryStore(), clock=clock, allowed_modules=(JOBS,))
    envelope = Envelope(JobRef("tests.unit.queue.forbidden_jobs:Forbidden"), "msg-1")
    # When a message names a job in another module
    outcome = await runner.attempt(envelope)
    # Then it is refused and recorded as failed, and its module was never imported
    assert isinstance(outcome, Failed)
    assert "tests.unit.queue.forbidden_jobs" not in sys.modules
    [record] = await runner.store.list_failed()
    assert record.exception == "arvel_flow.errors.ImportTargetError"
    assert "allowed modules" in record.message


async def test_the_failed_record_keeps_the_effective_settings(memory_harness: Harness) -> None:
    # Given a job with settings of its own
    queue = memory_harness.queue()
    # When it fails for good
    await memory_harness.run(Step(name="s", fail_times=-1, max_retries=1, backoff=3), queue=queue)
    # Then the record keeps the settings it ran with (what `failed retry` needs)
    [record] = await queue.store.list_failed()
    settings = JobSettings.from_values(dict(record.settings))
    assert (settings.max_retries, settings.backoff) == (1, 3.0)


async def test_a_mistyped_secret_parameter_is_not_echoed_into_the_record_or_events(
    memory_harness: Harness, events: Events
) -> None:
    # Given a stored job whose token arrives as a number where the class wants text
    ref = JobRef(f"{JOBS}:Secretive", {"user": "ann", "auth_token": 918273645})
    queue = memory_harness.queue()
    # When it fails to build
    await memory_harness.run(ref, queue=queue)
    # Then the validation error is recorded and announced without the token's value
    [record] = await queue.store.list_failed()
    assert "auth_token" in record.message
    assert "918273645" not in json.dumps(asdict(record), default=str)
    assert "918273645" not in json.dumps([e.to_dict() for e in events], default=str)


async def test_a_mistyped_secret_parameter_is_not_echoed_into_the_run_state(
    harness: Harness,
) -> None:
    # Given a chain whose job's token arrives as a number where the class wants text
    ref = JobRef(f"{JOBS}:Secretive", {"user": "ann", "auth_token": 918273645})
    # When it runs and the job fails to build
    result = await Chain(ref).dispatch(harness.queue())
    # Then the error kept with the run does not hold the token's value
    assert isinstance(result, BatchResult)
    assert "auth_token" in result.failed["root.0"]
    assert "918273645" not in result.failed["root.0"]
