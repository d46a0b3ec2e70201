"""The embedded default (what ``arvel-flow run`` uses), against bare Taskiq, in the same run.

Runs go through the front door (`arvel_flow.launch`), as ``arvel-flow run`` does: a
`Run` begun on the queue the settings describe, followed to its end by `Run.wait`.

1. Throughput of a 20,000-job batch of no-op jobs on the embedded default: `TaskiqQueue`
   with its in-process pool (`LocalTransport`), run state in a `SqliteStore` with the default
   ``commit_interval`` (grouped commits), concurrency 16 -- against the same 20,000
   jobs through bare Taskiq's `InMemoryBroker` and through Celery in eager mode
   (``task_always_eager``: each ``delay()`` runs the task in the caller; skipped, saying
   so, when Celery is not installed: ``pip install -e '.[bench]'``). The runs are
   interleaved (A, B, C, ... A, B, C) and the medians compared. Targets: sqlite store
   >= 0.6x bare Taskiq and >= 2x Celery eager; memory store >= 0.8x bare Taskiq.
2. Peak memory (RSS) of a 100,000-job fan-out on the embedded default, each run in a
   fresh interpreter: through the Python API (a `Batch` of a `FanOut`, begun as a
   `Run`), and through the real ``arvel-flow run`` command on a pipeline file. Target:
   < 150 MB (#12). The interpreter's own RSS (before and after importing arvel-flow) is
   printed as the baseline.

Run: ``.venv/bin/python benchmarks/bench_embedded.py`` (``--breakdown`` also times each
layer on its own: driver and runner, run state in memory, sqlite grouped or not).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_core import NoOp, bare_taskiq  # the same job and baseline as the core benchmark

from arvel_flow.launch import Run
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import new_id
from arvel_flow.queue.flow import FanOut
from arvel_flow.settings import QueueSettings
from arvel_flow.wiring import make_queue

JOBS = 20_000
FAN_OUT = 100_000
REPEATS = 5
CONCURRENCY = 16
SQLITE_VS_TASKIQ = 0.6
SQLITE_VS_CELERY = 2.0
MEMORY_VS_TASKIQ = 0.8
MEMORY_TARGET_MB = 150


def embedded_settings(directory: str) -> QueueSettings:
    """The embedded default, its sqlite file in ``directory``; everything else default."""
    return QueueSettings(
        driver="taskiq",
        broker="memory",
        store=f"sqlite:{directory}/state.db",
        concurrency=CONCURRENCY,
    )


async def timed_fan_out(settings: QueueSettings, count: int) -> float:
    """Seconds from dispatch to the recorded end of a ``count``-member batch, as a `Run`."""
    queue = make_queue(settings)
    plan = Batch([FanOut(NoOp, [{"n": i} for i in range(count)])]).to_plan("bench")
    start = time.perf_counter()
    async with await Run.begin(queue, plan, new_id()[:12]) as run:
        result = await run.wait()
        elapsed = time.perf_counter() - start  # closing (after the end) is not timed
    assert result.progress == (count, count), result.progress
    return elapsed


async def embedded_batch(count: int, **changes: Any) -> float:
    """A run of a ``count``-member batch, from dispatch to its recorded end.

    ``changes`` alter the embedded default settings (for the breakdown).
    """
    with tempfile.TemporaryDirectory() as directory:
        settings = embedded_settings(directory).model_copy(update=changes)
        return await timed_fan_out(settings, count)


async def driver_only(count: int) -> float:
    """The same jobs dispatched with ``bulk``: driver and runner, no run state."""
    queue = TaskiqQueue(concurrency=CONCURRENCY)
    jobs = [NoOp(n=i) for i in range(count)]
    start = time.perf_counter()
    await queue.bulk(jobs)
    await queue.join()
    elapsed = time.perf_counter() - start
    await queue.close()
    return elapsed


async def breakdown() -> None:
    """Where the time goes, layer by layer, each measured in the same conditions."""
    layers: dict[str, Callable[[], Awaitable[float]]] = {
        "bare taskiq InMemoryBroker": lambda: bare_taskiq(JOBS),
        "+ arvel-flow driver and runner (bulk)": lambda: driver_only(JOBS),
        "+ run state, memory store": lambda: embedded_batch(JOBS, store="memory"),
        "+ sqlite store, grouped commits": lambda: embedded_batch(JOBS),
        "  sqlite store, a commit per write": lambda: embedded_batch(JOBS, commit_interval=0),
    }
    samples: dict[str, list[float]] = {label: [] for label in layers}
    for _ in range(REPEATS):
        for label, measure in layers.items():
            samples[label].append(await measure())
    print(f"breakdown, {JOBS:,} no-op jobs, best of {REPEATS} (us per job):")
    previous = None
    for label, times in samples.items():
        per_job = min(times) / JOBS * 1e6
        step = "" if previous is None else f"  ({per_job - previous:+.1f} us)"
        print(f"  {label:<40} {JOBS / min(times):>9,.0f} jobs/s  {per_job:6.1f} us{step}")
        if not label.startswith("  "):
            previous = per_job


def memory_mb() -> dict[str, float]:
    """This process's current and peak RSS in MB, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


async def fan_out_in_this_process(count: int) -> dict[str, float]:
    """Run a ``count``-job fan-out here; RSS before and after (a fresh interpreter's job)."""
    before = memory_mb()
    with tempfile.TemporaryDirectory() as directory:
        elapsed = await timed_fan_out(embedded_settings(directory), count)
    after = memory_mb()
    return {
        "imported_rss_mb": before["VmRSS"],
        "peak_rss_mb": after["VmHWM"],
        "seconds": elapsed,
    }


def child_rss(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command to its end; its own peak RSS in MB (``wait4``'s rusage) and stdout."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(args, stdout=out, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise subprocess.CalledProcessError(process.returncode, args)
        out.seek(0)
        return usage.ru_maxrss / 1024, out.read()


def bare_interpreter_rss() -> float:
    script = "from pathlib import Path; print(Path('/proc/self/status').read_text())"
    _, out = child_rss([sys.executable, "-c", script])
    line = next(line for line in out.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def cli_fan_out(count: int) -> tuple[float, float]:
    """``arvel-flow run`` on a file with a ``count``-item matrix: peak RSS (MB), seconds."""
    with tempfile.TemporaryDirectory() as directory:
        pipeline = Path(directory) / "fan_out.yaml"
        pipeline.write_text(
            "version: 1\nname: fan-out\npipeline:\n  batch:\n"
            "    - job: bench_embedded:NoOp\n"
            f"      matrix: {{n: {json.dumps(list(range(count)))}}}\n",
            encoding="utf-8",
        )
        command = Path(sys.executable).parent / "arvel-flow"
        args = [
            str(command),
            "run",
            str(pipeline),
            "--store",
            f"sqlite:{directory}/state.db",
            "--output",
            "plain",
        ]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
        start = time.perf_counter()
        peak, _ = child_rss(args, env)
        return peak, time.perf_counter() - start


def celery_eager(count: int) -> float:
    """Seconds for ``count`` no-op tasks through Celery with ``task_always_eager``."""
    from celery import Celery

    app = Celery("bench", broker="memory://")
    app.conf.task_always_eager = True
    app.conf.task_store_eager_result = False

    @app.task
    def noop(n: int) -> None:
        return None

    start = time.perf_counter()
    for i in range(count):
        noop.delay(i)
    return time.perf_counter() - start


def celery_installed() -> bool:
    try:
        import celery  # noqa: F401
    except ImportError:
        return False
    return True


async def throughput() -> None:
    runs: dict[str, Callable[[], Awaitable[float]]] = {
        "bare taskiq InMemoryBroker": lambda: bare_taskiq(JOBS),
        "embedded default, sqlite store": lambda: embedded_batch(JOBS),
        "embedded, memory store": lambda: embedded_batch(JOBS, store="memory"),
    }
    if celery_installed():

        async def celery() -> float:
            return celery_eager(JOBS)

        runs["celery eager (task_always_eager)"] = celery
    samples: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(REPEATS):
        for label, measure in runs.items():  # interleaved: A, B, C, A, B, C, ...
            samples[label].append(await measure())
    rates = {label: JOBS / statistics.median(times) for label, times in samples.items()}
    print(
        f"{JOBS:,} no-op jobs as one batch, medians of {REPEATS} interleaved runs "
        f"(embedded: local pool, commit_interval {QueueSettings().commit_interval}s, "
        f"concurrency {CONCURRENCY}):"
    )
    for label, rate in rates.items():
        print(f"  {label:<37} {rate:>9,.0f} jobs/s")
    if "celery eager (task_always_eager)" not in rates:
        print("  celery eager: skipped (Celery is not installed: pip install -e '.[bench]')")
    bare = rates["bare taskiq InMemoryBroker"]
    checks = [
        ("sqlite store", "embedded default, sqlite store", bare, "bare taskiq", SQLITE_VS_TASKIQ),
        ("memory store", "embedded, memory store", bare, "bare taskiq", MEMORY_VS_TASKIQ),
    ]
    celery_rate = rates.get("celery eager (task_always_eager)")
    if celery_rate is not None:
        checks.append(
            (
                "sqlite store",
                "embedded default, sqlite store",
                celery_rate,
                "celery eager",
                SQLITE_VS_CELERY,
            )
        )
    for name, label, baseline, against, target in checks:
        ratio = rates[label] / baseline
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"  {name}: {ratio:.2f}x {against} (target >= {target}x: {verdict})")


def memory() -> None:
    bare_rss = bare_interpreter_rss()
    _, out = child_rss([sys.executable, __file__, "--fan-out-child", str(FAN_OUT)])
    child = json.loads(out)
    api_peak = child["peak_rss_mb"]
    cli_peak, cli_seconds = cli_fan_out(FAN_OUT)
    print(f"peak RSS of a {FAN_OUT:,}-job fan-out on the embedded default (fresh interpreters):")
    print(f"  bare interpreter                      {bare_rss:>7.1f} MB")
    print(f"  after importing arvel-flow            {child['imported_rss_mb']:>7.1f} MB")
    for label, peak, seconds in (
        ("Python API (Batch of a FanOut)", api_peak, child["seconds"]),
        ("arvel-flow run FILE (YAML matrix)", cli_peak, cli_seconds),
    ):
        verdict = "ok" if peak < MEMORY_TARGET_MB else "MISSED"
        print(
            f"  {label:<37} {peak:>7.1f} MB peak (target < {MEMORY_TARGET_MB} MB: {verdict}); "
            f"{FAN_OUT / seconds:,.0f} jobs/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fan-out-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-memory", action="store_true", help="Measure throughput only.")
    parser.add_argument("--breakdown", action="store_true", help="Also time each layer on its own.")
    args = parser.parse_args()
    if args.fan_out_child:
        print(json.dumps(asyncio.run(fan_out_in_this_process(args.fan_out_child))))
        return
    asyncio.run(throughput())
    if args.breakdown:
        asyncio.run(breakdown())
    if not args.skip_memory:
        memory()


if __name__ == "__main__":
    main()
