"""The end-of-run summary: each step's state, attempts and duration, then the failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from arvel_flow.cli.durations import format_duration
from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode, JobNode, Node, Plan, callbacks
from arvel_flow.queue.result import BatchResult
from arvel_flow.store.contracts import FailedJob, StepRecord

if TYPE_CHECKING:
    # rich is imported by the two renderers for a terminal: plain output never loads it.
    from rich.console import RenderableType
    from rich.table import Table

MAX_FAILURES_SHOWN = 20
_PACKAGE_FRAME = f'  File "{Path(__file__).resolve().parents[1]}/'
"""How a traceback line starts for a frame inside arvel-flow itself."""


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
    if isinstance(node, BatchNode) and node.name:
        kind = f"batch: {node.name}"
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
    state = ", ".join(f"{count:,} {name}" for name, count in states.most_common())
    seconds = None if first is None or last is None else last - first
    return SummaryRow(
        f"{node.key}[*]", f"{node.job.target} x{len(node.items):,}", state, attempts, seconds
    )


def _duration(record: StepRecord | None) -> float | None:
    if record is None or record.started_at is None or record.finished_at is None:
        return None
    return record.finished_at - record.started_at


def format_counts(result: BatchResult) -> str:
    """``2,700 succeeded, 300 failed (allowed) of 3,000 jobs``: each way jobs ended, counted.

    Failures within an allowance are told apart from those that failed the run; ways
    no job ended are left out. The parts add up to the total: the pipeline's jobs and
    the callbacks that fired (see `BatchResult`).
    """
    counts = result.counts
    allowed = counts["failed_allowed"]
    failed = counts["failed"] - allowed
    parts = [f"{counts['succeeded']:,} succeeded"] if counts["succeeded"] else []
    parts += [f"{failed:,} failed"] if failed else []
    parts += [f"{allowed:,} failed (allowed)"] if allowed else []
    parts += [
        f"{counts[name]:,} {name}"
        for name in ("duplicates", "skipped", "cancelled", "pending")
        if counts[name]
    ]
    total = result.total
    return (", ".join(parts) or "none ran") + f" of {total:,} job{'s' * (total != 1)}"


def format_summary_table(rows: Sequence[SummaryRow]) -> Table:
    """The rows as a rich table; jobs by class name (the tree above has their paths)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Summary", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("step", "job", "state", "attempts", "duration"):
        table.add_column(column, justify="right" if column in ("attempts", "duration") else "left")
    for row in rows:
        style = "red" if "failed" in row.state else ("green" if row.state == "succeeded" else "")
        table.add_row(
            row.key,
            _short_what(row.what),
            Text(row.state, style=style),
            f"{row.attempts:,}" if row.attempts else "",
            _seconds(row.seconds),
        )
    return table


def _short_what(what: str) -> str:
    """``pkg.jobs:Import x3`` → ``Import x3``; groups (``chain``, ``batch: ...``) as they are."""
    if what == "chain" or what.startswith("batch"):
        return what
    path, space, rest = what.partition(" ")
    name = path.rpartition(":")[2] if ":" in path else path.rpartition(".")[2]
    return name + space + rest


def format_summary_lines(rows: Sequence[SummaryRow]) -> list[str]:
    """The rows as plain lines."""
    return [
        f"{row.key} {row.what} {row.state} attempts={row.attempts} duration={_seconds(row.seconds)}"
        for row in rows
    ]


def format_failures(failures: Sequence[FailedJob]) -> RenderableType:
    """Each permanent failure with its traceback; identical ones once, with a count."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    groups = compute_failure_groups(failures)
    panels: list[RenderableType] = []
    for group in groups[:MAX_FAILURES_SHOWN]:
        first = group[0]
        command = f"failed show {first.id}" if len(group) == 1 else "failed list"
        panels.append(
            Panel(
                Text(compute_user_traceback(first.traceback)),
                title=_failure_title(group),
                title_align="left",
                subtitle=f"arvel-flow {command}",
                subtitle_align="right",
                border_style="red",
            )
        )
    if len(groups) > MAX_FAILURES_SHOWN:
        panels.append(Text(_more(groups), style="red"))
    return Group(*panels)


def format_failure_lines(failures: Sequence[FailedJob]) -> list[str]:
    """The failures as plain lines: each kind once with its traceback, then a count."""
    groups = compute_failure_groups(failures)
    lines: list[str] = []
    for group in groups[:MAX_FAILURES_SHOWN]:
        ids = ", ".join(failure.id for failure in group[:3]) + (", ..." if len(group) > 3 else "")
        lines.append(f"failed: {_failure_title(group)} (failed id {ids})")
        lines.extend(compute_user_traceback(group[0].traceback).splitlines())
    if len(groups) > MAX_FAILURES_SHOWN:
        lines.append(_more(groups))
    return lines


def compute_failure_groups(failures: Sequence[FailedJob]) -> list[list[FailedJob]]:
    """Failures alike (job class, traceback, attempts), together, the earliest first.

    A fan-out that fails for one reason (a server down) then shows one traceback, not
    ten thousand copies of it.
    """
    groups: dict[tuple[str, str, int], list[FailedJob]] = {}
    for failure in sorted(failures, key=lambda f: f.failed_at):
        groups.setdefault((failure.job, failure.traceback, failure.attempts), []).append(failure)
    return list(groups.values())


def compute_user_traceback(text: str) -> str:
    """The traceback with arvel-flow's own frames folded into one line each run of them.

    What remains is the user's code and the error; ``failed show`` keeps every frame.
    """
    lines: list[str] = []
    hidden = 0
    skipping = False
    for line in text.rstrip().splitlines():
        if line.startswith('  File "'):
            skipping = line.startswith(_PACKAGE_FRAME)
            if skipping:
                hidden += 1
                continue
        elif skipping and line.startswith("    "):
            continue
        skipping = False
        if hidden:
            lines.append(f"  [{hidden} frame(s) inside arvel-flow hidden]")
            hidden = 0
        lines.append(line)
    if hidden:
        lines.append(f"  [{hidden} frame(s) inside arvel-flow hidden]")
    return "\n".join(lines)


def _failure_title(group: Sequence[FailedJob]) -> str:
    first = group[0]
    where = first.step or first.job
    if len(group) > 1:
        where += f" and {len(group) - 1:,} more"
    return f"{where} ({first.job}) failed after {first.attempts} attempt(s)"


def _more(groups: Sequence[Sequence[FailedJob]]) -> str:
    more = sum(len(group) for group in groups[MAX_FAILURES_SHOWN:])
    return f"... and {more:,} more failed job(s): arvel-flow failed list"


def _seconds(value: float | None) -> str:
    return "" if value is None else format_duration(value)
