"""What ``arvel-flow plan`` shows: each job's effective settings, and the traps in them.

Everything here is pure, computed from a compiled `Plan`: the backoff before each
retry (with `compute_backoff`, the function the runner uses), the worst-case time a
job can take, and warnings for settings that will surprise at run time.

The cost is bounded whatever the settings: waits are computed as runs of equal
waits, and once they stop changing (a fixed wait, the last of a list, an exponential
wait at its cap) the rest of a run is counted, not walked; only the first
`SHOWN_RETRIES` waits are listed. Settings many steps share are computed once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from arvel_flow.durations import format_duration, format_exact
from arvel_flow.queue.backoff import compute_backoff
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.plan import FanOutNode, JobNode, Plan

_NO_EXPIRY_LOCK_TTL = 3600.0
"""What `WithoutOverlapping` falls back to for a job without timeout or expire_after."""

_QUIET_WAITS = 60.0
"""Default retries that wait this long in all, or less, are not worth a warning."""

SHOWN_RETRIES = 10
"""Waits a plan lists before it summarises the rest."""

_MAX_DISTINCT_WAITS = 100_000
"""Waits computed one by one before the rest are taken to be the last retry's (the
longest, for a growing backoff): only reached through the Python API, since a file
allows at most 10,000 retries."""


@dataclass(frozen=True, slots=True)
class StepReport:
    """One job step of a plan, as ``plan`` reports it.

    Attributes:
        key: The plan key (the step id, or a path such as ``root.1.0``).
        target: The job's class or function path.
        items: Jobs a fan-out makes; None for a single job.
        settings: The effective settings after every level merged.
        waits: For each of the first `SHOWN_RETRIES` retries, the shortest and longest
            wait before it.
        more_waits: Retries after those, whose waits are not listed.
        longest_wait: The longest wait before any retry.
        worst_case: Longest time from first attempt to giving up; None if unbounded.
        warnings: Traps in these settings.
    """

    key: str
    target: str
    items: int | None
    settings: JobSettings
    waits: tuple[tuple[float, float], ...]
    more_waits: int
    longest_wait: float
    worst_case: float | None
    warnings: tuple[str, ...]


def compute_reports(plan: Plan, *, redelivery_timeout: float) -> list[StepReport]:
    """A report per job and fan-out of ``plan``, in plan order."""
    reports: list[StepReport] = []
    for node in plan.nodes.values():
        if isinstance(node, JobNode | FanOutNode):
            settings = node.job.settings
            items = len(node.items) if isinstance(node, FanOutNode) else None
            reports.append(
                StepReport(
                    key=node.key,
                    target=node.job.target,
                    items=items,
                    settings=settings,
                    waits=compute_waits(settings),
                    more_waits=max(settings.max_retries - SHOWN_RETRIES, 0),
                    longest_wait=max((wait for _, wait in _wait_runs(settings)), default=0.0),
                    worst_case=compute_worst_case(settings),
                    warnings=tuple(
                        compute_warnings(settings, redelivery_timeout=redelivery_timeout)
                    ),
                )
            )
    return reports


def compute_waits(
    settings: JobSettings, limit: int = SHOWN_RETRIES
) -> tuple[tuple[float, float], ...]:
    """(shortest, longest) wait before each of the first ``limit`` retries.

    Jitter spreads a wait over [w/2, w].
    """
    waits: list[tuple[float, float]] = []
    for count, longest in _wait_runs(settings):
        shortest = longest / 2 if settings.jitter else longest
        waits += [(shortest, longest)] * min(count, limit - len(waits))
        if len(waits) >= limit:
            break
    return tuple(waits)


def compute_worst_case(settings: JobSettings) -> float | None:
    """Longest time from dispatch until the job gives up: every attempt times out.

    A simulation of that (``arvel-flow run FILE --dry-run --fail STEP:timeout``, see
    `arvel_flow.testing.simulation`) takes exactly this long: both take their waits
    from `compute_backoff`, the simulation's jitter waiting longest, and a test keeps
    the two equal.

    Returns None when attempts have no timeout, as nothing then bounds them.
    """
    timeout = settings.timeout_seconds
    if not timeout > 0:
        return None
    elapsed = 0.0
    for count, longest in _wait_runs(settings):
        # Each retry of the run adds an attempt that times out, then the wait.
        step = timeout + longest
        if settings.retry_until is not None:
            fits = _count_within(settings.retry_until - elapsed, step, count)
            if fits < count:
                # the runner gives up rather than wait past retry_until
                return settings.delay + elapsed + (fits * step if fits else 0.0) + timeout
        elapsed += count * step
    return settings.delay + elapsed + timeout


def compute_total_wait(settings: JobSettings) -> float:
    """Longest time a failing job spends waiting between its attempts, all retries together."""
    return sum(count * wait for count, wait in _wait_runs(settings))


def describe_default_retries(settings: JobSettings) -> str | None:
    """A warning for a job left with default retries that wait over a minute in all.

    For a step where neither the file (``retry:`` on the step, its template or the
    ``defaults``) nor the job class chose its retries: Arvel's defaults (3 retries, 60 s
    apart) make a failing job look hung for minutes. None when the waits are short.
    """
    total = compute_total_wait(settings)
    if total <= _QUIET_WAITS:
        return None
    waits = {wait for _, wait in _wait_runs(settings)}
    retries = settings.max_retries
    times = "once" if retries == 1 else f"{retries} times"
    apart = f" {format_exact(waits.pop())} apart" if len(waits) == 1 and retries > 1 else ""
    return (
        f"no retry settings: a failing job retries {times}{apart} (worst case "
        f"{format_duration(total)} of waiting); set retry: on the step (or tries on the "
        "job class) to choose"
    )


def _count_within(room: float, size: float, count: int) -> int:
    """How many of ``count`` consecutive spans of ``size`` end within ``room``."""
    if not room >= 0:  # NaN too
        return 0
    if not size > 0:
        return count
    spans = room / size
    return count if spans >= count else math.floor(spans)


def _wait_runs(settings: JobSettings) -> tuple[tuple[int, float], ...]:
    """The longest wait before each retry, as runs ``(count, wait)`` of equal waits."""
    # Middleware and jitter do not change the longest waits; without them, the
    # settings many steps share are one cache key.
    return _steady_wait_runs(settings.replace(middleware=(), jitter=False))


@functools.lru_cache(maxsize=1024)
def _steady_wait_runs(settings: JobSettings) -> tuple[tuple[int, float], ...]:
    retries = settings.max_retries
    steady_from = len(settings.backoff) if isinstance(settings.backoff, tuple) else 1
    runs: list[list[float]] = []
    attempt = 0
    while attempt < min(retries, _MAX_DISTINCT_WAITS):
        attempt += 1
        wait = compute_backoff(attempt, settings)
        if runs and runs[-1][1] == wait:
            runs[-1][0] += 1
            if attempt > steady_from:
                # Two equal waits past the list: a fixed wait, the list's last, or a
                # power at its cap (or at zero); every later wait is the same.
                break
        else:
            runs.append([1, wait])
    if attempt < retries:
        runs.append([retries - attempt, compute_backoff(retries, settings)])
    return tuple((int(count), wait) for count, wait in runs)


def compute_warnings(settings: JobSettings, *, redelivery_timeout: float) -> list[str]:
    """Settings that will surprise at run time."""
    warnings = _timeout_warnings(settings, redelivery_timeout)
    warnings += _retry_until_warnings(settings)
    warnings += _lock_warnings(settings)
    return warnings


def _timeout_warnings(settings: JobSettings, redelivery: float) -> list[str]:
    timeout = settings.timeout_seconds
    if timeout <= 0:
        return [
            "no timeout: on a broker that redelivers unacknowledged jobs (after "
            f"{format_exact(redelivery)}), an attempt running longer runs twice"
        ]
    if timeout > redelivery:
        return [
            f"timeout {format_exact(timeout)} is longer than the broker's redelivery timeout "
            f"({format_exact(redelivery)}): a second copy may start while the first still runs"
        ]
    return []


def _retry_until_warnings(settings: JobSettings) -> list[str]:
    retry_until = settings.retry_until
    if retry_until is None or not settings.max_retries:
        return []
    elapsed = 0.0
    retries = 0
    for count, longest in _wait_runs(settings):
        shortest = longest / 2 if settings.jitter else longest
        fits = _count_within(retry_until - elapsed, shortest, count)
        if fits < count:
            retry = retries + fits + 1
            return [
                f"retry_until {format_exact(retry_until)} passes before the backoff "
                f"of retry {retry} ends: at most {retry - 1} of {settings.max_retries} retries "
                "can run"
            ]
        elapsed += count * shortest
        retries += count
    return []


def _lock_warnings(settings: JobSettings) -> list[str]:
    warnings: list[str] = []
    timeout = settings.timeout_seconds
    for ref in settings.middleware:
        if ref.use != "without_overlapping":
            continue
        expire = ref.kwargs.get("expire_after")
        key = ref.kwargs.get("key")
        if expire is None and timeout <= 0:
            warnings.append(
                f"lock {key!r} has no expire_after and the job no timeout: if its worker dies, the "
                f"lock is held for {format_exact(_NO_EXPIRY_LOCK_TTL)}"
            )
        elif expire is not None and timeout > 0 and float(expire) < timeout:
            warnings.append(
                f"lock {key!r} expires after {format_exact(float(expire))}, before the timeout "
                f"({format_exact(timeout)}): two copies may overlap"
            )
    if settings.unique_id is not None and not settings.unique_for:
        warnings.append("unique_id has no effect without unique_for")
    worst = compute_worst_case(settings)
    if (
        settings.unique_for
        and not settings.unique_until_processing
        and (worst is None or worst > settings.unique_for)
    ):
        took = "may run without bound" if worst is None else f"can take {format_duration(worst)}"
        warnings.append(
            f"the unique lock expires after {format_exact(settings.unique_for)} but the job "
            f"{took}: a duplicate may be dispatched meanwhile"
        )
    return warnings
