"""``schedule list`` and ``plan``'s schedule section, as data and as text."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from arvel_flow.cli.schedule_render import (
    compute_view,
    format_schedule,
    format_time,
    format_utc,
    schedule_document,
)
from arvel_flow.pipeline.schedule import TriggerSpec
from arvel_flow.scheduler import Trigger
from arvel_flow.store.contracts import RunRecord, TickRecord

NOW = datetime(2027, 3, 27, 12, tzinfo=UTC).timestamp()


def nightly() -> Trigger:
    spec = TriggerSpec.model_validate(
        {"id": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "set": {"r": "eu"}}
    )
    return Trigger.of("demo", "demo.yaml", spec)


def test_next_times_are_shown_in_the_zone_and_in_utc_across_a_change() -> None:
    # Given a 02:30 Berlin trigger the day before clocks go forward
    view = compute_view(nightly(), NOW, 3)
    # Then the local times name their offset, and the skipped night fires at 03:00
    local = [format_time(at, "Europe/Berlin") for at in view.next_times]
    assert local == [
        "2027-03-28 03:00:00 CEST",
        "2027-03-29 02:30:00 CEST",
        "2027-03-30 02:30:00 CEST",
    ]
    assert format_utc(view.next_times[0]) == "2027-03-28T01:00:00Z"


def test_the_json_document_has_the_defaults_and_the_last_run_only_with_a_store() -> None:
    view = compute_view(nightly(), NOW, 1)
    [item] = schedule_document([view], with_store=False)["triggers"]
    assert (item["overlap"], item["missed"], item["set"]) == ("skip", "latest", {"r": "eu"})
    assert "last" not in item
    tick = TickRecord("demo/nightly", NOW - 100, NOW - 99, run_id="run1")
    ran = compute_view(nightly(), NOW, 1, tick, RunRecord("run1", "demo", status="failed"))
    [item] = schedule_document([ran], with_store=True)["triggers"]
    assert item["last"] == {
        "tick": format_utc(NOW - 100),
        "run_id": "run1",
        "status": "failed",
        "note": None,
    }


def test_the_table_says_never_for_a_trigger_that_never_ran() -> None:
    console = Console(width=250, record=True)
    console.print(format_schedule([compute_view(nightly(), NOW, 1)], with_store=True))
    text = console.export_text()
    assert "demo/nightly" in text
    assert "set r=eu" in text
    assert "never" in text
