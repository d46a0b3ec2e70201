"""Progress of a run as it happens on a terminal: a live rich tree of the pipeline.

Plain and JSON lines, for output that is not a terminal, are `arvel_flow.cli.event_lines`
(which imports no rich). The reporter is an event listener. What it shows is computed by
pure ``format_*`` functions from a `RunView` (what the events said so far, or what a
store recorded), so it can be tested without a terminal; only the reporter prints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from arvel_flow.cli.durations import format_duration
from arvel_flow.cli.event_lines import (
    format_releases,
    format_retry,
    format_stamp,
    format_stopping,
    track_running,
)
from arvel_flow.queue.events import Event
from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode, JobNode, Node, Plan, callbacks
from arvel_flow.store.contracts import FINAL_RUN_STATUSES, FINAL_STATES, StepRecord

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
    baseline: int = 0
    """Jobs finished before counting began (a resumed run's): no part of the rate."""


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
    releases: Counter[str] = field(default_factory=Counter)
    """How many times jobs were put back, by reason (a rate limit, say)."""
    retries: dict[str, Retry] = field(default_factory=dict)
    """The retries now waiting, by step."""
    running: set[str] = field(default_factory=set)
    """The jobs running now, by step."""
    stopping: bool = False
    """A Ctrl-C asked the run to stop: it waits for its running jobs."""
    counts: Counter[str] = field(default_factory=Counter)
    """How many steps are in each state (kept by `set_state`)."""

    @property
    def paused(self) -> str | None:
        """Why the run makes no progress now, when it does not: no ETA holds then.

        ``interrupted`` (or another final status), ``stopping``, or ``waiting`` (nothing
        runs; retries wait out their backoff or released jobs their delay).
        """
        if self.status != "running":
            return self.status
        if self.stopping:
            return "stopping"
        if not self.running and (self.counts["retrying"] or self.counts["released"]):
            return "waiting"
        return None

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        name, step = event.event, event.step
        if name == "job.log":  # says something; changes nothing
            return
        if step is not None and name.startswith("job."):
            self.retries.pop(step, None)
        if name == "job.released":
            self.releases[str(event.data.get("reason") or "released")] += 1
        elif name == "job.retrying" and step is not None:
            self.retries[step] = Retry.of(event)
        if name == "batch.progress" and step is not None:
            view = self.batches.setdefault(step, BatchView(int(event.data.get("total", 0))))
            if view.started_at is None:
                # Counts read back from the store (a resume): the rate starts now.
                view.started_at, view.baseline = time.monotonic(), view.finished
            view.finished = int(event.data.get("finished", view.finished))
            view.failed = int(event.data.get("failed", view.failed))
        elif name == "batch.finished" and step is not None:
            self.set_state(step, str(event.data.get("status", "succeeded")))
        elif name == "chain.step" and step is not None:
            if step not in self.states:
                self.set_state(step, "running")
        elif name == "run.finished":
            self.status = str(event.data.get("status", "finished"))
        elif name == "run.stopping":
            self.stopping = True
        elif name.startswith("job.") and step is not None:
            self.set_state(step, _JOB_STATE.get(name, self.states.get(step, "pending")))
            track_running(self.running, event)

    def set_state(self, key: str, state: str) -> None:
        """Record ``key``'s state, keeping its fan-out's counts (``key[i]``) in step."""
        old = self.states.get(key)
        self.states[key] = state
        if old is not None:
            self.counts[old] -= 1
        self.counts[state] += 1
        if key.endswith("]") and "[" in key:
            counts = self.fan_outs.setdefault(key[: key.rindex("[")], Counter())
            if old is not None:
                counts[old] -= 1
                if counts[old] <= 0:
                    del counts[old]
            counts[state] += 1


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry waiting: when it is due (monotonic) and which attempt of how many it is."""

    due: float
    attempt: int
    attempts: int | None

    @classmethod
    def of(cls, event: Event) -> Retry:
        """The retry a ``job.retrying`` event announces."""
        limit = event.data.get("max_attempts")
        delay = float(event.data.get("delay") or 0.0)
        return cls(time.monotonic() + delay, (event.attempt or 0) + 1, limit)

    def format(self) -> str:
        """``retrying in 58s (attempt 2 of 4)``, counting down."""
        return format_retry(self.due - time.monotonic(), self.attempt, self.attempts)


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


def format_event_message(event: Event) -> Text:
    """A sentence for people about a retry, release, duplicate or failure (rich output)."""
    stamp = format_stamp(event.time)
    icon, style = STATE_STYLE.get(_JOB_STATE.get(event.event, ""), ("•", ""))
    who = f"{event.step or '?'} ({_short(event.job)})"
    data = event.data
    if event.event == "job.retrying":
        retry = format_retry(
            float(data.get("delay") or 0.0), (event.attempt or 0) + 1, data.get("max_attempts")
        )
        what = f"attempt {event.attempt} failed: {data.get('error')}; {retry}"
    elif event.event == "job.released":
        delay = format_duration(float(data.get("delay") or 0.0))
        what = f"released for {delay} ({data.get('reason')})"
    elif event.event == "job.failed":
        error, reason = data.get("error"), data.get("reason")
        what = f"failed after {event.attempt} attempt(s): {error} ({reason})"
    elif event.event == "job.duplicate":
        what = "not dispatched: a copy is already queued or running (unique)"
    elif event.event == "job.log":
        return format_log_message(event)
    else:
        what = " ".join(f"{key}={value}" for key, value in data.items())
    return Text.assemble((f"{stamp} ", "dim"), (f"{icon} ", style), (who, "bold"), f" {what}")


_LEVEL_STYLE = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


def format_log_message(event: Event) -> Text:
    """A job's log line for people: ``15:30:00 fetch (Fetch) WARNING myapp: disk full``."""
    level = str(event.data.get("level"))
    style = _LEVEL_STYLE.get(level, "")
    return Text.assemble(
        (f"{format_stamp(event.time)} ", "dim"),
        (event.step or "?", "bold"),
        f" ({_short(event.job)}) ",
        (level, style),
        (f" {event.data.get('logger')}: ", "dim"),
        (str(event.data.get("message")), style),
    )


def format_tree(
    plan: Plan, view: RunView, *, bar_width: int = 24, height: int | None = None
) -> Tree:
    """The pipeline as a tree, each step marked with its state, a bar per batch.

    A tree taller than ``height`` lines shows each run of finished steps as one line
    (``✔ 62 steps finished``), then runs of pending and skipped steps too, so that the
    running and failed steps stay in view.
    """
    for collapse in _COLLAPSE:
        tree = Tree(
            Text(f"{plan.name}  ", style="bold").append(view.status, style=_style(view.status))
        )
        state = _state(plan.root, view, root=True)
        _add_node(tree, plan.root, view, state, bar_width=bar_width, collapse=collapse)
        if height is None or _lines(tree) <= height:
            break
    return tree


_FINISHED = {"succeeded": "finished", "duplicate": "finished"}
_COLLAPSE: tuple[dict[str, str], ...] = (
    {},
    _FINISHED,
    {**_FINISHED, "pending": "pending", "skipped": "skipped", "cancelled": "cancelled"},
)
"""What each try of `format_tree` folds: a step's state to the word its run is said with."""
_FOLDED_ICON = {"finished": "succeeded"}


def _lines(tree: Tree) -> int:
    return 1 + sum(_lines(child) for child in tree.children)


def _add_children(
    branch: Tree,
    children: list[tuple[Node | FanOutNode, str]],
    view: RunView,
    *,
    bar_width: int,
    collapse: dict[str, str],
) -> None:
    """Each child, or one line for each run of two or more that ``collapse`` folds."""
    index = 0
    while index < len(children):
        folded = collapse.get(children[index][1])
        end = index + 1
        while folded and end < len(children) and collapse.get(children[end][1]) == folded:
            end += 1
        if folded and end - index >= 2:
            icon, style = STATE_STYLE[_FOLDED_ICON.get(folded, folded)]
            branch.add(Text(f"{icon} {end - index:,} steps {folded}", style=f"{style} italic"))
        else:
            for child, state in children[index:end]:
                _add_node(branch, child, view, state, bar_width=bar_width, collapse=collapse)
        index = end


def _add_node(
    parent: Tree,
    node: Node | FanOutNode,
    view: RunView,
    state: str,
    role: str = "",
    *,
    bar_width: int = 24,
    collapse: dict[str, str] | None = None,
) -> None:
    collapse = collapse or {}
    prefix = Text(f"{role} ", style="italic") if role else Text()
    if isinstance(node, FanOutNode):
        parent.add(prefix.append_text(_fan_out_label(node, view)))
        return
    if isinstance(node, JobNode):
        label = _label(node.key, state, node.job.target)
        retry = view.retries.get(node.key)
        if retry is not None and state == "retrying":
            label.append(f"  {retry.format()}", style="yellow")
        parent.add(prefix.append_text(label))
        return
    if isinstance(node, BatchNode):
        what = f"batch of {node.total:,}"
        label = _label(node.key, state, f"{node.name}: {what}" if node.name else what)
        bar = format_bar(view.batches.get(node.key), node.total, bar_width, view.paused)
        label.append("  ").append_text(bar)
        branch = parent.add(prefix.append_text(label))
        children: tuple[Node | FanOutNode, ...] = node.members[:_MEMBERS_SHOWN]
        hidden = len(node.members) - len(children)
    else:
        label = _label(node.key, state, f"chain of {len(node.steps)}")
        branch = parent.add(prefix.append_text(label))
        children, hidden = node.steps, 0
    chain_over = isinstance(node, ChainNode) and state in FINAL_STATES
    states = [_state(child, view) for child in children]
    if chain_over:
        states = ["skipped" if child_state == "pending" else child_state for child_state in states]
    _add_children(
        branch,
        list(zip(children, states, strict=True)),
        view,
        bar_width=bar_width,
        collapse=collapse,
    )
    if hidden:
        branch.add(Text(f"... and {hidden} more", style="dim"))
    group_over = state in FINAL_STATES or state == "interrupted"
    for callback_role, callback in callbacks(node):
        callback_state = _state(callback, view)
        if group_over and callback_state == "pending":
            callback_state = "not run"
        _add_node(
            branch,
            callback,
            view,
            callback_state,
            callback_role,
            bar_width=bar_width,
            collapse=collapse,
        )


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
        # Every batch has counters from the start (`compute_view`): a batch with none
        # finished has started only if a member has.
        counted = view.batches.get(node.key)
        started = (counted is not None and counted.finished > 0) or any(
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


def format_bar(
    batch: BatchView | None, total: int, width: int = 24, paused: str | None = None
) -> Text:
    """``[██████░░░░] 120/500 failed 2  40/s  ETA 9s`` for one batch.

    A run ``paused`` (`RunView.paused`) gets no ETA: ``waiting`` or ``stopping`` says
    why instead (an interrupted or finished run, nothing).
    """
    finished = batch.finished if batch else 0
    failed = batch.failed if batch else 0
    filled = min(int(width * finished / total) if total else width, width)
    bar = Text("█" * filled, style="green").append("░" * (width - filled), style="dim")
    text = Text("[").append_text(bar).append(f"] {finished:,}/{total:,}")
    if failed:
        text.append(f" failed {failed:,}", style="red")
    if batch is not None and batch.started_at is not None and finished > batch.baseline:
        elapsed = max(time.monotonic() - batch.started_at, 1e-6)
        rate = (finished - batch.baseline) / elapsed
        text.append(f"  {rate:,.0f}/s", style="dim")
        if finished < total and paused is None:
            text.append(f"  ETA {format_duration((total - finished) / rate)}", style="dim")
    live = batch is not None and batch.started_at is not None  # not a store's counts
    if live and finished < total and paused in ("waiting", "stopping"):
        text.append(f"  {paused}", style="yellow")
    return text


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


class RichReporter:
    """A live tree of the pipeline on a terminal; retries and failures scroll above it."""

    def __init__(self, console: Console, plan: Plan, view: RunView | None = None) -> None:
        self.console = console
        self.plan = plan
        self.view = view or RunView()
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
        if event.event == "run.stopping":
            self.console.print(Text(format_stopping(event, len(self.view.running)), "yellow"))
        self.view.apply(event)
        if event.event in ("job.retrying", "job.failed", "job.duplicate", "job.log"):
            self.console.print(format_event_message(event))

    def _render(self) -> RenderableType:
        # A narrow terminal gets a shorter bar, so that a batch's line does not wrap.
        bar_width = 24 if self.console.width >= 120 else 10
        # Taller than the terminal, the view would lose its bottom: the running steps.
        height = self.console.size.height - (2 if self.view.releases else 1)
        tree = format_tree(self.plan, self.view, bar_width=bar_width, height=height)
        if not self.view.releases:
            return Group(tree)
        releases = format_releases(self.view.releases)
        return Group(tree, Text(f"⏸ released {releases}", style="yellow"))
