"""The pure retry decisions: `compute_backoff` and `next_step`, table-tested."""

from __future__ import annotations

import random

import pytest

from arvel_flow.errors import JobTimeoutError
from arvel_flow.pipeline.fields import MAX_DURATION
from arvel_flow.queue.backoff import (
    MAX_WAIT,
    GiveUp,
    RetryAt,
    compute_backoff,
    is_retryable,
    next_step,
)
from arvel_flow.queue.job import Job, JobSettings
from tests.unit.queue.flow_jobs import JOBS, TransientError


@pytest.mark.parametrize(
    ("settings", "attempt", "expected"),
    [
        # An int waits the same every time.
        (JobSettings(backoff=30), 1, 30),
        (JobSettings(backoff=30), 5, 30),
        (JobSettings(backoff=0), 1, 0),
        # A list gives one wait per attempt, the last repeating.
        (JobSettings(backoff=(1, 5, 30)), 1, 1),
        (JobSettings(backoff=(1, 5, 30)), 2, 5),
        (JobSettings(backoff=(1, 5, 30)), 3, 30),
        (JobSettings(backoff=(1, 5, 30)), 4, 30),
        (JobSettings(backoff=(1, 5, 30)), 9, 30),
        # Exponential waits backoff_base ** attempt.
        (JobSettings(backoff="exponential"), 1, 2),
        (JobSettings(backoff="exponential"), 2, 4),
        (JobSettings(backoff="exponential"), 3, 8),
        (JobSettings(backoff="exponential", backoff_base=3), 3, 27),
        # max_backoff caps every form.
        (JobSettings(backoff="exponential", max_backoff=60), 5, 32),
        (JobSettings(backoff="exponential", max_backoff=60), 6, 60),
        (JobSettings(backoff="exponential", max_backoff=60), 20, 60),
        (JobSettings(backoff=(1, 500), max_backoff=60), 2, 60),
        (JobSettings(backoff=90, max_backoff=60), 1, 60),
    ],
)
def test_compute_backoff_follows_the_policy(
    settings: JobSettings, attempt: int, expected: float
) -> None:
    # Given a backoff policy / When the wait after failed attempt N is computed
    # Then it is the one the policy gives
    assert compute_backoff(attempt, settings) == expected


@pytest.mark.parametrize(
    ("settings", "attempt", "low", "high"),
    [
        (JobSettings(backoff=40, jitter=True), 1, 20, 40),
        (JobSettings(backoff="exponential", jitter=True), 4, 8, 16),
        (JobSettings(backoff="exponential", max_backoff=60, jitter=True), 10, 30, 60),
    ],
)
def test_jitter_spreads_the_wait_over_its_upper_half(
    settings: JobSettings, attempt: int, low: float, high: float
) -> None:
    # Given a policy with jitter
    rng = random.Random(1234)
    # When the wait is computed many times
    waits = [compute_backoff(attempt, settings, rng) for _ in range(500)]
    # Then every wait lies in [wait / 2, wait] (the cap included), and they differ
    assert all(low <= wait <= high for wait in waits)
    assert len(set(waits)) > 400
    assert min(waits) < low + (high - low) * 0.1
    assert max(waits) > high - (high - low) * 0.1


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    # Given two generators with the same seed
    settings = JobSettings(backoff=100, jitter=True)
    # When each computes a series of waits / Then the series are the same
    first = [compute_backoff(1, settings, random.Random(7)) for _ in range(3)]
    second = [compute_backoff(1, settings, random.Random(7)) for _ in range(3)]
    assert first == second


@pytest.mark.parametrize(
    ("values", "attempt", "expected"),
    [
        # The cases of issue #9, and worse: a power that overflows a float...
        ({"backoff": "exponential"}, 1100, MAX_WAIT),
        ({"backoff": "exponential", "backoff_base": 1e200}, 2, MAX_WAIT),
        ({"backoff": "exponential"}, 10**30, MAX_WAIT),
        ({"backoff": "exponential", "backoff_base": -3.0}, 1001, MAX_WAIT),
        # ... ints too large for a float, from the Python API ...
        ({"backoff": "exponential", "backoff_base": 10**400}, 1, MAX_WAIT),
        ({"backoff": 10**400}, 1, MAX_WAIT),
        ({"backoff": [1, 10**400]}, 5, MAX_WAIT),
        # ... infinities and NaNs, capped or not
        ({"backoff": float("inf")}, 1, MAX_WAIT),
        ({"backoff": float("nan")}, 1, 0.0),
        ({"backoff": "exponential", "max_backoff": float("nan")}, 3, 8.0),
        ({"backoff": -5}, 1, 0.0),
        ({"backoff": "exponential", "max_backoff": 60}, 10**9, 60.0),
    ],
)
def test_compute_backoff_stays_within_a_year_whatever_the_settings(
    values: dict[str, object], attempt: int, expected: float
) -> None:
    # Given absurd settings, as the Python API or a stored plan may carry them
    settings = JobSettings.from_values(values)
    # When the wait is computed / Then it is a number of seconds in [0, MAX_WAIT]
    assert compute_backoff(attempt, settings) == expected


def test_a_job_with_absurd_settings_still_has_settings() -> None:
    # Given a job whose settings overflow a float
    job = Job(max_retries=10**9, backoff=10**400, backoff_base=10**400)
    # When its effective settings are read / Then they are infinite, not an OverflowError
    settings = JobSettings.of(job, delay=10**400)
    assert settings.backoff == settings.backoff_base == settings.delay == float("inf")
    assert compute_backoff(10**9, settings) == MAX_WAIT


def test_the_runner_never_waits_longer_than_a_file_may_ask() -> None:
    assert MAX_WAIT == MAX_DURATION == 365 * 86400


def decide(settings: JobSettings, error: BaseException, **state: float) -> RetryAt | GiveUp:
    values = {"attempts": 1, "exceptions": 1, "first_attempt_at": 0.0, "now": 0.0} | state
    return next_step(
        error,
        attempts=int(values["attempts"]),
        exceptions=int(values["exceptions"]),
        first_attempt_at=values["first_attempt_at"],
        now=values["now"],
        settings=settings,
    )


@pytest.mark.parametrize(("attempts", "retried"), [(1, True), (3, True), (4, False)])
def test_next_step_retries_until_one_plus_max_retries_attempts(
    attempts: int, retried: bool
) -> None:
    # Given max_retries=3 / When attempt N has failed
    decision = decide(
        JobSettings(max_retries=3, backoff=10), ValueError(), attempts=attempts, now=100
    )
    # Then attempts 1..3 are retried after the backoff, the 4th is the last
    assert decision == (RetryAt(110) if retried else GiveUp("attempts exhausted (4)"))


def test_next_step_gives_up_at_once_with_max_retries_zero() -> None:
    # Given max_retries=0 / When the first attempt failed / Then there is no retry
    assert isinstance(decide(JobSettings(max_retries=0), ValueError()), GiveUp)


@pytest.mark.parametrize(("now", "retried"), [(10, True), (15, True), (16, False)])
def test_next_step_stops_once_the_retry_would_land_past_retry_until(
    now: float, retried: bool
) -> None:
    # Given retry_until=25s, a 10 s backoff, a first attempt at 0
    settings = JobSettings(max_retries=10, backoff=10, retry_until=25)
    # When an attempt failed at ``now``
    decision = decide(settings, ValueError(), attempts=2, now=now)
    # Then it is retried only while the retry still falls inside the 25 s
    assert isinstance(decision, RetryAt) is retried


@pytest.mark.parametrize(("exceptions", "retried"), [(1, True), (2, False)])
def test_next_step_stops_after_max_exceptions(exceptions: int, retried: bool) -> None:
    # Given max_exceptions=2 and plenty of retries
    settings = JobSettings(max_retries=10, backoff=1, max_exceptions=2)
    # When the job has raised ``exceptions`` times / Then it stops at the second
    decision = decide(settings, ValueError(), attempts=exceptions, exceptions=exceptions)
    assert isinstance(decision, RetryAt) is retried


@pytest.mark.parametrize(
    ("settings", "error", "retried"),
    [
        (JobSettings(retry_on=("ConnectionError",)), ConnectionResetError(), True),
        (JobSettings(retry_on=("ConnectionError",)), ValueError(), False),
        (
            JobSettings(retry_on=(f"{JOBS}.TransientError",)),
            TransientError(),
            True,
        ),
        (
            JobSettings(retry_on=(f"{JOBS}:TransientError",)),
            TransientError(),
            True,
        ),
        (
            JobSettings(retry_on=(f"{JOBS}.TransientError",)),
            RuntimeError(),
            False,
        ),
        (JobSettings(dont_retry_on=("ValueError",)), ValueError(), False),
        (JobSettings(dont_retry_on=("ValueError",)), KeyError(), True),
        (
            JobSettings(dont_retry_on=(f"{JOBS}:TransientError",)),
            TransientError(),
            False,
        ),
        # dont_retry_on wins over retry_on.
        (JobSettings(retry_on=("Exception",), dont_retry_on=("KeyError",)), KeyError(), False),
        # A user naming TimeoutError means job timeouts too.
        (
            JobSettings(retry_on=("TimeoutError",)),
            JobTimeoutError(job="x", timeout_seconds=1),
            True,
        ),
        (JobSettings(), ValueError(), True),
    ],
)
def test_retry_on_and_dont_retry_on_select_the_errors_retried(
    settings: JobSettings, error: BaseException, retried: bool
) -> None:
    # Given a policy naming exception classes by builtin name or dotted path
    # When ``error`` is raised / Then it is retried only if the policy lets it
    assert is_retryable(error, settings) is retried
