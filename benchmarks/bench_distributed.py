"""Distributed runs against bare Taskiq, Dramatiq and Celery on the same Redis, in one run.

Every tool's worker runs with its defaults: ``arvel-flow worker`` (a process per CPU,
16 jobs at once each), ``taskiq worker`` (2 processes), ``dramatiq`` (a process per
CPU, 8 threads each), ``celery worker`` (prefork, a process per CPU). All start first
and stay idle while another is measured; runs are interleaved (A, B, A, B, ...) and
medians of ``BENCH_REPEATS`` (5) compared. Dramatiq and Celery (``pip install -e
'.[bench]'``; `peer_dramatiq`, `peer_celery`) are skipped, saying so, when they are
not installed, and on a broker other than Redis.

1. Fan-out of 2,000 no-op jobs, enqueue to last completion. Ours: one `Batch`, with
   run state recorded per job. Peers: one send per job, each task returning its
   completion time (results in Redis). Target: >= 1.2x Dramatiq's jobs/s.
2. A 200-step chain. Ours: a `Chain` (the worker that finishes a step dispatches the
   next). Bare: ``kiq`` then ``wait_result(check_interval=1 ms)``, 200 times.
   Target: <= 0.4x bare Taskiq's time.
3. A 500-job batch with a ``then`` callback, to the callback's end. Bare: the time
   until the last of 500 results is stored (what gathering them waits for at best).
   Target: <= 0.5x bare Taskiq's time.

Times end where the last job (or callback) finished, as recorded by the workers;
nobody's polling interval is counted.

Run: ``.venv/bin/python benchmarks/bench_distributed.py`` (Redis on 127.0.0.1:6379;
``BENCH_REDIS_URL`` to change; ``BENCH_BROKER=nats`` with NATS on 127.0.0.1:4222,
``BENCH_BROKER=rabbitmq`` with RabbitMQ on 127.0.0.1:5672: ours and bare Taskiq only).
Keys, streams and queues live under a prefix of their own, deleted after.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

from taskiq import AsyncBroker
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from arvel_flow.queue.job import Job

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
BROKER = os.environ.setdefault("BENCH_BROKER", "redis")
BROKER_URL = {
    "redis": URL,
    "nats": "nats://127.0.0.1:4222",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
}[BROKER]
PREFIX = os.environ.setdefault("BENCH_PREFIX", f"arvel-flow-bench-{os.getpid()}:")
CONCURRENCY = 100
"""Bare Taskiq's RabbitMQ prefetch (its worker's default ``--max-async-tasks`` is 100)."""
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
START_SECONDS = 8.0
FAN_OUT = 2_000
CHAIN = 200
BATCH = 500
HERE = Path(__file__).resolve().parent


def bare_broker() -> AsyncBroker:
    """Bare Taskiq's broker on ``BROKER``, under names of the benchmark's own."""
    bare_name = PREFIX.rstrip(":") + "-bare"
    broker: AsyncBroker
    if BROKER == "nats":
        from taskiq_nats import PullBasedJetStreamBroker

        broker = PullBasedJetStreamBroker(
            BROKER_URL, subject=f"{bare_name}.tasks", stream_name=bare_name, durable=bare_name
        )
    elif BROKER == "rabbitmq":
        from taskiq_aio_pika import AioPikaBroker, Exchange, Queue

        broker = AioPikaBroker(
            BROKER_URL,
            qos=CONCURRENCY,
            exchange=Exchange(name=bare_name),
            task_queues=[Queue(name=bare_name)],
            dead_letter_queue=Queue(name=f"{bare_name}.dead"),
        )
    else:
        broker = RedisStreamBroker(URL, queue_name=f"{PREFIX}taskiq")
    return broker.with_result_backend(
        RedisAsyncResultBackend(URL, result_ex_time=600, prefix_str=f"{PREFIX}results")
    )


# Bare Taskiq: the `taskiq worker` process imports this module for these two.
taskiq_broker = bare_broker()


@taskiq_broker.task(task_name="bench.noop")
async def taskiq_noop() -> float:
    """Does nothing; returns when it finished."""
    return time.time()


class NoOp(Job):
    """Does nothing: what is measured is everything around it."""

    n: int = 0

    async def handle(self) -> None:
        return None


def noop(n: int = 0) -> Job:
    """A `NoOp` of the importable module (this file runs as ``__main__``)."""
    module = importlib.import_module("bench_distributed")
    job: Job = module.NoOp(n=n)
    return job


# Ours --------------------------------------------------------------------------------


async def ours_fan_out(queue: object) -> float:
    from arvel_flow.queue.batch import Batch
    from arvel_flow.queue.flow import FanOut

    batch = Batch([FanOut(noop(), [{"n": i} for i in range(FAN_OUT)])])
    return await _ours(queue, batch, "root")


async def ours_chain(queue: object) -> float:
    from arvel_flow.queue.chain import Chain

    return await _ours(queue, Chain(*(noop(i) for i in range(CHAIN))), "root")


async def ours_batch_then(queue: object) -> float:
    from arvel_flow.queue.batch import Batch
    from arvel_flow.queue.flow import FanOut

    batch = Batch([FanOut(noop(), [{"n": i} for i in range(BATCH)])]).then(noop(-1))
    return await _ours(queue, batch, "root.then")


async def _ours(queue: object, flow: object, last_step: str) -> float:
    """Seconds from dispatch to the end of ``last_step``, as the worker recorded it."""
    from arvel_flow.queue.drivers.taskiq import TaskiqQueue
    from arvel_flow.queue.flow import Flow

    assert isinstance(queue, TaskiqQueue)
    assert isinstance(flow, Flow)
    start = time.time()
    run_id = await flow.dispatch(queue, wait=False)
    assert isinstance(run_id, str)
    while True:
        run = await queue.store.get_run(run_id)
        assert run is not None
        if run.finished_at is not None:
            break
        await asyncio.sleep(0.005)
    assert run.status == "succeeded", run
    (record,) = (await queue.store.get_steps(run_id, [last_step])).values()
    assert record.finished_at is not None
    return record.finished_at - start


# Bare Taskiq -------------------------------------------------------------------------


async def bare_fan_out(count: int = FAN_OUT) -> float:
    start = time.time()
    tasks = await asyncio.gather(*(taskiq_noop.kiq() for _ in range(count)))
    # One poller at a time, in order: polling must not slow the worker being measured.
    finished = [await task.wait_result(check_interval=0.02) for task in tasks]
    return max(result.return_value for result in finished) - start


async def bare_chain() -> float:
    start = time.time()
    for _ in range(CHAIN):
        task = await taskiq_noop.kiq()
        await task.wait_result(check_interval=0.001)
    return time.time() - start


# Peers -------------------------------------------------------------------------------


def load_peer(name: str) -> ModuleType | None:
    """The module of peer ``name`` (``peer_dramatiq``, ``peer_celery``), or ``None`` (said)."""
    if BROKER != "redis":
        print(f"  ({name.removeprefix('peer_')} skipped: measured on Redis only)")
        return None
    try:
        return importlib.import_module(name)
    except ImportError as error:
        print(f"  ({name.removeprefix('peer_')} skipped: {error}; pip install -e '.[bench]')")
        return None


# Running -----------------------------------------------------------------------------


def start_workers(peers: dict[str, ModuleType]) -> dict[str, subprocess.Popen[bytes]]:
    """Every tool's worker with its defaults, each in a process group of its own."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        "ARVEL_FLOW_STORE": URL,
        "ARVEL_FLOW_BROKER": BROKER,
        "ARVEL_FLOW_URL": BROKER_URL,
        "ARVEL_FLOW_PREFIX": PREFIX,
    }
    python = [sys.executable, "-m"]
    commands = {
        "arvel-flow": [*python, "arvel_flow.cli.worker", "--allow", "bench_distributed"],
        "bare taskiq": [*python, "taskiq", "worker", "bench_distributed:taskiq_broker"],
    }
    commands["bare taskiq"] += ["--log-level", "WARNING"]
    if "dramatiq" in peers:
        commands["dramatiq"] = [*python, "dramatiq", "peer_dramatiq"]
    if "celery" in peers:
        commands["celery"] = [*python, "celery", "-A", "peer_celery", "worker"]
        commands["celery"] += ["--loglevel", "WARNING"]
    # Their output (a line per finished run, shutdown noise) would bury the numbers.
    quiet = subprocess.DEVNULL
    return {
        name: subprocess.Popen(
            command, env=env, cwd=HERE, stdout=quiet, stderr=quiet, start_new_session=True
        )
        for name, command in commands.items()
    }


def stop_workers(workers: dict[str, subprocess.Popen[bytes]]) -> None:
    for worker in workers.values():
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers.values():
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:  # a stock worker may not stop on SIGTERM
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


async def measure(runs: dict[str, Callable[[], Awaitable[float]]]) -> dict[str, float]:
    """Each run once to warm up, then interleaved (A, B, A, B, ...) ``REPEATS`` times.

    Prints and returns each run's median seconds (its best alongside).
    """
    for run in runs.values():
        await run()  # warm-up: imports, connections, the plan cache
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(REPEATS):
        for label, run in runs.items():
            times[label].append(await run())
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, values in times.items():
        best, median = min(values) * 1000, medians[label] * 1000
        print(f"  {label}: median {median:.1f} ms, best {best:.1f} ms", flush=True)
    return medians


async def main() -> None:
    import redis.asyncio as aioredis

    from arvel_flow.settings import QueueSettings
    from arvel_flow.wiring import make_queue

    loaded = {name: load_peer(f"peer_{name}") for name in ("dramatiq", "celery")}
    peers = {name: module for name, module in loaded.items() if module is not None}
    workers = start_workers(peers)
    settings = QueueSettings(broker=BROKER, url=BROKER_URL, store=URL, prefix=PREFIX)  # type: ignore[arg-type]
    queue = make_queue(settings)
    await taskiq_broker.startup()
    try:
        await asyncio.sleep(START_SECONDS)  # every worker up
        print(
            f"{BROKER}: each tool's worker with its defaults ({os.cpu_count()} CPUs), "
            f"medians of {REPEATS}, interleaved"
        )

        print(f"1. fan-out of {FAN_OUT:,} no-op jobs, enqueue to last completion")
        runs: dict[str, Callable[[], Awaitable[float]]] = {
            "arvel-flow Batch": lambda: ours_fan_out(queue),
            "bare taskiq": bare_fan_out,
        }
        for name, module in peers.items():
            runs[name] = functools.partial(asyncio.to_thread, module.fan_out, FAN_OUT)
        medians = await measure(runs)
        ours = medians.pop("arvel-flow Batch")
        targets = {"dramatiq": " (target >= 1.2x)"}
        for label, theirs in medians.items():
            print(
                f"  -> {FAN_OUT / ours:,.0f} vs {FAN_OUT / theirs:,.0f} jobs/s: "
                f"{theirs / ours:.2f}x {label}'s rate{targets.get(label, '')}"
            )

        print(f"2. a {CHAIN}-step chain")
        medians = await measure(
            {"arvel-flow Chain": lambda: ours_chain(queue), "bare taskiq": bare_chain}
        )
        ours, bare = medians["arvel-flow Chain"], medians["bare taskiq"]
        print(
            f"  -> {ours / CHAIN * 1000:.2f} ms/step vs bare {bare / CHAIN * 1000:.2f} "
            f"ms/step: {ours / bare:.2f}x its time (target <= 0.4x)"
        )

        print(f"3. a {BATCH}-job batch with a then callback")
        medians = await measure(
            {
                "arvel-flow Batch + then": lambda: ours_batch_then(queue),
                f"bare taskiq, {BATCH} results": lambda: bare_fan_out(BATCH),
            }
        )
        ours, bare = medians["arvel-flow Batch + then"], medians[f"bare taskiq, {BATCH} results"]
        print(
            f"  -> {ours * 1000:.1f} ms vs bare {bare * 1000:.1f} ms: "
            f"{ours / bare:.2f}x its time (target <= 0.5x)"
        )
    finally:
        await queue.close()
        await taskiq_broker.shutdown()
        stop_workers(workers)
        client = aioredis.Redis.from_url(URL)
        keys = [key async for key in client.scan_iter(match=f"{PREFIX}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await remove_broker_state()


async def remove_broker_state() -> None:
    """Delete the streams (NATS) or queues (RabbitMQ) both sides made."""
    bare_name = PREFIX.rstrip(":") + "-bare"
    if BROKER == "nats":
        import nats

        from arvel_flow.brokers.nats.transport import JetStreamNames

        client = await nats.connect(BROKER_URL)
        for stream in (JetStreamNames(PREFIX).stream, bare_name):
            await client.jetstream().delete_stream(stream)
        await client.close()
    elif BROKER == "rabbitmq":
        from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

        transport = RabbitMQTransport(BROKER_URL, prefix=PREFIX)
        await transport.delete_queues(["default"])
        await transport.close()
        import aio_pika

        connection = await aio_pika.connect(BROKER_URL)
        async with connection:
            channel = await connection.channel()
            for queue in (bare_name, f"{bare_name}.dead"):
                await channel.queue_delete(queue)
            await channel.exchange_delete(bare_name)


if __name__ == "__main__":
    asyncio.run(main())
