"""Attempts, backoff, retry limits and timeouts: SPEC §2 "Attempts".

Each test runs the job in place (`JobRunner.execute`) and through each driver (sync,
in-memory taskiq), on a fake clock: waiting out a backoff costs no real time.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from arvel_flow.errors import JobFailedError, JobMaxRetriesError, JobTimeoutError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.job import MiddlewareRef
from arvel_flow.queue.runner import JobRunner, Released
from arvel_flow.queue.targets import JobRef
from arvel_flow.store import MemoryStore
from tests.unit.queue.flow_harness import T0, Events, Executor, FakeClock, Harness, gaps
from tests.unit.queue.flow_jobs import JOBS, Flaky, Journal, Sleeper, Step

# How many attempts ----------------------------------------------------------------------


async def test_a_failing_job_runs_one_plus_max_retries_times(
    executor: Executor, journal: Journal
) -> None:
    # Given a job that always fails, with max_retries=3
    job = Flaky(name="flaky", max_retries=3, backoff=1)
    # When it runs to its end
    await executor.run(job)
    # Then it ran 4 times and failed for good once, after the 4th attempt
    assert journal.runs_of("flaky") == 4
    [record] = await executor.failed()
    assert record.attempts == 4
    assert [name for name, _ in journal.failures] == ["flaky"]


async def test_max_retries_zero_runs_a_failing_job_once(
    executor: Executor, journal: Journal
) -> None:
    # Given a failing job that may not be retried
    # When it runs
    await executor.run(Flaky(name="once", max_retries=0))
    # Then it ran once and failed for good
    assert journal.runs_of("once") == 1
    assert [r.attempts for r in await executor.failed()] == [1]


async def test_a_job_that_succeeds_on_a_retry_stops_retrying(
    executor: Executor, journal: Journal
) -> None:
    # Given a job that fails twice, then succeeds, with retries to spare
    job = Flaky(name="third-time", fail_times=2, max_retries=5, backoff=1)
    # When it runs
    await executor.run(job)
    # Then it ran 3 times and nothing was recorded as failed
    assert journal.runs_of("third-time") == 3
    assert await executor.failed() == []
    assert journal.failures == []


async def test_execute_returns_the_result_of_the_attempt_that_succeeded(
    runner: JobRunner, journal: Journal
) -> None:
    # Given a job that fails once, then succeeds
    # When it is run in place
    result = await runner.execute(Flaky(name="r", fail_times=1, backoff=1))
    # Then execute waited for the retry and returned what handle() returned
    assert result == "r done"
    assert journal.runs_of("r") == 2


async def test_execute_raises_max_retries_error_with_the_last_error_as_cause(
    runner: JobRunner, journal: Journal
) -> None:
    # Given a job that always fails, with max_retries=2
    # When it is run in place
    with pytest.raises(JobMaxRetriesError) as caught:
        await runner.execute(Flaky(name="doomed", max_retries=2, backoff=1))
    # Then the error says how many attempts were made and chains the last error raised
    assert caught.value.attempts == 3
    assert caught.value.job == f"{JOBS}:Flaky"
    assert caught.value.__cause__ is journal.raised["doomed"][-1]


# Backoff --------------------------------------------------------------------------------

BACKOFFS = [
    pytest.param({"backoff": 5, "max_retries": 3}, [5, 5, 5], id="int"),
    pytest.param(
        {"backoff": [1, 5, 30], "max_retries": 5}, [1, 5, 30, 30, 30], id="list-last-repeats"
    ),
    pytest.param({"backoff": "exponential", "max_retries": 4}, [2, 4, 8, 16], id="exponential"),
    pytest.param(
        {"backoff": "exponential", "backoff_base": 3, "max_retries": 3},
        [3, 9, 27],
        id="exponential-base-3",
    ),
    pytest.param(
        {"backoff": "exponential", "backoff_base": 10, "max_backoff": 50, "max_retries": 3},
        [10, 50, 50],
        id="max-backoff-caps",
    ),
]


@pytest.mark.parametrize(("policy", "waits"), BACKOFFS)
async def test_execute_waits_the_backoff_between_attempts(
    runner: JobRunner,
    clock: FakeClock,
    journal: Journal,
    policy: dict[str, object],
    waits: list[float],
) -> None:
    # Given a job that always fails, with a backoff policy
    # When it is run in place
    with pytest.raises(JobMaxRetriesError):
        await runner.execute(Flaky(name="b", **policy))
    # Then it waited the policy's backoff between attempts, through the clock
    assert clock.sleeps == waits
    assert gaps(journal.started_at["b"]) == waits


@pytest.mark.parametrize(("policy", "waits"), BACKOFFS)
async def test_drivers_deliver_retries_after_the_backoff(
    memory_harness: Harness, journal: Journal, policy: dict[str, object], waits: list[float]
) -> None:
    # Given a job that always fails, with a backoff policy
    # When it is dispatched
    await memory_harness.run(Flaky(name="b", **policy))
    # Then each retry started the backoff after the attempt before it
    assert gaps(journal.started_at["b"]) == waits


async def test_jitter_keeps_each_wait_within_half_and_all_of_the_backoff(clock: FakeClock) -> None:
    # Given a job with a 100 s backoff and jitter, and a seeded random source
    store = MemoryStore(clock=clock.now)
    runner = JobRunner(store=store, clock=clock, rng=random.Random(99))
    # When it fails on every attempt
    with pytest.raises(JobMaxRetriesError):
        await runner.execute(Flaky(name="j", backoff=100, jitter=True, max_retries=20))
    # Then every wait lies in [50, 100] and the waits are spread, not all alike
    assert len(clock.sleeps) == 20
    assert all(50 <= wait <= 100 for wait in clock.sleeps)
    assert len(set(clock.sleeps)) == 20


async def test_retrying_event_carries_the_delay(memory_harness: Harness, events: Events) -> None:
    # Given a job with a 7 s backoff that fails once
    # When it is dispatched
    await memory_harness.run(Flaky(name="d", fail_times=1, backoff=7))
    # Then the retry was announced with its delay and the failed attempt's number
    [retrying] = events.named("job.retrying")
    assert retrying.data["delay"] == 7
    assert retrying.attempt == 1
    assert "RuntimeError: d failed on attempt 1" in retrying.data["error"]


# Limits other than the number of retries -----------------------------------------------


async def test_retry_until_stops_retrying_once_the_time_is_up(
    executor: Executor, journal: Journal
) -> None:
    # Given a job with many retries, a 10 s backoff and retry_until 25 s
    job = Flaky(name="deadline", max_retries=10, backoff=10, retry_until=timedelta(seconds=25))
    # When it always fails
    await executor.run(job)
    # Then it ran at 0, 10 and 20 s and not again (a retry at 30 s is past the deadline)
    assert gaps(journal.started_at["deadline"]) == [10, 10]
    [record] = await executor.failed()
    assert record.attempts == 3


async def test_execute_raises_failed_error_when_retrying_stopped_early(runner: JobRunner) -> None:
    # Given a job whose retry_until leaves room for one retry out of ten
    job = Flaky(name="deadline", max_retries=10, backoff=10, retry_until=timedelta(seconds=15))
    # When it is run in place
    with pytest.raises(JobFailedError) as caught:
        await runner.execute(job)
    # Then the error is not "max retries" (retries were left) and says why it stopped
    assert not isinstance(caught.value, JobMaxRetriesError)
    assert caught.value.attempts == 2
    assert "retry_until" in str(caught.value)


async def test_max_exceptions_stops_after_that_many_raised_exceptions(
    executor: Executor, journal: Journal
) -> None:
    # Given a job with 10 retries but max_exceptions=2
    # When it raises on every attempt
    await executor.run(Flaky(name="raiser", max_retries=10, backoff=1, max_exceptions=2))
    # Then it stopped after the second exception
    assert journal.runs_of("raiser") == 2
    assert [r.attempts for r in await executor.failed()] == [2]


async def test_timeouts_do_not_count_towards_max_exceptions(
    executor: Executor, journal: Journal
) -> None:
    # Given a job with max_exceptions=1 that times out twice, then raises
    job = Sleeper(
        name="slow",
        seconds=10,
        slow_times=2,
        raise_after=True,
        timeout_seconds=0.02,
        max_retries=5,
        max_exceptions=1,
    )
    # When it runs
    await executor.run(job)
    # Then the two timeouts were retried, and the first exception ended it
    assert journal.runs_of("slow") == 3
    [(_, error)] = journal.failures
    assert isinstance(error, RuntimeError)


@pytest.mark.parametrize(
    ("error", "policy", "runs"),
    [
        pytest.param(
            "ConnectionResetError",
            {"retry_on": ["ConnectionError"]},
            3,
            id="retry-on-builtin-match",
        ),
        pytest.param(
            "ValueError", {"retry_on": ["ConnectionError"]}, 1, id="retry-on-builtin-other"
        ),
        pytest.param(
            f"{JOBS}.TransientError",
            {"retry_on": [f"{JOBS}.TransientError"]},
            3,
            id="retry-on-dotted",
        ),
        pytest.param(
            f"{JOBS}.TransientError",
            {"retry_on": [f"{JOBS}:TransientError"]},
            3,
            id="retry-on-colon",
        ),
        pytest.param(
            "KeyError",
            {"retry_on": [f"{JOBS}.TransientError"]},
            1,
            id="retry-on-dotted-other",
        ),
        pytest.param(
            "ValueError", {"dont_retry_on": ["ValueError"]}, 1, id="dont-retry-on-builtin"
        ),
        pytest.param("KeyError", {"dont_retry_on": ["ValueError"]}, 3, id="dont-retry-on-other"),
        pytest.param(
            f"{JOBS}.TransientError",
            {"dont_retry_on": [f"{JOBS}:TransientError"]},
            1,
            id="dont-retry-on-dotted",
        ),
    ],
)
async def test_retry_on_and_dont_retry_on_decide_which_errors_are_retried(
    executor: Executor, journal: Journal, error: str, policy: dict[str, list[str]], runs: int
) -> None:
    # Given a job with 2 retries and a policy naming exception classes
    job = Flaky(name="picky", error=error, max_retries=2, backoff=1, **policy)
    # When it raises ``error`` on every attempt
    await executor.run(job)
    # Then it was retried only when the policy lets that error be retried
    assert journal.runs_of("picky") == runs
    assert len(await executor.failed()) == 1


async def test_retry_on_accepts_exception_classes(executor: Executor, journal: Journal) -> None:
    # Given a job whose retry_on holds a class, not a name
    job = Flaky(name="typed", error="ValueError", max_retries=2, backoff=1, retry_on=(ValueError,))
    # When it raises that error on every attempt / Then it is retried
    await executor.run(job)
    assert journal.runs_of("typed") == 3


# Timeouts ---------------------------------------------------------------------------------


async def test_a_timeout_cancels_handle_and_counts_as_a_failed_attempt(
    executor: Executor, journal: Journal
) -> None:
    # Given a job that would sleep 10 s, with a 20 ms timeout and one retry
    job = Sleeper(name="stuck", seconds=10, timeout_seconds=0.02, max_retries=1)
    # When it runs
    await executor.run(job)
    # Then both attempts were cancelled, and the job failed with JobTimeoutError
    assert journal.entries == ["stuck cancelled", "stuck cancelled"]
    [(_, error)] = journal.failures
    assert isinstance(error, JobTimeoutError)
    assert error.timeout_seconds == 0.02
    [record] = await executor.failed()
    assert record.attempts == 2
    assert record.exception == "arvel_flow.errors.JobTimeoutError"


async def test_timeout_zero_means_no_timeout(executor: Executor, journal: Journal) -> None:
    # Given a job that takes 50 ms and has timeout_seconds=0
    # When it runs
    await executor.run(Sleeper(name="patient", seconds=0.05, timeout_seconds=0))
    # Then it ran to the end and succeeded
    assert journal.entries == ["patient slept"]
    assert journal.failures == []
    assert await executor.failed() == []


async def test_a_timeout_inside_handle_is_not_mistaken_for_the_jobs_timeout(
    executor: Executor, journal: Journal
) -> None:
    # Given a job whose own code raises TimeoutError, well within its timeout
    job = Flaky(name="own-timeout", error="TimeoutError", max_retries=0, timeout_seconds=30)
    # When it runs
    await executor.run(job)
    # Then the job failed with its own TimeoutError, not a JobTimeoutError
    [(_, error)] = journal.failures
    assert type(error) is TimeoutError


# Slots and releases ---------------------------------------------------------------------


async def test_a_job_waiting_out_its_backoff_holds_no_worker_slot(
    clock: FakeClock, events: Events, journal: Journal
) -> None:
    # Given a taskiq driver with a single slot, and a job that fails once with a 60 s backoff
    store = MemoryStore(clock=clock.now)
    harness = Harness("taskiq", clock, events, lambda: store)
    queue = harness.queue(concurrency=1)
    flaky = Step(name="flaky", fail_times=1, max_retries=1, backoff=60)
    try:
        # When that job and another are dispatched together
        await harness.run(flaky, Step(name="other"), queue=queue)
    finally:
        await harness.close()
    # Then the other job ran during the backoff, before the retry
    assert journal.entries == ["flaky", "other", "flaky"]
    assert journal.started_at["other"] == [T0]
    assert journal.started_at["flaky"] == [T0, T0 + 60]


async def test_a_released_job_holds_no_worker_slot(
    clock: FakeClock, events: Events, journal: Journal
) -> None:
    # Given a taskiq driver with a single slot, and a job its middleware releases for 60 s
    store = MemoryStore(clock=clock.now)
    harness = Harness("taskiq", clock, events, lambda: store)
    queue = harness.queue(concurrency=1)
    release = MiddlewareRef(f"{JOBS}:ReleaseFirst", {"times": 1, "delay": 60})
    try:
        # When that job and another are dispatched together
        await harness.run(
            JobRef.of(Step(name="held"), middleware=(release,)), Step(name="other"), queue=queue
        )
    finally:
        await harness.close()
    # Then the other job ran while the first was released
    assert journal.entries == ["other", "held"]
    assert journal.started_at == {"other": [T0], "held": [T0 + 60]}


async def test_a_release_does_not_spend_an_attempt(
    executor: Executor, journal: Journal, events: Events
) -> None:
    # Given a job with no retries whose middleware releases it three times
    release = MiddlewareRef(f"{JOBS}:ReleaseFirst", {"times": 3, "delay": 10})
    job = JobRef.of(Step(name="patient"), middleware=(release,))
    # When it runs
    await executor.run(job)
    # Then it ran once, 30 s later, and succeeded on its first attempt
    assert journal.runs_of("patient") == 1
    assert journal.started_at["patient"] == [T0 + 30]
    assert [e.data["delay"] for e in events.named("job.released")] == [10, 10, 10]
    [succeeded] = events.named("job.succeeded")
    assert succeeded.attempt == 1
    assert await executor.failed() == []


async def test_releases_leave_every_retry_to_the_job(executor: Executor, journal: Journal) -> None:
    # Given a job with one retry that is released twice, then fails on every attempt
    release = MiddlewareRef(f"{JOBS}:ReleaseFirst", {"times": 2, "delay": 5})
    job = JobRef.of(
        Step(name="unlucky", fail_times=-1, max_retries=1, backoff=1), middleware=(release,)
    )
    # When it runs
    await executor.run(job)
    # Then it still had both of its attempts
    assert journal.runs_of("unlucky") == 2
    assert [r.attempts for r in await executor.failed()] == [2]


async def test_attempt_reports_a_release_with_the_attempt_count_unchanged(
    runner: JobRunner, clock: FakeClock
) -> None:
    # Given a delivery of a job that middleware will release for 10 s
    release = MiddlewareRef(f"{JOBS}:ReleaseFirst", {"times": 1, "delay": 10})
    envelope = Envelope(JobRef.of(Step(name="x"), middleware=(release,)), "msg-1")
    # When one attempt is made
    outcome = await runner.attempt(envelope)
    # Then the job is to run again in 10 s, with no attempt spent
    assert isinstance(outcome, Released)
    assert outcome.envelope.attempts == 0
    assert outcome.envelope.available_at == clock.now() + 10


@pytest.mark.parametrize("name", ["os.path", "json.dumps", "int", "json:JSONDecoder"])
async def test_a_retry_policy_naming_no_exception_class_fails_the_job_clearly(
    executor: Executor, journal: Journal, name: str
) -> None:
    # Given a job from the Python API (never validated) whose retry_on names a module,
    # a function or a class that is not an exception
    job = Flaky(name="odd", error="ValueError", max_retries=2, backoff=1, retry_on=(name,))
    # When it runs
    await executor.run(job)
    # Then it is refused before running, and recorded as failed with a clear reason
    # (not a TypeError from isinstance() once the job has failed)
    assert journal.runs_of("odd") == 0
    [record] = await executor.failed()
    assert record.exception == "arvel_flow.errors.ImportTargetError"
    assert record.message == f"cannot use {name!r}: not an exception class"
