"""Real servers, real worker processes: a `Cluster` per test, under a prefix of its own.

The store is always the real Redis; the broker is Redis, or for tests marked
`every_broker` (`other_brokers`) Redis, NATS JetStream and RabbitMQ in turn. Workers are
``python -m arvel_flow.cli.worker`` subprocesses with fast heartbeats (every 0.2 s,
dead after 1.5 s), so that recovery from a ``kill -9`` is measured in seconds. Every
worker still alive at the end of a test is killed, and what the test left in the
broker is deleted.
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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.settings import QueueSettings
from arvel_flow.wiring import make_queue

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 0.2
HEARTBEAT_TIMEOUT = 1.5
JOBS = "tests.integration.jobs"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_PROBLEM = re.compile(r"Traceback|\w+Warning: ")
WORKER_LINE_PREFIX = re.compile(r"^\[[^]]*: [A-Z]+/\w+\] ")
"""What starts each line a worker prints: ``[2026-12-03 15:30:00,123: INFO/MainProcess] ``."""


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

    def said(self) -> list[str]:
        """What the worker printed so far, line by line, without `WORKER_LINE_PREFIX`."""
        return [WORKER_LINE_PREFIX.sub("", line) for line in self.output().splitlines()]

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


class Journaled:
    """Reads the journal the test jobs write (`tests.integration.jobs`) into Redis."""

    redis: redis.Redis
    journal_key: str

    def journal(self) -> list[dict[str, Any]]:
        """Every entry the jobs wrote, in order."""
        return [json.loads(raw) for raw in self.redis.lrange(self.journal_key, 0, -1)]

    def tags(self) -> list[str]:
        """The tags in the journal, in order."""
        return [entry["tag"] for entry in self.journal()]

    def context(self) -> str:
        """What to show when a wait fails."""
        return f"journal: {self.tags()}"

    async def wait_for(self, condition: Callable[[], bool], within: float, what: str) -> float:
        """Poll ``condition`` until true; the seconds it took. Fails after ``within`` s."""
        start = time.monotonic()
        while time.monotonic() - start < within:
            if condition():
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        raise AssertionError(f"{what}: not within {within}s\n{self.context()}")


class Cluster(Journaled):
    """Workers, a dispatcher and a journal sharing one Redis (and a broker) under one prefix.

    Args:
        url: The Redis server of the store and the journal.
        broker: redis, nats or rabbitmq.
        broker_url: The broker's server (``url`` for redis).
    """

    def __init__(
        self, url: str, prefix: str, tmp: Path, broker: str = "redis", broker_url: str = ""
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.tmp = tmp
        self.broker = broker
        self.broker_url = broker_url or url
        self.redis = redis.Redis.from_url(url)
        self.journal_key = f"{prefix}journal"
        self.workers: list[WorkerProcess] = []
        self.env = {
            **os.environ,
            "ARVEL_FLOW_BROKER": broker,
            "ARVEL_FLOW_URL": self.broker_url,
            "ARVEL_FLOW_STORE": url,
            "ARVEL_FLOW_PREFIX": prefix,
            "ARVEL_FLOW_ALLOWED_MODULES": JOBS,
            # One process per worker command (`--processes 2` where a test wants more).
            "ARVEL_FLOW_PROCESSES": "1",
            "ARVEL_FLOW_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "ARVEL_FLOW_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "PYTHONPATH": str(ROOT),
        }

    @property
    def settings(self) -> QueueSettings:
        """What the dispatching side (``arvel-flow run``) uses."""
        return QueueSettings(
            broker=self.broker, url=self.broker_url, store=self.url, prefix=self.prefix
        )

    async def start_worker(self, *args: str, wait: bool = True, **env: str) -> WorkerProcess:
        """Start a worker; by default wait until it says it is ready (connected, reading)."""
        worker = WorkerProcess(*self.spawn("worker", args, env))
        self.workers.append(worker)
        if wait:
            await self.wait_until_ready(worker)
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

    async def wait_until_ready(self, worker: WorkerProcess) -> None:
        """Wait until ``worker`` prints ``worker NAME: ready``; learn its name."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            exited = worker.process.poll() is not None
            # Read first: a worker may be ready, take a job at once, and die of it.
            for said in worker.said():
                if said.startswith("worker ") and said.endswith(": ready"):
                    worker.name = said.split()[1].rstrip(":")
                    return
            if exited:
                raise AssertionError(f"worker exited early:\n{worker.output()}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"worker did not start in {START_TIMEOUT}s:\n{worker.output()}")

    def context(self) -> str:
        """What the workers printed, for a failing wait."""
        return "\n".join(f"--- {w.log.name}\n{w.output()}" for w in self.workers)

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


every_broker = pytest.mark.parametrize("cluster", ["redis", "nats", "rabbitmq"], indirect=True)
"""Runs a test on a cluster of each broker (the store is Redis in every case)."""
other_brokers = pytest.mark.parametrize("cluster", ["nats", "rabbitmq"], indirect=True)
"""Runs a test on NATS JetStream and on RabbitMQ (what Redis tests check otherwise)."""


@pytest.fixture
async def cluster(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
    """A cluster under this test's own prefix, on Redis unless `every_broker` says otherwise.

    Its Redis keys, NATS stream or RabbitMQ queues are deleted afterwards. Fails the
    test when a worker printed a traceback or a warning.
    """
    broker = str(getattr(request, "param", "redis"))
    broker_url = redis_url if broker == "redis" else request.getfixturevalue(f"{broker}_url")
    made = Cluster(redis_url, redis_prefix, tmp_path, broker=broker, broker_url=broker_url)
    try:
        yield made
    finally:
        problems = made.close()
        await remove_broker_state(made)
    assert not problems, "\n".join(problems)


@pytest.fixture
async def dispatcher(cluster: Cluster) -> AsyncIterator[TaskiqQueue]:
    """The sending side: a `TaskiqQueue` on the cluster's broker and store."""
    queue = make_queue(cluster.settings)
    assert isinstance(queue, TaskiqQueue)
    try:
        yield queue
    finally:
        await queue.close()


async def publish_raw(cluster: Cluster, data: bytes, queue: str = "default") -> None:
    """Put ``data`` into ``queue`` as a message, as a stranger might."""
    if cluster.broker == "redis":
        cluster.redis.xadd(f"{cluster.prefix}queue:{queue}", {"data": data})
    elif cluster.broker == "nats":
        from arvel_flow.brokers.nats.transport import JetStreamNames, connect, ensure_stream

        names = JetStreamNames(cluster.prefix)
        client = await connect(cluster.broker_url, name="test")
        js = client.jetstream()
        await ensure_stream(js, names)
        await js.publish(names.subject(queue), data)
        await client.close()
    else:
        import aio_pika

        from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

        transport = RabbitMQTransport(cluster.broker_url, prefix=cluster.prefix)
        await transport.declare(queue)
        connection = await aio_pika.connect(cluster.broker_url)
        async with connection:
            channel = await connection.channel()
            message = aio_pika.Message(data, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=transport.queue_name(queue))
        await transport.close()


async def remove_broker_state(cluster: Cluster) -> None:
    """Delete the NATS stream, or the RabbitMQ queues, made under the cluster's prefix.

    (Redis keys go with the test's key prefix, `redis_prefix`.)
    """
    if cluster.broker == "nats":
        from nats.js.errors import NotFoundError

        from arvel_flow.brokers.nats.transport import JetStreamNames, connect

        client = await connect(cluster.broker_url, name="test cleanup")
        try:
            await client.jetstream().delete_stream(JetStreamNames(cluster.prefix).stream)
        except NotFoundError:
            pass
        finally:
            await client.close()
    elif cluster.broker == "rabbitmq":
        from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

        transport = RabbitMQTransport(cluster.broker_url, prefix=cluster.prefix)
        await transport.delete_queues(["default", "other"])
        await transport.close()
