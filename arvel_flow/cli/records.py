"""Pure renderings of stored runs and failed jobs, as text (rich) and JSON documents."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arvel_flow.cli.durations import format_duration
from arvel_flow.cli.ids import short_ids
from arvel_flow.cli.progress import compute_view, format_tree
from arvel_flow.cli.summary import compute_rows, format_counts, format_summary_table
from arvel_flow.queue.plan import Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.store.contracts import FailedJob, RunOwner, RunRecord, StepRecord
from arvel_flow.store.urls import mask_url


def format_when(at: float | None) -> str:
    """An epoch time as a local date and time (``2026-12-03 14:05:09``); None as ""."""
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def run_document(run: RunRecord) -> dict[str, Any]:
    """A run as JSON-ready data."""
    return {
        "run_id": run.run_id,
        "name": run.name,
        "status": run.status,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "source": run.source,
        "trigger": run.trigger,
        "scheduled_at": run.scheduled_at,
    }


def status_document(
    run: RunRecord, result: BatchResult, owner: RunOwner | None = None
) -> dict[str, Any]:
    """``status --format json``: the run, its owner, its progress and its jobs by state."""
    finished, total = result.progress
    return {
        **run_document(run),
        "owner": None
        if owner is None
        else {"host": owner.host, "pid": owner.pid, "seen_at": owner.seen_at},
        "progress": {"finished": finished, "total": total},
        "counts": result.counts,
        "succeeded": list(result.succeeded),
        "failed": dict(result.failed),
        "cancelled": list(result.cancelled),
        "skipped": list(result.skipped),
        "duplicates": list(result.duplicates),
        "pending": list(result.pending),
    }


def format_status(
    run: RunRecord,
    plan: Plan,
    result: BatchResult,
    records: Mapping[str, StepRecord],
    *,
    resume_command: str | None = None,
    owner: RunOwner | None = None,
    now: float = 0.0,
) -> RenderableType:
    """``status``: a header, the pipeline tree marked with states, and the step table.

    An interrupted run's header says how to resume it (``resume_command``, or the bare
    ``--resume`` command when not given); a running one's names its live ``owner``
    (as of ``now``), whose lease a resume must take over with ``--force``.
    """
    header = Text.assemble(
        (f"run {run.run_id}", "bold"),
        f"  {run.name}  ",
        (
            run.status,
            "green" if run.status == "succeeded" else "red" if run.status == "failed" else "cyan",
        ),
        f"  {format_counts(result)}  started {format_when(run.created_at)}",
    )
    if run.trigger is not None:
        header.append(
            f"\nstarted by trigger {run.trigger} for its tick {format_when(run.scheduled_at)}"
        )
    if run.status in ("interrupted", "running"):
        command = resume_command or f"arvel-flow run --resume {run.run_id}"
        hint = "resume with" if run.status == "interrupted" else "if its process died, resume with"
        if owner is not None:
            seen = max(now - owner.seen_at, 0)
            header.append(f"\nexecuted by pid {owner.pid} on {owner.host}", style="cyan")
            header.append(f" (last seen {format_duration(seen)} ago)", style="cyan")
            command += " --force"
        header.append(f"\n{hint}: {command}", style="yellow")
    view = compute_view(plan, records, run.status)
    return Group(header, format_tree(plan, view), format_summary_table(compute_rows(plan, records)))


def format_runs(
    runs: Sequence[RunRecord], *, store: str = "", full_ids: bool = False
) -> RenderableType:
    """``runs``: one row per run, the most recent first; ids cut short unless ``full_ids``.

    With no runs, a line naming the ``store`` read.
    """
    if not runs:
        return Text(f"no runs in the store {mask_url(store)}" if store else "no runs")
    shown = {r.run_id: r.run_id for r in runs} if full_ids else short_ids([r.run_id for r in runs])
    triggered = any(run.trigger is not None for run in runs)
    columns = ["run", "pipeline", "status", "started", "finished", "source"]
    table = Table(*columns, *(["trigger"] if triggered else []))
    for run in runs:
        row = [
            shown[run.run_id],
            run.name,
            run.status,
            format_when(run.created_at),
            format_when(run.finished_at),
            run.source or "",
        ]
        if triggered:
            row.append(run.trigger or "")
        table.add_row(*row)
    return table


def failed_document(record: FailedJob, *, with_traceback: bool = True) -> dict[str, Any]:
    """A failed job as JSON-ready data: a secret reference shown as its template, a
    secret given in Python as ``***`` (the record holds no secret value to show)."""
    from arvel_flow.queue.redaction import shown_params

    document: dict[str, Any] = {
        "id": record.id,
        "job": record.job,
        "queue": record.queue,
        "run_id": record.run_id,
        "step": record.step,
        "exception": record.exception,
        "message": record.message,
        "attempts": record.attempts,
        "failed_at": record.failed_at,
        "payload": shown_params(record.payload),
    }
    if with_traceback:
        document["traceback"] = record.traceback
    return document


def format_failed_list(
    records: Sequence[FailedJob],
    *,
    store: str = "",
    run_id: str | None = None,
    full_ids: bool = False,
) -> RenderableType:
    """``failed list``: one row per failed job; ids cut short unless ``full_ids``.

    With none, a line naming the ``store`` read (and the run asked for).
    """
    if not records:
        of_run = f" of run {run_id}" if run_id else ""
        where = f" in the store {mask_url(store)}" if store else ""
        return Text(f"no failed jobs{of_run}{where}")
    ids = [r.id for r in records]
    shown = dict(zip(ids, ids, strict=True)) if full_ids else short_ids(ids)
    runs = [r.run_id for r in records if r.run_id]
    shown_runs = dict(zip(runs, runs, strict=True)) if full_ids else short_ids(runs)
    table = Table("id", "run", "job", "step", "exception", "attempts", "failed at")
    for record in records:
        table.add_row(
            shown[record.id],
            shown_runs.get(record.run_id or "", ""),
            record.job,
            record.step or "",
            Text(f"{record.exception}: {record.message}", style="red"),
            str(record.attempts),
            format_when(record.failed_at),
        )
    return table


def format_failed_detail(record: FailedJob) -> RenderableType:
    """``failed show``: every field (the time as a date, the payload as JSON), then the
    traceback. Values are shown as text, never read as rich markup."""
    table = Table.grid(padding=(0, 2))
    for key, value in failed_document(record, with_traceback=False).items():
        if key == "failed_at":
            shown = format_when(value)
        elif key == "payload":
            shown = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        else:
            shown = "" if value is None else str(value)
        table.add_row(Text(key, style="bold"), Text(shown))
    return Group(table, Text(record.traceback.rstrip(), style="red"))
