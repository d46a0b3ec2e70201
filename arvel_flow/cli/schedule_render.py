"""Triggers for people and scripts: ``schedule list`` and the schedule part of ``plan``.

Pure functions: a `Trigger` (and its last tick, from a store) to data or a renderable.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arvel_flow.pipeline.schedule import TriggerSpec, parse_timezone
from arvel_flow.scheduler.triggers import Trigger, iter_fire_times
from arvel_flow.store.contracts import RunRecord, TickRecord


@dataclass(frozen=True, slots=True)
class TriggerView:
    """A trigger with its next fire times and, when a store was read, its last tick."""

    trigger: Trigger
    next_times: tuple[float, ...]
    last: TickRecord | None = None
    last_run: RunRecord | None = None


def compute_view(
    trigger: Trigger,
    now: float,
    count: int,
    last: TickRecord | None = None,
    last_run: RunRecord | None = None,
) -> TriggerView:
    """``trigger``'s next ``count`` fire times after ``now``."""
    times = tuple(itertools.islice(iter_fire_times(trigger, now), count))
    return TriggerView(trigger, times, last, last_run)


def format_time(at: float, zone: str) -> str:
    """``2026-12-04 03:00:00 CET`` in ``zone``."""
    return datetime.fromtimestamp(at, parse_timezone(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def format_utc(at: float) -> str:
    """``2026-12-04T02:00:00Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_document(views: Sequence[TriggerView], *, with_store: bool) -> dict[str, Any]:
    """``schedule list --format json``: every trigger, its settings, its next times."""
    items = []
    for view in views:
        trigger = view.trigger
        item: dict[str, Any] = {
            "pipeline": trigger.pipeline,
            "id": trigger.id,
            "source": trigger.source,
            "cron": trigger.cron,
            "every": trigger.every,
            "timezone": trigger.timezone,
            "set": trigger.set,
            "overlap": trigger.overlap,
            "missed": trigger.missed,
            "next": [
                {"local": format_time(at, trigger.timezone), "utc": format_utc(at), "at": at}
                for at in view.next_times
            ],
        }
        if with_store:
            item["last"] = _last_document(view)
        items.append(item)
    return {"triggers": items}


def _last_document(view: TriggerView) -> dict[str, Any] | None:
    if view.last is None:
        return None
    return {
        "tick": format_utc(view.last.at),
        "run_id": view.last.run_id,
        "status": None if view.last_run is None else view.last_run.status,
        "note": view.last.note,
    }


def format_schedule(views: Sequence[TriggerView], *, with_store: bool) -> RenderableType:
    """``schedule list``: one row per trigger, its policies and next fire times."""
    if not views:
        return Text("no triggers (no file has a schedule: section)")
    columns = ["trigger", "when", "overlap", "missed", "next (local / UTC)"]
    table = Table(*columns, *(["last run"] if with_store else []))
    for view in views:
        trigger = view.trigger
        times = "\n".join(
            f"{format_time(at, trigger.timezone)} / {format_utc(at)}" for at in view.next_times
        )
        when = trigger.describe()
        if trigger.set:
            when += "\nset " + ", ".join(f"{k}={v}" for k, v in trigger.set.items())
        row = [trigger.key, when, trigger.overlap, trigger.missed, times]
        if with_store:
            row.append(_format_last(view))
        table.add_row(*row)
    return table


def _format_last(view: TriggerView) -> str:
    if view.last is None:
        return "never"
    status = "not started" if view.last_run is None else view.last_run.status
    text = f"{view.last.run_id or '-'} {status} (tick {format_utc(view.last.at)})"
    return f"{text}\n{view.last.note}" if view.last.note else text


PLAN_COUNT = 3
"""Next fire times ``plan`` shows per trigger."""


def format_triggers(pipeline: str, source: str, specs: Sequence[TriggerSpec]) -> RenderableType:
    """``plan``'s schedule section: each trigger, defaults filled in, its next fire times."""
    now = time.time()
    views = [compute_view(Trigger.of(pipeline, source, spec), now, PLAN_COUNT) for spec in specs]
    table = format_schedule(views, with_store=False)
    return Group(Text("schedule (arvel-flow scheduler)", style="bold"), table)
