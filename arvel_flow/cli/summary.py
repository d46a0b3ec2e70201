"""The end-of-run summary: each step's state, attempts and duration, then the failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from arvel_flow.queue.plan import ChainNode, FanOutNode, JobNode, Node, Plan, callbacks
from arvel_flow.store.contracts import FailedJob, StepRecord

MAX_FAILURES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One line of the summary: a job, a group, or a whole fan-out."""

    key: str
    what: str
    state: str
    attempts: int
    seconds: float | None


def compute_rows(plan: Plan, records: Mapping[str, StepRecord]) -> list[SummaryRow]:
    """Rows in plan order; a fan-out is one row whose state counts its members."""
    return list(_rows(plan.root, records))


def _rows(node: Node | FanOutNode, records: Mapping[str, StepRecord]) -> Iterator[SummaryRow]:
    if isinstance(node, FanOutNode):
        yield _fan_out_row(node, records)
        return
    record = records.get(node.key)
    state = record.state if record else "not run"
    seconds = _duration(record)
    if isinstance(node, JobNode):
        yield SummaryRow(
            node.key, node.job.target, state, record.attempts if record else 0, seconds
        )
        return
    kind = "chain" if isinstance(node, ChainNode) else "batch"
    yield SummaryRow(node.key, kind, state, 0, seconds)
    for child in node.steps if isinstance(node, ChainNode) else node.members:
        yield from _rows(child, records)
    for _, callback in callbacks(node):
        if callback.key in records:
            yield from _rows(callback, records)


def _fan_out_row(node: FanOutNode, records: Mapping[str, StepRecord]) -> SummaryRow:
    states: Counter[str] = Counter()
    attempts = 0
    first: float | None = None
    last: float | None = None
    for index in range(len(node.items)):
        record = records.get(f"{node.key}[{index}]")
        states[record.state if record else "not run"] += 1
        if record is not None:
            attempts += record.attempts
            if record.started_at is not None:
                first = record.started_at if first is None else min(first, record.started_at)
            if record.finished_at is not None:
                last = record.finished_at if last is None else max(last, record.finished_at)
    state = ", ".join(f"{count} {name}" for name, count in states.most_common())
    seconds = None if first is None or last is None else last - first
    return SummaryRow(
        f"{node.key}[*]", f"{node.job.target} x{len(node.items)}", state, attempts, seconds
    )


def _duration(record: StepRecord | None) -> float | None:
    if record is None or record.started_at is None or record.finished_at is None:
        return None
    return record.finished_at - record.started_at


def format_summary_table(rows: Sequence[SummaryRow]) -> Table:
    """The rows as a rich table."""
    table = Table(title="Summary", title_justify="left")
    for column in ("step", "job", "state", "attempts", "duration"):
        table.add_column(column, justify="right" if column in ("attempts", "duration") else "left")
    for row in rows:
        style = "red" if "failed" in row.state else ("green" if row.state == "succeeded" else "")
        table.add_row(
            row.key,
            row.what,
            Text(row.state, style=style),
            str(row.attempts or ""),
            _seconds(row.seconds),
        )
    return table


def format_summary_lines(rows: Sequence[SummaryRow]) -> list[str]:
    """The rows as plain lines."""
    return [
        f"{row.key} {row.what} {row.state} attempts={row.attempts} duration={_seconds(row.seconds)}"
        for row in rows
    ]


def format_failures(failures: Sequence[FailedJob]) -> RenderableType:
    """Each permanent failure with its traceback (the first few, then a count)."""
    panels: list[RenderableType] = []
    for failure in failures[:MAX_FAILURES_SHOWN]:
        where = failure.step or failure.job
        title = f"{where} ({failure.job}) failed after {failure.attempts} attempt(s)"
        panels.append(Panel(Text(failure.traceback.rstrip()), title=title, border_style="red"))
    if len(failures) > MAX_FAILURES_SHOWN:
        more = len(failures) - MAX_FAILURES_SHOWN
        panels.append(Text(f"... and {more} more: arvel-flow failed list", style="red"))
    return Group(*panels)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"
