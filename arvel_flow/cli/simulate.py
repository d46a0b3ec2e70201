"""``run FILE --dry-run --fail SPEC``: a simulated run's timeline, for people or as JSON.

`format_timeline` is pure: one line per attempt outcome, release and batch end at its
virtual time (``+2m 5s`` from the start), then each step's final state and the last
line a real run prints. `simulate_file` loads the file as ``plan`` does (an unset
environment variable is a warning: a simulation needs no production environment),
runs the simulation and prints it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from arvel_flow.durations import format_duration

if TYPE_CHECKING:
    from arvel_flow.queue.events import Event
    from arvel_flow.queue.plan import Plan
    from arvel_flow.testing.faults import Fault
    from arvel_flow.testing.simulation import Simulation

_TIMEOUT = "arvel_flow.errors.JobTimeoutError: "


def simulate_file(
    file: Path,
    set_vars: Mapping[str, Any],
    faults: Sequence[Fault],
    output: str,
    events_file: Path | None,
) -> int:
    """Simulate a pipeline file under ``faults`` and print the timeline (or the events,
    as JSON lines, with ``output`` json; also to ``events_file``); the exit code a real
    run would have."""
    from arvel_flow.compiler import compile_plan, load_pipeline
    from arvel_flow.errors import ConfigIssue
    from arvel_flow.testing.simulation import simulate

    warnings: list[ConfigIssue] = []
    spec = load_pipeline(str(file), set_vars=set_vars, file=str(file), warnings=warnings)
    for warning in warnings:
        click.echo(warning.format(), err=True)
    plan = compile_plan(spec)
    simulation = asyncio.run(simulate(plan, faults))
    if events_file is not None:
        _write_events(simulation.events, events_file)
    if output == "json":
        _write_events(simulation.events, None)
    else:
        for line in format_timeline(simulation, plan, faults):
            click.echo(line)
    return simulation.exit_code


def _write_events(events: Sequence[Event], path: Path | None) -> None:
    """The events as JSON lines, on stdout or appended to ``path`` (secrets scrubbed)."""
    from arvel_flow.cli.event_lines import JsonReporter
    from arvel_flow.secrets import ScrubbingStream

    if path is None:
        reporter = JsonReporter(sys.stdout)
        for event in events:
            reporter(event)
        return
    with path.open("a", encoding="utf-8") as stream:
        reporter = JsonReporter(cast(IO[str], ScrubbingStream(stream)))
        for event in events:
            reporter(event)


def format_timeline(simulation: Simulation, plan: Plan, faults: Sequence[Fault]) -> list[str]:
    """The simulated run as lines: a header, the timeline, final states, the last line."""
    from arvel_flow.cli.summary import compute_rows, format_counts, format_summary_lines

    failing = " ".join(f"--fail {fault}" for fault in faults) or "no --fail"
    lines = [
        f"simulation of {plan.name} ({failing}): no job ran; times are virtual, from the start"
    ]
    starts = {
        (event.step, event.attempt): event.time
        for event in simulation.events
        if event.event == "job.started"
    }
    width = max((len(event.step or "") for event in simulation.events), default=0)
    for event in simulation.events:
        what = _describe(event, plan, starts, simulation.started_at)
        if what is not None:
            offset = "+" + format_duration(event.time - simulation.started_at)
            lines.append(f"  {offset:>9}  {event.step or '':<{width}}  {what}")
    lines.append("final states:")
    lines += [f"  {line}" for line in format_summary_lines(compute_rows(plan, simulation.steps))]
    result = simulation.result
    lines.append(
        f"run {result.run_id} {result.status}: {format_counts(result)} "
        f"(simulated: {format_duration(simulation.elapsed)} of virtual time)"
    )
    return lines


def _describe(
    event: Event, plan: Plan, starts: dict[tuple[str | None, int | None], float], origin: float
) -> str | None:
    """What the timeline says of ``event``; None for events it leaves out."""
    data = event.data
    attempt = f"attempt {event.attempt}"
    if event.event == "job.succeeded":
        return f"{attempt} succeeded{_role(plan, event.step)}"
    if event.event == "job.released":
        delay = format_duration(float(data.get("delay", 0.0)))
        return f"{attempt} released ({data.get('reason')}): runs again in {delay}"
    if event.event == "job.duplicate":
        return "refused as a duplicate"
    if event.event not in ("job.retrying", "job.failed"):
        if event.event == "batch.finished":
            return f"batch {data.get('status')}"
        return None
    error = _error(str(data.get("error", "")))
    started = starts.get((event.step, event.attempt), event.time)
    if started != event.time:
        error += f", started +{format_duration(started - origin)}"
    if event.event == "job.retrying":
        limit = data.get("max_attempts")
        wait = format_duration(float(data.get("delay", 0.0)))
        return f"{attempt} of {limit} failed ({error}); waits {wait}"
    role = _role(plan, event.step)
    return f"{attempt} failed for good ({error}): {data.get('reason')}{role}"


def _error(error: str) -> str:
    """The error's class without its module (the message is the simulation's own), or
    how long the attempt ran before it timed out."""
    if error.startswith(_TIMEOUT):
        return "timed out after " + error.rpartition(" timed out after ")[2]
    return error.partition(": ")[0].rpartition(".")[2]


def _role(plan: Plan, key: str | None) -> str:
    """`` (catch of digests)`` for a callback step; nothing for others."""
    parent = None if key is None else plan.parent(key)
    if parent is None or parent[1] not in ("then", "catch", "finally"):
        return ""
    return f" ({parent[1]} of {parent[0].key})"
