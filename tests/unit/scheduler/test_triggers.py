"""Fire times and due ticks: pure functions, table-tested, no clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from arvel_flow.pipeline.schedule import TriggerSpec
from arvel_flow.scheduler.triggers import (
    MAX_CATCH_UP,
    MISSED_GRACE,
    Trigger,
    compute_due,
    compute_next,
    iter_fire_times,
)

BERLIN = ZoneInfo("Europe/Berlin")


def trigger(**keys: object) -> Trigger:
    return Trigger.of("demo", "demo.yaml", TriggerSpec.model_validate({"id": "t", **keys}))


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def local(at: float, zone: ZoneInfo = BERLIN) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M %Z")


def next_times(t: Trigger, after: float, count: int) -> list[float]:
    times = iter_fire_times(t, after)
    return [next(times) for _ in range(count)]


def test_a_cron_time_skipped_by_the_clocks_going_forward_fires_when_the_gap_ends() -> None:
    # Given 02:30 Berlin time; on 2027-03-28 clocks jump from 02:00 to 03:00
    nightly = trigger(cron="30 2 * * *", timezone="Europe/Berlin")
    # When the fire times around that night are computed
    times = next_times(nightly, utc(2027, 3, 26, 12), 3)
    # Then the day of the gap fires once, at 03:00 local, and the next day at 02:30
    assert [local(at) for at in times] == [
        "2027-03-27 02:30 CET",
        "2027-03-28 03:00 CEST",
        "2027-03-29 02:30 CEST",
    ]


def test_a_cron_time_repeated_by_the_clocks_going_back_fires_once() -> None:
    # Given 02:30 Berlin time; on 2027-10-31 02:00-03:00 happens twice
    nightly = trigger(cron="30 2 * * *", timezone="Europe/Berlin")
    times = next_times(nightly, utc(2027, 10, 30, 12), 2)
    # Then it fires once that night, the first time (summer time), then next day
    assert [local(at) for at in times] == ["2027-10-31 02:30 CEST", "2027-11-01 02:30 CET"]
    assert times[1] - times[0] == 24 * 3600 + 3600


def test_an_hourly_cron_follows_real_hours_across_the_change() -> None:
    # Given @hourly in Berlin across the night clocks go back
    hourly = trigger(cron="@hourly", timezone="Europe/Berlin")
    times = next_times(hourly, utc(2027, 10, 30, 23, 30), 4)
    # Then it fires every real hour, the repeated hour too (cronsim: a wildcard hour)
    assert [b - a for a, b in itertools.pairwise(times)] == [3600.0] * 3


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        # the 31st: months without one are skipped
        ("0 0 31 * *", (2027, 1, 31, 12), ["2027-03-31", "2027-05-31", "2027-07-31"]),
        # the last day of each month, leap year included
        ("0 0 L * *", (2028, 1, 31, 12), ["2028-02-29", "2028-03-31", "2028-04-30"]),
        # the 29th of February: leap years only
        ("0 0 29 2 *", (2027, 1, 1), ["2028-02-29", "2032-02-29", "2036-02-29"]),
    ],
)
def test_cron_month_ends(cron: str, after: tuple[int, ...], expected: list[str]) -> None:
    times = next_times(trigger(cron=cron), utc(*after), 3)
    assert [datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d") for at in times] == expected


def test_an_interval_fires_on_the_epoch_grid() -> None:
    # Given every 30s; Then every scheduler computes the same ticks, whatever "now" is
    often = trigger(every="30s")
    assert compute_next(often, 1_000_000_000.0) == 1_000_000_020.0
    assert compute_next(often, 1_000_000_020.0) == 1_000_000_050.0
    assert compute_next(often, 1_000_000_031.5) == 1_000_000_050.0


def test_an_interval_ignores_daylight_saving() -> None:
    hourly = trigger(every="1h", timezone="Europe/Berlin")
    times = next_times(hourly, utc(2027, 3, 28, 0, 30), 3)
    assert [b - a for a, b in itertools.pairwise(times)] == [3600.0, 3600.0]


T = 1_800_000_000.0  # on the grid of every: 60s


DAY = 86400.0
LAST = utc(2027, 6, 1, 3)


@pytest.mark.parametrize(
    ("missed", "expected"),
    [
        ("skip", []),
        ("latest", [LAST + 3 * DAY]),
        ("all", [LAST + DAY, LAST + 2 * DAY, LAST + 3 * DAY]),
    ],
)
def test_ticks_missed_while_no_scheduler_ran(missed: str, expected: list[float]) -> None:
    # Given a 03:00 trigger last run on June 1st, and no scheduler until June 4th noon
    t = trigger(cron="0 3 * * *", missed=missed)
    # When a scheduler comes back
    due = compute_due(t, LAST, LAST + 3 * DAY + 9 * 3600)
    # Then the policy decides what runs
    assert due == expected


def test_an_interval_always_has_a_tick_on_time() -> None:
    # Given every minute, and ten minutes without a scheduler
    # Then skip runs the current tick only; all runs the ten
    assert compute_due(trigger(every="60s", missed="skip"), T, T + 630) == [T + 600]
    assert len(compute_due(trigger(every="60s", missed="all"), T, T + 630)) == 10


def test_a_tick_on_time_runs_whatever_the_missed_policy() -> None:
    for missed in ("skip", "latest", "all"):
        t = trigger(every="60s", missed=missed)
        assert compute_due(t, T, T + 60.5) == [T + 60]


def test_latest_runs_the_newest_missed_tick_only_when_none_is_on_time() -> None:
    t = trigger(every="60s", missed="latest")
    # three ticks missed, then one on time: the on-time one makes up for them
    assert compute_due(t, T, T + 240.5) == [T + 240]
    # a late start within a minute is on time for a cron trigger
    daily = trigger(cron="0 3 * * *", missed="skip")
    assert compute_due(daily, LAST - DAY, LAST + MISSED_GRACE) == [LAST]


def test_a_short_interval_is_late_after_one_period() -> None:
    # Given every 1s: a tick 1.5 s late is missed (the next one is due)
    t = trigger(every="1s", missed="skip")
    assert compute_due(t, T, T + 2.5) == [T + 2]


def test_all_catches_up_at_most_max_catch_up_ticks() -> None:
    t = trigger(every="1s", missed="all")
    due = compute_due(t, T, T + 10 * MAX_CATCH_UP)
    assert len(due) == MAX_CATCH_UP
    assert due[-1] == T + 10 * MAX_CATCH_UP
