"""Real Redis, real worker processes: a `Cluster` per test, under a key prefix of its own.

Workers are ``python -m arvel_flow.cli.worker`` subprocesses with fast heartbeats
(every 0.2 s, dead after 1.5 s), so that recovery from a ``kill -9`` is measured in
seconds. Every worker still alive at the end of a test is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.factory import make_queue
from arvel_flow.settings import QueueSettings

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 0.2
HEARTBEAT_TIMEOUT = 1.5
JOBS = "tests.integration.jobs"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_PROBLEM = re.compile(r"Traceback|\w+Warning: ")


class WorkerProcess:
    """One ``arvel-flow worker`` subprocess, its output in a log file."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.name: str | None = None

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def output(self) -> str:
        """Everything the worker printed so far."""
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no cleanup, no acknowledgements, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)

    def terminate(self) -> None:
        """SIGTERM: a graceful stop."""
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds."""
        return self.process.wait(timeout)


class Cluster:
    """Workers, a dispatcher and a journal sharing one Redis under one prefix."""

    def __init__(self, url: str, prefix: str, tmp: Path) -> None:
        self.url = url
        self.prefix = prefix
        self.tmp = tmp
        self.redis = redis.Redis.from_url(url)
        self.journal_key = f"{prefix}journal"
        self.workers: list[WorkerProcess] = []
        self.env = {
            **os.environ,
            "ARVEL_FLOW_BROKER": "redis",
            "ARVEL_FLOW_URL": url,
            "ARVEL_FLOW_STORE": url,
            "ARVEL_FLOW_PREFIX": prefix,
            "ARVEL_FLOW_ALLOWED_MODULES": JOBS,
            "ARVEL_FLOW_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "ARVEL_FLOW_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "PYTHONPATH": str(ROOT),
        }

    @property
    def settings(self) -> QueueSettings:
        """What the dispatching side (``arvel-flow run``) uses."""
        return QueueSettings(broker="redis", url=self.url, store=self.url, prefix=self.prefix)

    async def start_worker(self, *args: str, wait: bool = True, **env: str) -> WorkerProcess:
        """Start a worker; by default wait until its heartbeat is in Redis."""
        worker = WorkerProcess(*self.spawn("worker", args, env))
        self.workers.append(worker)
        if wait:
            queue = args[args.index("--queues") + 1].split(",")[0] if "--queues" in args else None
            await self.wait_until_registered(worker, queue or "default")
        return worker

    def spawn(
        self, command: str, args: tuple[str, ...] | list[str], env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start ``arvel-flow COMMAND ARGS`` (the worker through ``python -m``), logged."""
        log = self.tmp / f"{command}-{len(list(self.tmp.glob(command + '-*.log')))}.log"
        program = (
            [sys.executable, "-m", "arvel_flow.cli.worker"]
            if command == "worker"
            else [str(Path(sys.executable).parent / "arvel-flow"), command]
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*program, *args],
                env={**self.env, **(env or {})},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return process, log

    async def wait_until_registered(self, worker: WorkerProcess, queue: str = "default") -> None:
        """Wait until ``worker`` beats in ``queue``'s consumer set."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.output()}")
            for line in worker.output().splitlines():
                if line.startswith("worker ") and ": queues " in line:
                    worker.name = line.split()[1].rstrip(":")
            consumers = self.redis.zrange(f"{self.prefix}consumers:{queue}", 0, -1)
            if worker.name is not None and worker.name.encode() in consumers:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"worker did not start in {START_TIMEOUT}s:\n{worker.output()}")

    def journal(self) -> list[dict[str, Any]]:
        """Every entry the jobs wrote, in order."""
        return [json.loads(raw) for raw in self.redis.lrange(self.journal_key, 0, -1)]

    def tags(self) -> list[str]:
        """The tags in the journal, in order."""
        return [entry["tag"] for entry in self.journal()]

    async def wait_for(self, condition: Callable[[], bool], within: float, what: str) -> float:
        """Poll ``condition`` until true; the seconds it took. Fails after ``within`` s."""
        start = time.monotonic()
        while time.monotonic() - start < within:
            if condition():
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        logs = "\n".join(f"--- {w.log.name}\n{w.output()}" for w in self.workers)
        raise AssertionError(f"{what}: not within {within}s\n{logs}")

    def close(self) -> list[str]:
        """Stop every worker still running (SIGTERM, then SIGKILL); problems in their logs."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.terminate()
        problems = []
        for worker in self.workers:
            try:
                worker.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.kill()
                problems.append(f"{worker.log.name} did not stop on SIGTERM")
            if _PROBLEM.search(worker.output()):
                problems.append(f"{worker.log.name}:\n{worker.output()}")
        self.redis.close()
        return problems


@pytest.fixture
def cluster(redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Cluster]:
    """A cluster under this test's own key prefix (deleted afterwards).

    Fails the test when a worker printed a traceback or a warning.
    """
    made = Cluster(redis_url, redis_prefix, tmp_path)
    try:
        yield made
    finally:
        problems = made.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
async def dispatcher(cluster: Cluster) -> AsyncIterator[TaskiqQueue]:
    """The sending side: a `TaskiqQueue` on the cluster's Redis broker and store."""
    queue = make_queue(cluster.settings)
    assert isinstance(queue, TaskiqQueue)
    try:
        yield queue
    finally:
        await queue.close()
