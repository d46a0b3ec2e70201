"""Progress of a run as it happens: rich on a terminal, plain lines, or JSON lines.

Each reporter is an event listener. What they show is computed by pure ``format_*``
functions from a `RunView` (what the events said so far), so it can be tested without
a terminal; only the reporters print.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from arvel_flow.queue.events import Event
from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode, JobNode, Node, Plan, callbacks

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
    "retrying": ("↻", "yellow"),
    "released": ("⏸", "yellow"),
    "skipped": ("-", "dim"),
    "cancelled": ("⊘", "dim"),
    "duplicate": ("≡", "magenta"),
    "pending": ("·", "dim"),
}


@dataclass
class BatchView:
    """One batch's counters as the events report them."""

    total: int
    finished: int = 0
    failed: int = 0
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class RunView:
    """What the events of one run said so far."""

    states: dict[str, str] = field(default_factory=dict)
    batches: dict[str, BatchView] = field(default_factory=dict)
    status: str = "running"

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        name, step = event.event, event.step
        if name == "batch.progress" and step is not None:
            view = self.batches.setdefault(step, BatchView(int(event.data.get("total", 0))))
            view.finished = int(event.data.get("finished", view.finished))
            view.failed = int(event.data.get("failed", view.failed))
        elif name == "batch.finished" and step is not None:
            self.states[step] = str(event.data.get("status", "succeeded"))
        elif name == "chain.step" and step is not None:
            self.states.setdefault(step, "running")
        elif name == "run.finished":
            self.status = str(event.data.get("status", "finished"))
        elif name.startswith("job.") and step is not None:
            self.states[step] = _JOB_STATE.get(name, self.states.get(step, "pending"))


_JOB_STATE = {
    "job.dispatched": "pending",
    "job.started": "running",
    "job.succeeded": "succeeded",
    "job.failed": "failed",
    "job.retrying": "retrying",
    "job.released": "released",
    "job.duplicate": "duplicate",
}


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


def format_event_json(event: Event) -> str:
    """One JSON line with the fields of SPEC §5."""
    return json.dumps(event.to_dict(), default=str, separators=(",", ":"))


def format_tree(plan: Plan, view: RunView) -> Tree:
    """The pipeline as a tree, each step marked with its state, a bar per batch."""
    tree = Tree(Text(f"{plan.name}  ", style="bold").append(view.status, style=_style(view.status)))
    _add_node(tree, plan.root, view)
    return tree


def _add_node(parent: Tree, node: Node | FanOutNode, view: RunView) -> None:
    if isinstance(node, FanOutNode):
        parent.add(Text(f"{node.key}[0..{len(node.items) - 1}]  {node.job.target}", style="dim"))
        return
    state = view.states.get(node.key, "pending")
    if isinstance(node, JobNode):
        parent.add(_label(node.key, state, node.job.target))
        return
    if isinstance(node, BatchNode):
        label = _label(node.key, state, f"batch of {node.total}")
        label.append("  ").append_text(format_bar(view.batches.get(node.key), node.total))
        branch = parent.add(label)
        shown = node.members if len(node.members) <= 20 else node.members[:20]
        children: tuple[Node | FanOutNode, ...] = tuple(shown)
    else:
        assert isinstance(node, ChainNode)
        branch = parent.add(_label(node.key, state, f"chain of {len(node.steps)}"))
        children = node.steps
    for child in children:
        _add_node(branch, child, view)
    for role, callback in callbacks(node):
        sub = branch.add(Text(role, style="italic"))
        _add_node(sub, callback, view)


def format_bar(batch: BatchView | None, total: int, width: int = 24) -> Text:
    """``[██████░░░░] 120/500 failed 2  40/s  ETA 9s`` for one batch."""
    finished = batch.finished if batch else 0
    failed = batch.failed if batch else 0
    filled = int(width * finished / total) if total else width
    bar = Text("█" * filled, style="green").append("░" * (width - filled), style="dim")
    text = Text("[").append_text(bar).append(f"] {finished}/{total}")
    if failed:
        text.append(f" failed {failed}", style="red")
    if batch is not None and finished:
        elapsed = max(time.monotonic() - batch.started_at, 1e-6)
        rate = finished / elapsed
        remaining = (total - finished) / rate if rate else 0.0
        text.append(f"  {rate:,.0f}/s  ETA {remaining:,.0f}s", style="dim")
    return text


def _label(key: str, state: str, detail: str) -> Text:
    icon, style = STATE_STYLE.get(state, ("?", ""))
    return (
        Text(f"{icon} ", style=style).append(key, style="bold").append(f"  {detail}", style="dim")
    )


def _style(status: str) -> str:
    return STATE_STYLE.get(status, ("", "cyan"))[1]


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
        print(format_event_line(event), file=self._stream, flush=True)


class JsonReporter:
    """Every event as one JSON object per line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        self._stream.write(format_event_json(event) + "\n")


class RichReporter:
    """A live tree of the pipeline on a terminal; retries and failures scroll above it."""

    def __init__(self, console: Console, plan: Plan) -> None:
        self.console = console
        self.plan = plan
        self.view = RunView()
        self._live = Live(console=console, refresh_per_second=8, get_renderable=self._render)

    def __enter__(self) -> RichReporter:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.refresh()
        self._live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        self.view.apply(event)
        if event.event in ("job.retrying", "job.released", "job.failed", "job.duplicate"):
            self.console.print(Text(format_event_line(event), style=_EVENT_STYLE[event.event]))

    def _render(self) -> RenderableType:
        return Group(format_tree(self.plan, self.view))


_EVENT_STYLE = {
    "job.retrying": "yellow",
    "job.released": "yellow",
    "job.failed": "red",
    "job.duplicate": "magenta",
}
