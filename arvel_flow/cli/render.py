"""Pure renderers for the CLI: each ``format_*`` returns text or a rich renderable.

Nothing here prints; `arvel_flow.cli.app` decides where output goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from arvel_flow.durations import format_duration, format_exact
from arvel_flow.errors import ConfigIssue
from arvel_flow.explain import SHOWN_RETRIES, StepReport
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.plan import (
    BatchNode,
    ChainNode,
    FanOutNode,
    JobNode,
    Matrix,
    Node,
    Plan,
    callbacks,
)


def format_tree(plan: Plan) -> Tree:
    """The pipeline as a rich tree: groups, their members and callbacks."""
    tree = Tree(f"[bold]{escape(plan.name)}[/]")
    _add_node(tree, plan.root, "")
    return tree


def _add_node(parent: Tree, node: Node | FanOutNode, role: str) -> None:
    prefix = f"[magenta]{role}:[/] " if role else ""
    branch = parent.add(prefix + _label(node))
    if isinstance(node, ChainNode | BatchNode):
        for child in node.steps if isinstance(node, ChainNode) else node.members:
            _add_node(branch, child, "")
        for callback_role, callback in callbacks(node):
            _add_node(branch, callback, callback_role)


def _label(node: Node | FanOutNode) -> str:
    key = f"[bold]{escape(node.key)}[/]"
    if isinstance(node, JobNode):
        return f"{key} {escape(node.job.target)}"
    if isinstance(node, FanOutNode):
        kind = escape(_fan_out_kind(node))
        return f"{key} {escape(node.job.target)} [cyan]x {len(node.items):,}[/] ({kind})"
    if isinstance(node, ChainNode):
        return f"[green]chain[/] {key}"
    details = [f"name {node.name!r}"] if node.name else []
    details += [f"concurrency {node.concurrency}"] if node.concurrency else []
    details += [f"allow_failures {node.allow_failures}"] if node.allow_failures is not False else []
    suffix = f" ({escape(', '.join(details))})" if details else ""
    return f"[yellow]batch[/] {key}{suffix}"


def _fan_out_kind(node: FanOutNode) -> str:
    if isinstance(node.items, Matrix):
        return "matrix of " + ", ".join(node.items.axes)
    return "each"


def format_mermaid(plan: Plan) -> str:
    """The pipeline as a Mermaid flowchart, for documentation."""
    ids = {key: f"n{index}" for index, key in enumerate(plan.nodes)}
    lines = ["flowchart TD"]
    _mermaid(plan.root, ids, lines, 1)
    return "\n".join(lines) + "\n"


def _mermaid(node: Node | FanOutNode, ids: dict[str, str], lines: list[str], depth: int) -> None:
    pad, node_id = "  " * depth, ids[node.key]
    if isinstance(node, JobNode | FanOutNode):
        count = f" x {len(node.items):,}" if isinstance(node, FanOutNode) else ""
        shape = ('[["', '"]]') if isinstance(node, FanOutNode) else ('["', '"]')
        lines.append(
            f"{pad}{node_id}{shape[0]}{_quote(node.key)}<br/>{_quote(node.job.target)}{count}{shape[1]}"
        )
        return
    kind = "chain" if isinstance(node, ChainNode) else "batch"
    children = node.steps if isinstance(node, ChainNode) else node.members
    lines.append(f'{pad}subgraph {node_id}["{kind} {_quote(node.key)}"]')
    for child in children:
        _mermaid(child, ids, lines, depth + 1)
    if isinstance(node, ChainNode):
        lines += [f"{pad}  {ids[a.key]} --> {ids[b.key]}" for a, b in pairwise(children)]
    lines.append(f"{pad}end")
    for role, callback in callbacks(node):
        _mermaid(callback, ids, lines, depth)
        lines.append(f"{pad}{node_id} -. {role} .-> {ids[callback.key]}")


def _quote(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def format_plan(
    name: str, reports: Sequence[StepReport], file_warnings: Sequence[ConfigIssue] = ()
) -> RenderableType:
    """Each job's effective settings, backoff timeline, worst case and warnings.

    ``file_warnings`` (unset variables) come first, one ``FILE:LINE:COL`` line each.
    """
    warnings = sum(len(report.warnings) for report in reports) + len(file_warnings)
    header = Text.from_markup(
        f"[bold]{escape(name)}[/]: {len(reports)} job steps, {warnings} warnings"
    )
    located = [Text(warning.format(), "yellow") for warning in file_warnings]
    return Group(header, *located, *(_format_report(report) for report in reports))


def _format_report(report: StepReport) -> RenderableType:
    settings = report.settings
    title = Text.assemble("\n", (report.key, "bold"), " ", report.target)
    if report.items is not None:
        title.append(f" x {report.items:,}", "cyan")
    rows = [
        ("retry", format_retry(settings)),
        ("backoff", format_waits(report.waits, report.more_waits, report.longest_wait)),
        (
            "worst case",
            "unbounded (no timeout)"
            if report.worst_case is None
            else format_duration(report.worst_case),
        ),
        ("middleware", format_middleware(settings.middleware)),
        (
            "queue",
            settings.queue_name
            + (f", delay {format_exact(settings.delay)}" if settings.delay else ""),
        ),
    ]
    if settings.unique_for:
        lock = f"{settings.unique_id or 'class path'} for {format_exact(settings.unique_for)}"
        until = " (released when it starts)" if settings.unique_until_processing else ""
        rows.append(("unique", lock + until))
    lines = [Text.assemble((f"{label:<12}", "dim"), value) for label, value in rows]
    lines += [Text(f"{'warning':<12}{warning}", "yellow") for warning in report.warnings]
    return Group(title, *lines)


def format_retry(settings: JobSettings) -> str:
    """``3 retries; exponential backoff (base 2, max 1m, jitter); timeout 30s``."""
    parts = [f"{settings.max_retries} retries", format_backoff(settings)]
    parts.append(
        f"timeout {format_exact(settings.timeout_seconds)}"
        if settings.timeout_seconds
        else "no timeout"
    )
    if settings.retry_until is not None:
        parts.append(f"until {format_exact(settings.retry_until)} after the first attempt")
    if settings.max_exceptions is not None:
        parts.append(f"at most {settings.max_exceptions} exceptions")
    if settings.retry_on:
        parts.append("only on " + ", ".join(settings.retry_on))
    if settings.dont_retry_on:
        parts.append("never on " + ", ".join(settings.dont_retry_on))
    return "; ".join(parts)


def format_backoff(settings: JobSettings) -> str:
    """``exponential backoff (base 2, max 1m, jitter)``, ``backoff 1s, 5s, 30s``, ..."""
    backoff = settings.backoff
    details = []
    if backoff == "exponential":
        head = "exponential backoff"
        details.append(f"base {settings.backoff_base:g}")
    elif isinstance(backoff, tuple):
        shown = [format_exact(wait) for wait in backoff[:SHOWN_RETRIES]]
        more = len(backoff) - len(shown)
        head = "backoff " + ", ".join(shown + ([f"... {more:,} more"] if more else []))
    else:
        head = f"backoff {format_exact(backoff)}"
    if settings.max_backoff is not None:
        details.append(f"max {format_exact(settings.max_backoff)}")
    if settings.jitter:
        details.append("jitter")
    return head + (f" ({', '.join(details)})" if details else "")


def format_waits(waits: Sequence[tuple[float, float]], more: int = 0, longest: float = 0.0) -> str:
    """``2s → 4s → 8s``, ranges when jitter spreads them: ``1s..2s → 2s..4s``.

    ``more`` retries after those listed are summarised with the ``longest`` wait.
    """
    if not waits:
        return "no retries"
    shown = [
        format_exact(high) if low == high else f"{format_exact(low)}..{format_exact(high)}"
        for low, high in waits
    ]
    if more:
        shown.append(f"... {more:,} more, each at most {format_exact(longest)}")
    return " → ".join(shown)


def format_middleware(refs: Sequence[MiddlewareRef]) -> str:
    """The stack, outermost first, ending with the class's own middleware()."""
    shown = [f"{ref.use}({', '.join(f'{k}={v!r}' for k, v in ref.kwargs.items())})" for ref in refs]
    return " → ".join([*shown, "the class's own middleware()"])
