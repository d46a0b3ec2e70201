"""What ``arvel-flow plan`` shows: each job's effective settings, and the traps in them.

Everything here is pure, computed from a compiled `Plan`: the backoff before each
retry (with `compute_backoff`, the function the runner uses), the worst-case time a
job can take, and warnings for settings that will surprise at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from arvel_flow.queue.backoff import compute_backoff
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.plan import FanOutNode, JobNode, Plan

_NO_EXPIRY_LOCK_TTL = 3600.0
"""What `WithoutOverlapping` falls back to for a job without timeout or expire_after."""


@dataclass(frozen=True, slots=True)
class StepReport:
    """One job step of a plan, as ``plan`` reports it.

    Attributes:
        key: The plan key (the step id, or a path such as ``root.1.0``).
        target: The job's class or function path.
        items: Jobs a fan-out makes; None for a single job.
        settings: The effective settings after every level merged.
        waits: For each retry, the shortest and longest wait before it.
        worst_case: Longest time from first attempt to giving up; None if unbounded.
        warnings: Traps in these settings.
    """

    key: str
    target: str
    items: int | None
    settings: JobSettings
    waits: tuple[tuple[float, float], ...]
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
                    worst_case=compute_worst_case(settings),
                    warnings=tuple(
                        compute_warnings(settings, redelivery_timeout=redelivery_timeout)
                    ),
                )
            )
    return reports


def compute_waits(settings: JobSettings) -> tuple[tuple[float, float], ...]:
    """(shortest, longest) wait before each retry; jitter spreads a wait over [w/2, w]."""
    steady = settings.replace(jitter=False)
    waits = []
    for attempt in range(1, settings.max_retries + 1):
        longest = compute_backoff(attempt, steady)
        waits.append((longest / 2 if settings.jitter else longest, longest))
    return tuple(waits)


def compute_worst_case(settings: JobSettings) -> float | None:
    """Longest time from dispatch until the job gives up: every attempt times out.

    Returns None when attempts have no timeout, as nothing then bounds them.
    """
    if settings.timeout_seconds <= 0:
        return None
    elapsed = 0.0
    for _, longest in compute_waits(settings):
        elapsed += settings.timeout_seconds
        if settings.retry_until is not None and elapsed + longest > settings.retry_until:
            return settings.delay + elapsed  # the runner gives up rather than wait past retry_until
        elapsed += longest
    return settings.delay + elapsed + settings.timeout_seconds


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
            f"{format_seconds(redelivery)}), an attempt running longer runs twice"
        ]
    if timeout > redelivery:
        return [
            f"timeout {format_seconds(timeout)} is longer than the broker's redelivery timeout "
            f"({format_seconds(redelivery)}): a second copy may start while the first still runs"
        ]
    return []


def _retry_until_warnings(settings: JobSettings) -> list[str]:
    if settings.retry_until is None or not settings.max_retries:
        return []
    elapsed = 0.0
    for retry, (shortest, _) in enumerate(compute_waits(settings), 1):
        elapsed += shortest
        if elapsed > settings.retry_until:
            return [
                f"retry_until {format_seconds(settings.retry_until)} passes before the backoff "
                f"of retry {retry} ends: at most {retry - 1} of {settings.max_retries} retries "
                "can run"
            ]
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
                f"lock is held for {format_seconds(_NO_EXPIRY_LOCK_TTL)}"
            )
        elif expire is not None and timeout > 0 and float(expire) < timeout:
            warnings.append(
                f"lock {key!r} expires after {format_seconds(float(expire))}, before the timeout "
                f"({format_seconds(timeout)}): two copies may overlap"
            )
    if settings.unique_id is not None and not settings.unique_for:
        warnings.append("unique_id has no effect without unique_for")
    worst = compute_worst_case(settings)
    if (
        settings.unique_for
        and not settings.unique_until_processing
        and (worst is None or worst > settings.unique_for)
    ):
        took = "may run without bound" if worst is None else f"can take {format_seconds(worst)}"
        warnings.append(
            f"the unique lock expires after {format_seconds(settings.unique_for)} but the job "
            f"{took}: a duplicate may be dispatched meanwhile"
        )
    return warnings


def format_seconds(seconds: float) -> str:
    """``90`` → ``1m30s``; ``0.5`` → ``0.5s``."""
    if seconds < 60:
        return f"{seconds:g}s"
    parts = []
    remaining = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
