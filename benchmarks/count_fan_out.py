"""What one job of the Redis fan-out costs: commands, round trips, CPU; ours and Dramatiq's.

Wall times on a shared, loaded machine say little (and a tool with more threads gets
more of the CPU there); what a job costs does not depend on the load. This starts a
Redis server of its own (``redis-server`` on ``BENCH_COUNT_PORT``, 6390 by default,
stopped by pid), one worker process with its defaults otherwise (``arvel-flow worker
--processes 1``, ``dramatiq -p 1``), runs a warm-up and then the 2,000-job fan-out of
`bench_distributed` ``BENCH_REPEATS`` (3) times each, interleaved, and prints medians of:

- commands per job the server ran (``INFO commandstats``; those a Lua script calls
  are counted too, as Redis counts them), the most frequent printed per run;
- round trips per job: the server's socket reads (``total_reads_processed``: a
  pipeline that arrives in one read is one), every client counted: the sender and
  the reading of results too, not the worker alone;
- the worker's CPU per job (user + system, all its processes) and the server's.

Run: ``.venv/bin/python benchmarks/count_fan_out.py`` (``pip install -e '.[bench]'``
for Dramatiq; without it only ours is counted).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PORT = int(os.environ.get("BENCH_COUNT_PORT", "6390"))
URL = f"redis://127.0.0.1:{PORT}/0"
PREFIX = "count:"
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
JOBS = 2_000
TOP = 10
"""Commands listed per run, the most frequent first."""
HERE = Path(__file__).resolve().parent
# `bench_distributed` and the peers read these when imported.
os.environ.update(BENCH_REDIS_URL=URL, BENCH_PREFIX=PREFIX, BENCH_BROKER="redis")
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_distributed  # noqa: E402
import redis  # noqa: E402  (after the environment the modules below read)


def start_redis() -> int:
    """A Redis of this benchmark's own; its pid."""
    pidfile = Path(tempfile.mkdtemp()) / "redis.pid"
    subprocess.run(
        ["redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(pidfile)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def session_cpu(session: int) -> float:
    """CPU seconds (user + system) of every process in ``session``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def start_worker(command: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        "ARVEL_FLOW_STORE": URL,
        "ARVEL_FLOW_BROKER": "redis",
        "ARVEL_FLOW_URL": URL,
        "ARVEL_FLOW_PREFIX": PREFIX,
    }
    quiet = subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", *command],
        env=env, cwd=HERE, stdout=quiet, stderr=quiet, start_new_session=True,
    )  # fmt: skip


def measure(client: redis.Redis, worker: int, run: Callable[[], Any]) -> dict[str, float]:
    """One fan-out: what each job cost."""
    client.config_resetstat()
    before_cpu, before_server = session_cpu(worker), client.info("cpu")
    before_reads = int(client.info("stats")["total_reads_processed"])
    run()
    after_cpu, after_server = session_cpu(worker), client.info("cpu")
    reads = int(client.info("stats")["total_reads_processed"]) - before_reads
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in
             client.info("commandstats").items()}  # fmt: skip
    server = sum(after_server[k] - before_server[k] for k in ("used_cpu_sys", "used_cpu_user"))
    top = sorted(calls, key=calls.__getitem__, reverse=True)[:TOP]
    print("    " + ", ".join(f"{name} {calls[name] / JOBS:.2f}" for name in top), flush=True)
    return {
        "commands": sum(calls.values()) / JOBS,
        "round trips": reads / JOBS,
        "worker CPU ms": (after_cpu - before_cpu) * 1000 / JOBS,
        "redis CPU ms": server * 1000 / JOBS,
    }


def main() -> None:
    from arvel_flow.settings import QueueSettings
    from arvel_flow.wiring import make_queue

    server = start_redis()
    client = redis.Redis.from_url(URL)
    loop = asyncio.new_event_loop()
    queue = make_queue(QueueSettings(broker="redis", url=URL, store=URL, prefix=PREFIX))  # type: ignore[arg-type]
    runs: dict[str, tuple[subprocess.Popen[bytes], Callable[[], Any]]] = {}
    try:
        # One worker process each (--processes 1, -p 1), counted alone.
        worker = start_worker(
            ["arvel_flow.cli.worker", "--allow", "bench_distributed", "--processes", "1"]
        )
        runs["arvel-flow"] = (
            worker,
            lambda: loop.run_until_complete(bench_distributed.ours_fan_out(queue)),
        )
        try:
            import peer_dramatiq
        except ImportError as error:
            print(f"(dramatiq skipped: {error}; pip install -e '.[bench]')")
        else:
            dramatiq = start_worker(["dramatiq", "peer_dramatiq", "-p", "1"])
            runs["dramatiq"] = (dramatiq, lambda: peer_dramatiq.fan_out(JOBS))
        time.sleep(6)
        bench_distributed.FAN_OUT = 50
        for _, run in runs.values():
            run()  # warm-up
        bench_distributed.FAN_OUT = JOBS
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        for _ in range(REPEATS):
            for name, (process, run) in runs.items():
                print(f"  {name}:", flush=True)
                samples[name].append(measure(client, process.pid, run))
        print(f"per job of a {JOBS:,}-job fan-out, one worker process each, medians of {REPEATS}:")
        for name, values in samples.items():
            line = ", ".join(
                f"{key} {statistics.median(v[key] for v in values):.2f}" for key in values[0]
            )
            print(f"  {name}: {line}")
    finally:
        loop.run_until_complete(queue.close())
        loop.close()
        for process, _ in runs.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
        os.kill(server, signal.SIGTERM)


if __name__ == "__main__":
    main()
