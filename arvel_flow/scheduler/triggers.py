"""Triggers as pure functions: next fire times, and which ticks are due now.

Times are float seconds since the epoch (UTC), as everywhere inside; a cron trigger is
computed in its time zone by cronsim (Debian cron's rules on daylight-saving days), an
interval trigger on the epoch grid (``every: 30s`` fires at :00 and :30 of each minute,
whichever process computes it, so that several schedulers agree on the tick times).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim

from arvel_flow.pipeline.schedule import (
    Missed,
    Overlap,
    TriggerSpec,
    expand_cron,
    parse_timezone,
)

MISSED_GRACE = 60.0
"""A tick is on time until the trigger's next tick, and at most this many seconds late (a
scheduler starting, a busy event loop); an older one is missed: ``missed`` decides."""

MAX_CATCH_UP = 1_000
"""Most missed ticks ``missed: all`` starts at once; the older ones are dropped (logged)."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """One trigger of one pipeline file, ready to compute with."""

    pipeline: str
    """The pipeline's name."""
    id: str
    source: str
    """The pipeline file."""
    cron: str | None
    every: float | None
    timezone: str
    set: dict[str, object]
    overlap: Overlap
    missed: Missed

    @property
    def key(self) -> str:
        """Where the store keeps this trigger's ticks: ``pipeline/trigger``."""
        return f"{self.pipeline}/{self.id}"

    @classmethod
    def of(cls, pipeline: str, source: str, spec: TriggerSpec) -> Trigger:
        """A trigger from its spec in the file ``source`` of the pipeline ``pipeline``."""
        return cls(
            pipeline,
            spec.id,
            source,
            spec.cron,
            spec.every,
            spec.timezone,
            dict(spec.set),
            spec.overlap,
            spec.missed,
        )

    def describe(self) -> str:
        """``cron "0 3 * * *" Europe/Berlin`` or ``every 30s``."""
        if self.cron is not None:
            return f'cron "{self.cron}" {self.timezone}'
        assert self.every is not None
        return f"every {self.every:g}s"


def compute_next(trigger: Trigger, after: float) -> float:
    """The first fire time strictly after ``after``."""
    if trigger.every is not None:
        return (math.floor(after / trigger.every) + 1) * trigger.every
    assert trigger.cron is not None
    zone = parse_timezone(trigger.timezone)
    start = datetime.fromtimestamp(after, UTC).astimezone(zone)
    # cronsim starts from whole seconds and returns times after its start.
    return next(CronSim(expand_cron(trigger.cron), start)).timestamp()


def iter_fire_times(trigger: Trigger, after: float) -> Iterator[float]:
    """Fire times after ``after``, in order, without end."""
    at = after
    while True:
        at = compute_next(trigger, at)
        yield at


def compute_grace(trigger: Trigger) -> float:
    """How late a tick may start and still be on time: until the next, at most a minute."""
    return MISSED_GRACE if trigger.every is None else min(MISSED_GRACE, trigger.every)


def compute_due(trigger: Trigger, last: float, now: float) -> list[float]:
    """The ticks to start now: those in ``(last, now]`` that the ``missed`` policy keeps.

    ``last`` is the store's last claimed tick of the trigger (or, for a trigger never
    claimed, when the scheduler first saw it). A tick at most `compute_grace` old is on
    time and always kept; older ones are missed: ``skip`` drops them, ``latest`` keeps
    the newest of them when no tick is on time, ``all`` keeps them all (the newest
    `MAX_CATCH_UP`).
    """
    ticks: list[float] = []
    if trigger.every is not None:  # no need to walk a long downtime tick by tick
        last = max(last, now - trigger.every * (MAX_CATCH_UP + 1) - MISSED_GRACE)
    for at in iter_fire_times(trigger, last):
        if at > now:
            break
        ticks.append(at)
        if len(ticks) > MAX_CATCH_UP:
            del ticks[0]
    grace = compute_grace(trigger)
    on_time = [at for at in ticks if now - at <= grace]
    missed = [at for at in ticks if now - at > grace]
    if trigger.missed == "all":
        return missed + on_time
    if trigger.missed == "latest" and missed and not on_time:
        return missed[-1:]
    return on_time
