"""The ``schedule:`` section: its rules, its defaults, its daylight-saving warnings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arvel_flow.errors import ConfigError
from arvel_flow.pipeline.loader import parse_spec
from arvel_flow.pipeline.schedule import (
    DEFAULT_MISSED,
    DEFAULT_OVERLAP,
    TriggerSpec,
    schedule_warnings,
)

BASE = """\
version: 1
name: demo
vars: {region: us}
pipeline: {job: myapp.jobs:Import}
schedule:
"""


def messages(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_spec(BASE + text, file="demo.yaml")
    return [issue.format() for issue in caught.value.issues]


def test_defaults_are_utc_skip_overlap_and_latest_missed() -> None:
    spec = parse_spec(BASE + "  - {id: t, cron: '@daily'}\n")
    [trigger] = spec.schedule
    assert (trigger.timezone, trigger.overlap, trigger.missed) == ("UTC", "skip", "latest")
    assert (DEFAULT_OVERLAP, DEFAULT_MISSED) == ("skip", "latest")


CRON_FIELDS = "a cron expression has 5 fields"


@pytest.mark.parametrize(
    ("trigger", "anchor", "expected"),
    [
        ("{id: t}", "{", "schedule[0]: a trigger takes 'cron' or 'every'"),
        ("{id: t, cron: '@daily', every: 1m}", "{", "schedule[0]: a trigger takes 'cron' or"),
        ("{id: t, cron: '* * * *'}", "'", f"schedule[0].cron: {CRON_FIELDS}"),
        ("{id: t, cron: '0 0 * * * *'}", "'", f"schedule[0].cron: {CRON_FIELDS}"),
        ("{id: t, cron: '@often'}", "'", f"schedule[0].cron: {CRON_FIELDS}"),
        ("{id: t, cron: '0 0 32 * *'}", "'", "schedule[0].cron: bad day-of-month field"),
        ("{id: t, every: 0s}", "0s", "schedule[0].every"),
        ("{id: t, cron: '@daily', overlap: wait}", "wait", "schedule[0].overlap"),
        ("{id: t, cron: '@daily', timezone: CET+1}", "CET", "schedule[0].timezone: unknown"),
    ],
)
def test_a_bad_trigger_is_reported_at_its_place(trigger: str, anchor: str, expected: str) -> None:
    line = f"  - {trigger}"
    [message] = messages(f"{line}\n")
    column = line.index(anchor) + 1
    assert message.startswith(f"demo.yaml:6:{column}: error: {expected}"), message


def test_a_repeated_trigger_id_is_an_error() -> None:
    found = messages("  - {id: t, cron: '@daily'}\n  - {id: t, every: 1m}\n")
    assert found == ["demo.yaml:7:10: error: schedule[1].id: trigger id 't' is used twice"]


def test_no_warning_for_times_that_daylight_saving_leaves_alone() -> None:
    trigger = TriggerSpec.model_validate(
        {"id": "t", "cron": "0 3 * * *", "timezone": "Europe/Berlin"}
    )
    assert schedule_warnings([trigger], datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_a_skipped_and_a_repeated_local_time_warn() -> None:
    # Given 02:30 and 01:30 in New York, where 02:00-03:00 is skipped in March and
    # 01:00-02:00 happens twice in November
    trigger = TriggerSpec.model_validate(
        {"id": "t", "cron": "30 1,2 * * *", "timezone": "America/New_York"}
    )
    found = [p.message for p in schedule_warnings([trigger], datetime(2027, 1, 1, tzinfo=UTC))]
    # Then each day warns once, saying what happens
    assert found == [
        "on 2027-03-14 clocks go forward: 02:30 America/New_York does not exist: it fires at "
        "03:00, when the gap ends",
        "on 2027-11-07 clocks go back: 01:30 America/New_York happens twice: it fires once, "
        "the first time",
    ]
