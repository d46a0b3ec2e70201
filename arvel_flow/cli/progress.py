"""Progress of a run as it happens: rich on a terminal, plain lines, or JSON lines.

Each reporter is an event listener. What they show is computed by pure ``format_*``
functions from a `RunView` (what the events said so far, or what a store recorded), so
it can be tested without a terminal; only the reporters print.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from arvel_flow.queue.events import Event
from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode, JobNode, Node, Plan, callbacks
from arvel_flow.store.contracts import FINAL_RUN_STATUSES, FINAL_STATES, StepRecord

NOTABLE = frozenset(
    {
        "run.started",
        "run.finished",
        "chain.step",
        "batch.finished",
        "job.retrying",
        "job.released",
        "job.duplicate",
        "job.failed",
    }
)
"""Events a plain reporter prints; the rest only move counters."""

STATE_STYLE = {
    "succeeded": ("✔", "green"),
    "failed": ("✘", "red"),
    "running": ("▶", "cyan"),
    "queued": ("·", "cyan"),
    "retrying": ("↻", "yellow"),
    "released": ("⏸", "yellow"),
    "interrupted": ("⏸", "yellow"),
    "skipped": ("-", "dim"),
    "cancelled": ("⊘", "dim"),
    "duplicate": ("≡", "magenta"),
    "pending": ("·", "dim"),
    "not run": ("-", "dim"),
}

_OK = frozenset({"succeeded", "duplicate"})
_MEMBERS_SHOWN = 20
"""A batch lists this many entries in the tree; a fan-out counts as one."""


@dataclass
class BatchView:
    """One batch's counters as the events report them."""

    total: int
    finished: int = 0
    failed: int = 0
    started_at: float | None = field(default_factory=time.monotonic)
    """When counting began (monotonic); None for counts read back from a store."""


@dataclass
class RunView:
    """What the events of one run said so far.

    ``fan_outs`` counts the members of each fan-out by state (keyed by the fan-out's
    key), kept up to date event by event so that a 100,000-item fan-out is shown
    without looking at each member.
    """

    states: dict[str, str] = field(default_factory=dict)
    batches: dict[str, BatchView] = field(default_factory=dict)
    fan_outs: dict[str, Counter[str]] = field(default_factory=dict)
    status: str = "running"

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        name, step = event.event, event.step
        if name == "batch.progress" and step is not None:
            view = self.batches.setdefault(step, BatchView(int(event.data.get("total", 0))))
            view.finished = int(event.data.get("finished", view.finished))
            view.failed = int(event.data.get("failed", view.failed))
        elif name == "batch.finished" and step is not None:
            self.set_state(step, str(event.data.get("status", "succeeded")))
        elif name == "chain.step" and step is not None:
            if step not in self.states:
                self.set_state(step, "running")
        elif name == "run.finished":
            self.status = str(event.data.get("status", "finished"))
        elif name.startswith("job.") and step is not None:
            self.set_state(step, _JOB_STATE.get(name, self.states.get(step, "pending")))

    def set_state(self, key: str, state: str) -> None:
        """Record ``key``'s state, keeping its fan-out's counts (``key[i]``) in step."""
        old = self.states.get(key)
        self.states[key] = state
        if key.endswith("]") and "[" in key:
            counts = self.fan_outs.setdefault(key[: key.rindex("[")], Counter())
            if old is not None:
                counts[old] -= 1
                if counts[old] <= 0:
                    del counts[old]
            counts[state] += 1


_JOB_STATE = {
    "job.dispatched": "queued",
    "job.started": "running",
    "job.succeeded": "succeeded",
    "job.failed": "failed",
    "job.retrying": "retrying",
    "job.released": "released",
    "job.duplicate": "duplicate",
}


def compute_view(plan: Plan, records: Mapping[str, StepRecord], status: str) -> RunView:
    """The view a store's records give of a run (``status``), with each batch's counts."""
    view = RunView(status=status)
    for key, record in records.items():
        view.set_state(key, record.state)
    for node in plan.nodes.values():
        if isinstance(node, BatchNode):
            view.batches[node.key] = BatchView(node.total, started_at=None)
    for key, record in records.items():
        parent = plan.parent(key)
        if parent is None or parent[1] != "member" or not record.final:
            continue
        batch = view.batches[parent[0].key]
        batch.finished += 1
        batch.failed += record.state == "failed"
    for key, batch in view.batches.items():
        batch_record = records.get(key)
        if batch_record is not None and batch_record.final:
            # Members a failing batch never started were cancelled without a record.
            batch.finished = batch.total
    return view


def format_event_line(event: Event) -> str:
    """One plain line: time, event, step, job, attempt and the event's details."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    parts = [stamp, event.event]
    if event.step:
        parts.append(event.step)
    if event.job:
        parts.append(f"{event.job} attempt={event.attempt}")
    parts.extend(f"{key}={value}" for key, value in event.data.items())
    return " ".join(parts)


def format_event_message(event: Event) -> Text:
    """A sentence for people about a retry, release, duplicate or failure (rich output)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    icon, style = STATE_STYLE.get(_JOB_STATE.get(event.event, ""), ("•", ""))
    who = f"{event.step or '?'} ({_short(event.job)})"
    data = event.data
    if event.event == "job.retrying":
        what = f"attempt {event.attempt} failed: {data.get('error')}; retry in {data.get('delay')}s"
    elif event.event == "job.released":
        what = f"released for {data.get('delay')}s ({data.get('reason')})"
    elif event.event == "job.failed":
        error, reason = data.get("error"), data.get("reason")
        what = f"failed after {event.attempt} attempt(s): {error} ({reason})"
    elif event.event == "job.duplicate":
        what = "not dispatched: a copy is already queued or running (unique)"
    else:
        what = " ".join(f"{key}={value}" for key, value in data.items())
    return Text.assemble((f"{stamp} ", "dim"), (f"{icon} ", style), (who, "bold"), f" {what}")


def format_event_json(event: Event) -> str:
    """One JSON line with the fields of SPEC §5."""
    return json.dumps(event.to_dict(), default=str, separators=(",", ":"))


def format_tree(plan: Plan, view: RunView, *, bar_width: int = 24) -> Tree:
    """The pipeline as a tree, each step marked with its state, a bar per batch."""
    tree = Tree(Text(f"{plan.name}  ", style="bold").append(view.status, style=_style(view.status)))
    _add_node(tree, plan.root, view, _state(plan.root, view, root=True), bar_width=bar_width)
    return tree


def _add_node(
    parent: Tree,
    node: Node | FanOutNode,
    view: RunView,
    state: str,
    role: str = "",
    *,
    bar_width: int = 24,
) -> None:
    prefix = Text(f"{role} ", style="italic") if role else Text()
    if isinstance(node, FanOutNode):
        parent.add(prefix.append_text(_fan_out_label(node, view)))
        return
    if isinstance(node, JobNode):
        parent.add(prefix.append_text(_label(node.key, state, node.job.target)))
        return
    if isinstance(node, BatchNode):
        what = f"batch of {node.total:,}"
        label = _label(node.key, state, f"{node.name}: {what}" if node.name else what)
        bar = format_bar(view.batches.get(node.key), node.total, width=bar_width)
        label.append("  ").append_text(bar)
        branch = parent.add(prefix.append_text(label))
        children: tuple[Node | FanOutNode, ...] = node.members[:_MEMBERS_SHOWN]
        hidden = len(node.members) - len(children)
    else:
        label = _label(node.key, state, f"chain of {len(node.steps)}")
        branch = parent.add(prefix.append_text(label))
        children, hidden = node.steps, 0
    chain_over = isinstance(node, ChainNode) and state in FINAL_STATES
    for child in children:
        child_state = _state(child, view)
        if chain_over and child_state == "pending":
            child_state = "skipped"
        _add_node(branch, child, view, child_state, bar_width=bar_width)
    if hidden:
        branch.add(Text(f"... and {hidden} more", style="dim"))
    group_over = state in FINAL_STATES or state == "interrupted"
    for callback_role, callback in callbacks(node):
        callback_state = _state(callback, view)
        if group_over and callback_state == "pending":
            callback_state = "not run"
        _add_node(branch, callback, view, callback_state, callback_role, bar_width=bar_width)


def _state(node: Node | FanOutNode, view: RunView, *, root: bool = False) -> str:
    """A node's state: as reported, or derived from its children while it has none."""
    if root and view.status in FINAL_RUN_STATUSES | {"interrupted"}:
        return view.status
    known = view.states.get(node.key)
    if known is not None and (known in FINAL_STATES or isinstance(node, JobNode | FanOutNode)):
        return known
    if isinstance(node, ChainNode):
        states = [_state(step, view) for step in node.steps]
        if any(s in ("failed", "skipped") for s in states):
            return "failed"
        if all(s in _OK for s in states):
            return "succeeded"
        if any(s != "pending" for s in states):
            return "running"
    elif isinstance(node, BatchNode):
        started = node.key in view.batches or any(
            _state(member, view) != "pending" for member in node.members[:_MEMBERS_SHOWN]
        )
        if started:
            return "running"
    elif isinstance(node, FanOutNode):
        counts = view.fan_outs.get(node.key)
        if counts:
            return "running"
    return known or "pending"


def _fan_out_label(node: FanOutNode, view: RunView) -> Text:
    indices = "0" if len(node.items) == 1 else f"0..{len(node.items) - 1}"
    label = Text(f"{node.key}[{indices}]", style="bold").append(
        f"  {node.job.target} x{len(node.items):,}", style="dim"
    )
    counts = view.fan_outs.get(node.key)
    if counts:
        for state, count in sorted(counts.items(), key=lambda item: _ORDER.get(item[0], 99)):
            icon, style = STATE_STYLE.get(state, ("?", ""))
            label.append(f"  {icon} {count:,}", style=style)
    return label


_ORDER = {state: index for index, state in enumerate(STATE_STYLE)}


def format_bar(batch: BatchView | None, total: int, width: int = 24) -> Text:
    """``[██████░░░░] 120/500 failed 2  40/s  ETA 9s`` for one batch."""
    finished = batch.finished if batch else 0
    failed = batch.failed if batch else 0
    filled = min(int(width * finished / total) if total else width, width)
    bar = Text("█" * filled, style="green").append("░" * (width - filled), style="dim")
    text = Text("[").append_text(bar).append(f"] {finished:,}/{total:,}")
    if failed:
        text.append(f" failed {failed:,}", style="red")
    if batch is not None and batch.started_at is not None and finished:
        elapsed = max(time.monotonic() - batch.started_at, 1e-6)
        rate = finished / elapsed
        text.append(f"  {rate:,.0f}/s", style="dim")
        if finished < total:
            text.append(f"  ETA {_duration((total - finished) / rate)}", style="dim")
    return text


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _label(key: str, state: str, detail: str) -> Text:
    icon, style = STATE_STYLE.get(state, ("?", ""))
    return (
        Text(f"{icon} ", style=style).append(key, style="bold").append(f"  {detail}", style="dim")
    )


def _short(target: str | None) -> str:
    """``examples.jobs:SendWeeklyDigest`` → ``SendWeeklyDigest``."""
    if not target:
        return "?"
    return target.rpartition(":")[2] if ":" in target else target.rpartition(".")[2]


def _style(status: str) -> str:
    return STATE_STYLE.get(status, ("", "cyan"))[1]


def write_line(stream: IO[str], line: str) -> None:
    """Write and flush one line; a reader that went away (``| head``) silences the stream.

    The run goes on to its end, its state recorded; only its output goes nowhere.
    """
    try:
        stream.write(line + "\n")
        stream.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class PlainReporter:
    """Timestamped lines for notable events, and batch progress at most once a second."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last_progress: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if event.event == "batch.progress" and event.step:
            now = time.monotonic()
            finished = event.data.get("finished") == event.data.get("total")
            if not finished and now - self._last_progress.get(event.step, 0.0) < 1.0:
                return
            self._last_progress[event.step] = now
        elif event.event not in NOTABLE:
            return
        write_line(self._stream, format_event_line(event))


class JsonReporter:
    """Every event as one JSON object per line, flushed at once for whoever follows it."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        write_line(self._stream, format_event_json(event))


class RichReporter:
    """A live tree of the pipeline on a terminal; retries and failures scroll above it."""

    def __init__(self, console: Console, plan: Plan) -> None:
        self.console = console
        self.plan = plan
        self.view = RunView()
        self._live = Live(
            console=console, refresh_per_second=8, get_renderable=self._render, transient=False
        )

    def __enter__(self) -> RichReporter:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.refresh()
        self._live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        self.view.apply(event)
        if event.event in ("job.retrying", "job.released", "job.failed", "job.duplicate"):
            self.console.print(format_event_message(event))

    def _render(self) -> RenderableType:
        # A narrow terminal gets a shorter bar, so that a batch's line does not wrap.
        bar_width = 24 if self.console.width >= 120 else 10
        return Group(format_tree(self.plan, self.view, bar_width=bar_width))
