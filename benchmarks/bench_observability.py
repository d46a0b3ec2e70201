"""What observability costs per job: traces, metrics and an observer, each off and on.

One batch of no-op jobs (a fan-out, so the orchestration runs too) through
`TaskiqQueue`'s in-process pool on the memory store, in five set-ups run interleaved
(A, B, C, D, E, A, B, ...) so that the machine's load falls on each alike:

- ``off``: nothing attached (the default: tracing off costs one attribute read per
  attempt and per finished step);
- ``traces``: tracing on (`arvel_flow.tracing.setup.ProcessTracer`, the batch processor)
  with an exporter that drops what it gets, so the figure is the spans' making, not a
  collector's network;
- ``traces+export``: the same, exporting to memory through the OTLP encoder, as the
  OTLP exporter does before it sends (the encoding is the CPU part of an export);
- ``metrics``: the Prometheus listener of ``--metrics-port`` on the event bus;
- ``observer``: one no-op ``async`` observer (`Observers`), which also makes the
  runner capture each job's log records (someone listens).

Prints each set-up's median time per job over the repeats and its ratio to ``off``
measured in the same run; with ``--calls``, also the Python function calls per job
each set-up adds to ``off`` (cProfile: a count that does not depend on the machine's
load). Needs the ``otel`` and ``metrics`` extras.

Run: ``.venv/bin/python benchmarks/bench_observability.py [--jobs N] [--repeats N] [--calls]``
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from arvel_flow.metrics.listener import MetricsListener
from arvel_flow.queue import spans
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.job import Job
from arvel_flow.queue.observers import Observers
from arvel_flow.tracing.setup import ProcessTracer


class NoOp(Job):
    """Does nothing: what is measured is everything around it."""

    n: int = 0

    async def handle(self) -> None:
        return None


class Dropping(SpanExporter):
    """Takes spans and does nothing with them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Encoding(SpanExporter):
    """Encodes spans as the OTLP exporter does before sending, then drops the bytes."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializePartialToString()
        return SpanExportResult.SUCCESS


async def _batch(jobs: int, events: EventBus) -> float:
    queue = TaskiqQueue(concurrency=16, events=events)
    flow = Batch([FanOut(NoOp(), [{"n": i} for i in range(jobs)])])
    gc.collect()
    start = time.perf_counter()
    await flow.dispatch(queue)
    elapsed = time.perf_counter() - start
    await queue.close()
    return elapsed


async def off(jobs: int) -> float:
    return await _batch(jobs, EventBus())


def _traced(exporter: SpanExporter) -> Callable[[int], Awaitable[float]]:
    async def traced(jobs: int) -> float:
        tracer = ProcessTracer([exporter], print)
        spans.install(tracer.hooks)
        try:
            elapsed = await _batch(jobs, EventBus())
            # What the batch processor's thread still has to do belongs to the cost.
            start = time.perf_counter()
            tracer.flush()
            return elapsed + time.perf_counter() - start
        finally:
            tracer.shutdown()

    return traced


async def metrics(jobs: int) -> float:
    events = EventBus()
    events.subscribe(MetricsListener(CollectorRegistry()))
    return await _batch(jobs, events)


async def observer(jobs: int) -> float:
    events = EventBus()

    async def ignore(event: Event) -> None:
        return None

    observers = Observers(events, [("ignore", ignore)])
    try:
        return await _batch(jobs, events)
    finally:
        await observers.aclose()


SETUPS: dict[str, Callable[[int], Awaitable[float]]] = {
    "off": off,
    "traces": _traced(Dropping()),
    "traces+export": _traced(Encoding()),
    "metrics": metrics,
    "observer": observer,
}


async def count_calls(jobs: int) -> None:
    """Function calls per job each set-up adds to ``off`` (one profiled run each)."""
    calls = {}
    for name, setup in SETUPS.items():
        profile = cProfile.Profile()
        profile.enable()
        await setup(jobs)
        profile.disable()
        calls[name] = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    print(f"{'set-up':<15} {'calls/job':>10} {'extra calls/job':>16}")
    for name, total in calls.items():
        print(f"{name:<15} {total / jobs:>10.0f} {(total - calls['off']) / jobs:>+16.0f}")


async def main(jobs: int, repeats: int, calls: bool) -> None:
    print(f"{jobs:,} no-op jobs as one batch, TaskiqQueue in-process, memory store")
    await off(min(jobs, 500))  # warm up imports and caches
    times: dict[str, list[float]] = {name: [] for name in SETUPS}
    for _ in range(repeats):
        for name, setup in SETUPS.items():
            times[name].append(await setup(jobs))
    baseline = statistics.median(times["off"]) / jobs
    print(f"{'set-up':<15} {'µs/job (median)':>16} {'vs off':>8} {'extra µs/job':>13}")
    for name, measured in times.items():
        per_job = statistics.median(measured) / jobs
        extra = (per_job - baseline) * 1e6
        line = f"{name:<15} {per_job * 1e6:>16.1f} {per_job / baseline:>7.2f}x {extra:>+13.1f}"
        print(line)
    if calls:
        await count_calls(jobs)


def _arguments() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", action="store_true", help="Also count calls per job.")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    asyncio.run(main(arguments.jobs, arguments.repeats, arguments.calls))
