"""A run's events as plain lines or JSON lines: what ``run`` prints without a terminal.

`PlainReporter` prints timestamped lines for the notable events; `JsonReporter` one
JSON object per event (SPEC §5). Both are event listeners, and neither needs rich: a
run with ``--output plain`` or ``--output json`` does not import it (the live tree of
`arvel_flow.cli.progress` does).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping
from typing import IO, Any

from arvel_flow.cli.durations import format_duration
from arvel_flow.queue.events import Event

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
        "job.log",
        "run.stopping",
        "run.interrupted",
        "run.detached",
    }
)
"""Events a plain reporter prints (releases aggregated); the rest only move counters."""


def track_running(running: set[str], event: Event) -> None:
    """Keep ``running`` (job steps) up to date with one event."""
    if event.step is None or not event.event.startswith("job.") or event.event == "job.log":
        return
    if event.event == "job.started":
        running.add(event.step)
    else:
        running.discard(event.step)


def format_retry(delay: float, attempt: int, attempts: int | None) -> str:
    """``retrying in 58s (attempt 2 of 4)``."""
    of = f" of {attempts}" if attempts else ""
    return f"retrying in {format_duration(delay)} (attempt {attempt}{of})"


def format_releases(releases: Mapping[str, int]) -> str:
    """``319 times (rate limited: 300, lock busy: 19)``: how often jobs were put back, why."""
    total = sum(releases.values())
    reasons = ", ".join(f"{reason}: {count:,}" for reason, count in releases.items())
    return f"{total:,} time{'s' * (total != 1)} ({reasons})"


def format_stopping(event: Event, running: int) -> str:
    """What the first (or second) Ctrl-C does, said at once."""
    action = event.data.get("action")
    jobs = f"{running:,} running job{'s' * (running != 1)}"
    if action == "detach":
        return "stopping: no longer following; the run goes on in the workers"
    if action == "cancel":
        return f"cancelling {jobs}"
    return f"stopping: waiting for {jobs} (Ctrl-C again to cancel them)"


def format_event_line(event: Event) -> str:
    """One plain line: time, event, step, job, attempt and the event's details.

    Durations are written for people (``delay=1.5s``); a retry ends with what comes
    next: ``retrying in 58s (attempt 2 of 4)``.
    """
    parts = [format_stamp(event.time), event.event]
    if event.step:
        parts.append(event.step)
    if event.job:
        parts.append(f"{event.job} attempt={event.attempt}")
    data = dict(event.data)
    if event.event == "job.log":
        parts.append(f"{data.get('level')} {data.get('logger')}: {data.get('message')}")
        # A traceback's lines are indented: none of them reads as a line of its own.
        return " ".join(parts).replace("\n", "\n    ")
    if event.event == "job.retrying":
        delay = float(data.pop("delay", 0.0) or 0.0)
        limit = data.pop("max_attempts", None)
        parts.extend(f"{key}={value}" for key, value in data.items())
        parts.append(format_retry(delay, (event.attempt or 0) + 1, limit))
        return " ".join(parts)
    for key, value in data.items():
        if isinstance(value, Mapping):
            # Counts: those that are not zero, one pair each (``succeeded=3 failed=1``).
            parts.extend(f"{name}={count}" for name, count in value.items() if count)
        else:
            parts.append(f"{key}={_value(key, value)}")
    return " ".join(parts)


def _value(key: str, value: Any) -> Any:
    if key in ("delay", "seconds") and isinstance(value, int | float):
        return format_duration(value)
    return value


def format_stamp(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def format_event_json(event: Event) -> str:
    """One JSON line with the fields of SPEC §5."""
    return json.dumps(event.to_dict(), default=str, separators=(",", ":"))


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
    """Timestamped lines for notable events, and batch progress at most once a second.

    Releases are counted, not listed: one line a second at most says how many there
    were and why, and the last of them is said before any other line. A batch's last
    progress held back by the throttle is said before its end (or the run's), so that
    the final counts are always printed.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last_progress: dict[str, float] = {}
        self._held: dict[str, Event] = {}
        self._running: set[str] = set()
        self._releases: Counter[str] = Counter()
        self._released_at = 0.0

    def __call__(self, event: Event) -> None:
        track_running(self._running, event)
        if event.event == "job.released":
            self._releases[str(event.data.get("reason") or "released")] += 1
            if time.monotonic() - self._released_at >= 1.0:
                self._say_releases(event.time)
            return
        if event.event == "run.stopping":
            self._say_releases(event.time)
            line = format_stopping(event, len(self._running))
            write_line(self._stream, f"{format_stamp(event.time)} {line}")
            return
        if event.event == "batch.progress" and event.step:
            now = time.monotonic()
            finished = event.data.get("finished") == event.data.get("total")
            if not finished and now - self._last_progress.get(event.step, 0.0) < 1.0:
                self._held[event.step] = event
                return
            self._last_progress[event.step] = now
            self._held.pop(event.step, None)
        elif event.event not in NOTABLE:
            return
        elif event.event == "batch.finished" and event.step in self._held:
            write_line(self._stream, format_event_line(self._held.pop(event.step)))
        elif event.event.startswith("run."):
            for held in self._held.values():
                write_line(self._stream, format_event_line(held))
            self._held.clear()
        self._say_releases(event.time)
        write_line(self._stream, format_event_line(event))

    def _say_releases(self, at: float) -> None:
        """The releases not yet said, in one line (nothing when there are none)."""
        if not self._releases:
            return
        write_line(
            self._stream, f"{format_stamp(at)} job.released {format_releases(self._releases)}"
        )
        self._releases.clear()
        self._released_at = time.monotonic()


class JsonReporter:
    """Every event as one JSON object per line, flushed at once for whoever follows it."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        write_line(self._stream, format_event_json(event))
