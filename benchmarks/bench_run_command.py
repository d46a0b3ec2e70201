"""What ``arvel-flow run --broker redis`` costs over the Python API, for a one-job pipeline.

One ``arvel-flow worker`` runs the job (a no-op) for every side, in turn (interleaved:
A, B, C, A, B, C, ...), ``REPEATS`` times each; medians are printed, and the command's
overhead over each form of the API:

A. the command: ``arvel-flow run one.yaml --broker redis --output json``, a process
   of its own, from its start to its exit;
B. the API in a process of its own: ``python -c "asyncio.run(arvel_flow.run(...))"``
   (the same interpreter start-up and imports as the command, none of its CLI);
C. the API in this (warm) process: ``await arvel_flow.run(...)``.

Target (#12 §4): A - B < 0.25 s. A - C adds the interpreter's start and imports, which
``python -X importtime -m arvel_flow.cli.app run ...`` breaks down.

Run: ``.venv/bin/python benchmarks/bench_run_command.py`` (Redis on 127.0.0.1:6379;
``BENCH_REDIS_URL`` to change). Keys live under a prefix of their own, deleted after.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from arvel_flow.queue.job import Job

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = os.environ.setdefault("BENCH_PREFIX", f"arvel-flow-bench-run-{os.getpid()}:")
REPEATS = 5
HERE = Path(__file__).resolve().parent
PIPELINE = """\
version: 1
name: one-job
pipeline:
  chain:
    - id: only
      job: bench_run_command:NoOp
"""


class NoOp(Job):
    """Does nothing: what is measured is everything around it."""

    async def handle(self) -> None:
        return None


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # Start-up as users have it: with compiled bytecode cached.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(
            [str(HERE), os.environ.get("BENCH_ARVEL_ROOT", str(HERE.parent))]
        ),
        "ARVEL_FLOW_STORE": URL,
        "ARVEL_FLOW_BROKER": "redis",
        "ARVEL_FLOW_PREFIX": PREFIX,
        "ARVEL_FLOW_ALLOWED_MODULES": "bench_run_command",
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds of ``command``, run to its exit."""
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(command, env=environment(), cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, _children_cpu() - cpu


async def in_process(pipeline: Path) -> tuple[float, float]:
    import arvel_flow
    from arvel_flow.settings import QueueSettings

    settings = QueueSettings(broker="redis", store=URL, prefix=PREFIX)
    cpu, start = time.process_time(), time.perf_counter()
    result = await arvel_flow.run(pipeline, settings=settings)
    took = time.perf_counter() - start, time.process_time() - cpu
    assert result.status == "succeeded", result
    return took


def main() -> None:
    sys.path.insert(0, str(HERE))  # the worker's and this process's `bench_run_command`
    workdir = Path(tempfile.mkdtemp())
    pipeline = workdir / "one.yaml"
    pipeline.write_text(PIPELINE)
    command = [str(Path(sys.executable).parent / "arvel-flow"), "run", str(pipeline)]
    command += ["--broker", "redis", "--output", "json"]
    script = (
        "import asyncio, arvel_flow; "
        f"r = asyncio.run(arvel_flow.run({str(pipeline)!r})); assert r.ok, r"
    )
    api = [sys.executable, "-c", script]
    worker = subprocess.Popen(
        [sys.executable, "-m", "arvel_flow.cli.worker", "--concurrency", "8"],
        env=environment(),
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times: dict[str, list[tuple[float, float]]] = {
        "A command": [],
        "B API, own process": [],
        "C API, here": [],
    }
    try:
        time.sleep(3)  # the worker is up
        timed(command, workdir)  # warm the file system caches
        for _ in range(REPEATS):
            times["A command"].append(timed(command, workdir))
            times["B API, own process"].append(timed(api, workdir))
            times["C API, here"].append(asyncio.run(in_process(pipeline)))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        client = redis.Redis.from_url(URL)
        keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    import arvel_flow

    print(f"one-job pipeline over redis, one worker, medians of {REPEATS} (interleaved)")
    print(f"arvel_flow from {Path(arvel_flow.__file__).parent}")
    for what, index in (("wall", 0), ("cpu", 1)):
        a, b, c = (statistics.median(v[index] for v in values) for values in times.values())
        print(
            f"  {what}: command {a * 1000:.0f} ms, API own process {b * 1000:.0f} ms, "
            f"here {c * 1000:.0f} ms"
        )
        print(f"    command - API in its own process: {(a - b) * 1000:+.0f} ms (target < +250 ms)")
        print(f"    command - API here (start-up included): {(a - c) * 1000:+.0f} ms")


if __name__ == "__main__":
    main()
