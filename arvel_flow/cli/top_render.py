"""The text view of ``arvel-flow top``: one `Snapshot` as rich tables (pure)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arvel_flow.cli.durations import format_duration
from arvel_flow.cli.records import format_when
from arvel_flow.monitor import Snapshot


def format_top(snapshot: Snapshot) -> RenderableType:
    """The text view of one snapshot: a header, then one table per section."""
    alive = sum(worker.alive for worker in snapshot.workers)
    seen = f"{alive} worker(s) alive" if snapshot.workers_seen else "workers not seen"
    header = Text.assemble(
        ("arvel-flow top", "bold"),
        f"  {format_when(snapshot.taken_at)}  ",
        f"{seen}, {len(snapshot.runs)} run(s) in progress",
    )
    workers = Table("worker", "host", "pid", "queues", "load", "heartbeat", title="workers")
    for worker in snapshot.workers:
        age = f"{format_duration(worker.heartbeat_age)} ago"
        workers.add_row(
            worker.name,
            worker.host,
            "" if worker.pid is None else str(worker.pid),
            ",".join(worker.queues),
            "" if worker.concurrency is None else f"{worker.running or 0}/{worker.concurrency}",
            age if worker.alive else Text(f"{age} (dead)", style="red"),
        )
    queues = Table("queue", "depth", "lag", "rate", title="queues")
    for queue in snapshot.queues:
        queues.add_row(
            queue.name,
            str(queue.depth),
            "" if queue.lag is None else format_duration(queue.lag),
            "" if queue.rate is None else format_rate(queue.rate),
        )
    runs = Table("run", "pipeline", "progress", "started", title="runs in progress")
    for run in snapshot.runs:
        runs.add_row(
            run.run_id, run.name, f"{run.finished}/{run.total}", format_when(run.started_at)
        )
    failures = Table("failed", "job", "run", "error", "at", title="recent failures")
    for failure in snapshot.failures:
        failures.add_row(
            failure.failed_id,
            failure.job,
            failure.run_id or "",
            f"{failure.exception}: {failure.message}",
            format_when(failure.failed_at),
        )
    return Group(header, workers, queues, runs, failures)


def format_rate(per_second: float) -> str:
    """Jobs completed per second, to two significant places below 10 (``0.25/s``)."""
    if per_second >= 10:
        return f"{per_second:,.0f}/s"
    return f"{per_second:.2g}/s"
