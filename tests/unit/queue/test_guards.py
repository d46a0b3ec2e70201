"""Failures that would repeat identically on every attempt fail at once."""

from __future__ import annotations

import pytest

from arvel_flow.errors import ImportTargetError, JobFailedError, LockError
from arvel_flow.queue.job import MiddlewareRef
from arvel_flow.queue.runner import JobRunner
from arvel_flow.queue.targets import JobRef
from arvel_flow.store.memory import MemoryStore

from .flow_jobs import JOURNAL, Step

JOBS = "tests.unit.queue.flow_jobs"


async def test_a_rate_limit_key_naming_a_missing_field_fails_without_retrying() -> None:
    # Given a job whose rate-limit key names a field the job does not have
    limited = MiddlewareRef(
        "rate_limited", {"key": "k-{nope}", "max_attempts": 1, "decay_seconds": 1}
    )
    ref = JobRef.of(Step(name="keyed"), max_retries=3, middleware=(limited,))
    store = MemoryStore()
    # When it runs
    with pytest.raises(JobFailedError) as caught:
        await JobRunner(store=store).execute(ref)
    # Then it failed on its first attempt, with the key problem, and never ran
    assert caught.value.attempts == 1
    assert isinstance(caught.value.__cause__, LockError)
    assert "keyed" not in JOURNAL.entries
    assert len(await store.list_failed()) == 1


async def test_a_retry_policy_naming_an_exception_outside_the_allowed_modules_fails() -> None:
    # Given a worker allowed to import only this test package, and a job whose policy
    # names an exception class elsewhere
    ref = JobRef(f"{JOBS}:Step", {"name": "policy"}).with_settings(
        retry_on=("json.JSONDecodeError",)
    )
    runner = JobRunner(allowed_modules=("tests.unit.queue",))
    # When it runs
    with pytest.raises(JobFailedError) as caught:
        await runner.execute(ref)
    # Then it failed without running, and the refusal names the module rule
    assert isinstance(caught.value.__cause__, ImportTargetError)
    assert "allowed modules" in str(caught.value.__cause__)
    assert "policy" not in JOURNAL.entries


async def test_secrets_quoted_in_an_error_message_are_scrubbed_everywhere() -> None:
    # Given a job whose error message quotes its password and its SecretStr DSN
    from arvel_flow.queue.drivers.sync import SyncQueue
    from arvel_flow.queue.events import Event, EventBus

    from .flow_jobs import Blabbermouth

    events: list[Event] = []
    queue = SyncQueue(events=EventBus(events.append))
    # When it fails (once retried, then for good) inside a run
    from arvel_flow.queue.chain import Chain

    result = await Chain(Blabbermouth()).dispatch(queue)
    # Then neither secret appears in the events, the failed-jobs record or the run state
    record = (await queue.store.list_failed())[0]
    texts = [str(e.to_dict()) for e in events]
    texts += [record.message, record.traceback, str(record.payload), str(result.failed)]
    for text in texts:
        assert "correct-horse" not in text
        assert "battery" not in text
    # ... while the rest of the message is still there to act on
    assert "refused" in record.message
    assert "***" in record.message


def test_a_ref_made_from_a_path_starts_from_the_class_settings() -> None:
    # Given a job class whose own default is not to retry
    # When a ref is made from its dotted path
    ref = JobRef.of(f"{JOBS}:Step")
    # Then it carries the class's settings, not the Job defaults
    assert ref.settings.max_retries == 0
    assert JobRef.of(f"{JOBS}:Step", max_retries=2).settings.max_retries == 2
