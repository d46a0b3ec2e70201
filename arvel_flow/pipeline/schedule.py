"""The ``schedule:`` section: when a pipeline runs on its own, as Pydantic models.

A trigger is a 5-field cron expression (or a macro such as ``@daily``) in an IANA time
zone, or an interval (``every: 30s``). Cron expressions are parsed by cronsim, not by
us: it mimics Debian cron on daylight-saving days (a local time that does not exist
fires at the first minute after the gap; a local time that happens twice fires once,
the first time). `check_schedule` finds what needs the whole file (an unknown variable
in ``set:``, a repeated trigger id); `schedule_warnings` names the daylight-saving days
on which a trigger's local time is skipped or repeated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from arvel_flow.pipeline.fields import STEP_ID_PATTERN, PositiveDuration
from arvel_flow.pipeline.policies import SpecModel
from arvel_flow.pipeline.problems import Problem, did_you_mean

CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The macros of Vixie cron, as the 5-field expressions they stand for."""

Overlap = Literal["skip", "allow", "queue"]
Missed = Literal["skip", "latest", "all"]
DEFAULT_TIMEZONE = "UTC"
DEFAULT_OVERLAP: Overlap = "skip"
DEFAULT_MISSED: Missed = "latest"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def expand_cron(expression: str) -> str:
    """The 5-field form of ``expression`` (a macro expanded; anything else as it is)."""
    stripped = expression.strip()
    return CRON_MACROS.get(stripped.lower(), stripped)


def parse_cron(expression: str) -> CronSim:
    """A cronsim iterator for ``expression``, to check it or read its fields.

    Raises:
        ValueError: Not 5 fields (or a macro), or a field cronsim rejects.
    """
    expanded = expand_cron(expression)
    if len(expanded.split()) != 5:
        macros = ", ".join(CRON_MACROS)
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day month weekday) or is one of {macros}"
        )
    try:
        return CronSim(expanded, _EPOCH)
    except CronSimError as error:
        raise ValueError(f"{str(error).lower()} field in {expression!r}") from None


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name``. Raises `ValueError` when the system does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)"
        ) from None


class TriggerSpec(SpecModel):
    """One trigger: when runs of the pipeline start on their own."""

    id: str = Field(pattern=STEP_ID_PATTERN, description="The trigger's id, unique in the file.")
    cron: str | None = Field(
        None,
        description="A 5-field cron expression, or @yearly, @monthly, @weekly, @daily, @hourly.",
    )
    every: PositiveDuration | None = Field(
        None, description="An interval instead of cron: 30s, 10m, 2h (counted from the epoch)."
    )
    timezone: str = Field(
        DEFAULT_TIMEZONE, description="The IANA time zone cron times are in (default UTC)."
    )
    set: dict[str, Any] = Field(
        default_factory=dict, description="Values for vars: of the runs this trigger starts."
    )
    overlap: Overlap = Field(
        DEFAULT_OVERLAP,
        description="A tick while a run of this trigger still runs: skip it (default), allow "
        "a second run, or queue it until the first ends.",
    )
    missed: Missed = Field(
        DEFAULT_MISSED,
        description="Ticks missed while no scheduler ran: skip them, run the latest once "
        "(default), or run all of them in order.",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except ValueError as error:
                raise PydanticCustomError("cron", "{reason}", {"reason": str(error)}) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            parse_timezone(value)
        except ValueError as error:
            raise PydanticCustomError("timezone", "{reason}", {"reason": str(error)}) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> TriggerSpec:
        if (self.cron is None) == (self.every is None):
            raise PydanticCustomError("trigger", "a trigger takes 'cron' or 'every' (one of them)")
        return self


def check_schedule(data: dict[str, Any]) -> list[Problem]:
    """Repeated trigger ids, and ``set:`` keys that are not variables of the file."""
    schedule = data.get("schedule")
    if not isinstance(schedule, list):
        return []
    declared = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    assert isinstance(declared, dict)
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, trigger in enumerate(schedule):
        if not isinstance(trigger, dict):
            continue
        trigger_id = trigger.get("id")
        if isinstance(trigger_id, str):
            if trigger_id in seen:
                problems.append(
                    Problem(("schedule", index, "id"), f"trigger id {trigger_id!r} is used twice")
                )
            seen.add(trigger_id)
        overrides = trigger.get("set")
        if not isinstance(overrides, dict):
            continue
        for name in overrides:
            if name not in declared:
                hint = did_you_mean(str(name), declared) or "; declare it under vars:"
                problems.append(
                    Problem(
                        ("schedule", index, "set", name),
                        f"unknown variable {name!r}{hint}",
                        at="key",
                    )
                )
    return problems


def schedule_warnings(triggers: list[TriggerSpec], now: datetime) -> list[Problem]:
    """Cron triggers whose local time is skipped or repeated on a daylight-saving day.

    Looks a year ahead of ``now``. What happens then is cronsim's (Debian cron's)
    rule: a skipped time fires at the first minute after the gap, a repeated time
    fires once, the first time.
    """
    problems: list[Problem] = []
    for index, trigger in enumerate(triggers):
        if trigger.cron is None:
            continue
        zone = parse_timezone(trigger.timezone)
        cron = parse_cron(trigger.cron)
        for day, change in _transition_days(zone, now):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    local = datetime(day.year, day.month, day.day, hour, minute)
                    kind = _oddity(local, zone)
                    if kind is None:
                        continue
                    what = (
                        f"does not exist: it fires at {_gap_end(local, zone):%H:%M}, when the "
                        "gap ends"
                        if kind == "gap"
                        else "happens twice: it fires once, the first time"
                    )
                    problems.append(
                        Problem(
                            ("schedule", index, "cron"),
                            f"on {day:%Y-%m-%d} {change}: {local:%H:%M} {trigger.timezone} {what}",
                        )
                    )
                    break
                else:
                    continue
                break
    return problems


def _transition_days(zone: ZoneInfo, now: datetime) -> list[tuple[datetime, str]]:
    """The days of the coming year on which ``zone`` changes its UTC offset."""
    days: list[tuple[datetime, str]] = []
    start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for offset in range(367):
        day = start + timedelta(days=offset)
        before = day.replace(tzinfo=zone).utcoffset()
        after = (day + timedelta(hours=23, minutes=59)).replace(tzinfo=zone).utcoffset()
        if before != after and before is not None and after is not None:
            days.append((day, "clocks go forward" if after > before else "clocks go back"))
    return days


def _oddity(local: datetime, zone: ZoneInfo) -> Literal["gap", "fold"] | None:
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return "gap" if round_trip != local else "fold"


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The first local minute after ``local`` that exists (cronsim's choice in a gap)."""
    while _oddity(local, zone) == "gap":
        local += timedelta(minutes=1)
    return local
