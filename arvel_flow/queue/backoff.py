"""Pure retry decisions: how long to wait, and whether to try again at all."""

from __future__ import annotations

import functools
import inspect
import random
from dataclasses import dataclass

from arvel_flow.errors import ImportTargetError, JobTimeoutError
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.targets import import_object

MAX_WAIT = 365 * 86400.0
"""Longest single wait the runner schedules, whatever the settings say (a year: the
pipeline file's durations stop there too, so only the Python API can ask for more)."""


def compute_backoff(attempt: int, settings: JobSettings, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    An int waits the same every time; a list gives one wait per attempt, its last
    repeating; ``exponential`` waits ``backoff_base ** attempt``. ``max_backoff`` caps
    the wait, and ``jitter`` spreads it over ``[wait / 2, wait]`` so that jobs that
    failed together do not all come back together. Whatever the settings (a huge
    attempt number or base, infinity, NaN), the wait lies in ``[0, MAX_WAIT]``.
    """
    delay = _uncapped_wait(attempt, settings)
    if settings.max_backoff is not None:
        delay = min(delay, settings.max_backoff)
    delay = min(delay, MAX_WAIT) if delay > 0 else 0.0  # NaN compares false: no wait
    if settings.jitter and delay > 0:
        delay = delay / 2 + (rng or random).uniform(0, delay / 2)
    return delay


def _uncapped_wait(attempt: int, settings: JobSettings) -> float:
    backoff = settings.backoff
    try:
        if backoff == "exponential":
            # A float power is computed in constant time and overflows loudly; an int
            # power of a huge attempt number would take forever.
            return float(settings.backoff_base) ** attempt
        if isinstance(backoff, tuple):
            return float(backoff[min(attempt, len(backoff)) - 1]) if backoff else 0.0
        return float(backoff)
    except OverflowError:
        return MAX_WAIT


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try again at ``at`` (same clock as the ``now`` given)."""

    at: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop: the job has failed permanently, for ``reason``."""

    reason: str


def next_step(
    error: BaseException,
    *,
    attempts: int,
    exceptions: int,
    first_attempt_at: float,
    now: float,
    settings: JobSettings,
    rng: random.Random | None = None,
    allowed: tuple[str, ...] | None = None,
) -> RetryAt | GiveUp:
    """Decide what follows a failed attempt.

    ``attempts`` counts the attempts made so far (this one included), ``exceptions``
    the ones where the job itself raised (a timeout is a failed attempt, not an
    exception of the job's, as in Laravel). ``allowed`` is the allowlist the
    ``retry_on`` names are imported under.
    """
    if not is_retryable(error, settings, allowed):
        return GiveUp(f"{type(error).__name__} is not retried")
    if attempts > settings.max_retries:
        return GiveUp(f"attempts exhausted ({attempts})")
    if settings.max_exceptions is not None and exceptions >= settings.max_exceptions:
        return GiveUp(f"max_exceptions reached ({exceptions})")
    at = now + compute_backoff(attempts, settings, rng)
    if settings.retry_until is not None and at > first_attempt_at + settings.retry_until:
        return GiveUp(f"retry_until passed ({settings.retry_until:g}s)")
    return RetryAt(at)


def is_retryable(
    error: BaseException, settings: JobSettings, allowed: tuple[str, ...] | None = None
) -> bool:
    """Whether ``retry_on`` / ``dont_retry_on`` let ``error`` be retried."""
    dont_retry_on = settings.dont_retry_on
    if dont_retry_on and isinstance(error, exception_classes(dont_retry_on, allowed)):
        return False
    if settings.retry_on:
        return isinstance(error, exception_classes(settings.retry_on, allowed))
    return True


@functools.lru_cache(maxsize=256)
def exception_classes(
    names: tuple[str, ...], allowed: tuple[str, ...] | None = None
) -> tuple[type[BaseException], ...]:
    """Import exception classes by builtin name or dotted path (under ``allowed`` if given).

    ``TimeoutError`` also matches a job timeout, which is what a user naming it means.

    Raises:
        ImportTargetError: A name cannot be imported, is refused by the allowlist, or is
            not an exception class.
    """
    classes: list[type[BaseException]] = []
    for name in names:
        cls = import_object(name, allowed=allowed, role="exception")
        if not (inspect.isclass(cls) and issubclass(cls, BaseException)):
            raise ImportTargetError(name, "not an exception class")
        classes.append(cls)
        if cls is TimeoutError:
            classes.append(JobTimeoutError)
    return tuple(classes)
