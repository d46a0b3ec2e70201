"""Distributed runs against bare Taskiq on the same broker, in the same run.

One worker process each: ``arvel-flow worker`` (ours) and ``taskiq worker`` (bare), both
at 100 concurrent tasks, on the broker ``BENCH_BROKER`` names: ``redis`` (default;
bare: ``RedisStreamBroker``), ``nats`` (bare: taskiq-nats' ``PullBasedJetStreamBroker``)
or ``rabbitmq`` (bare: taskiq-aio-pika's ``AioPikaBroker``). Bare Taskiq's results, and
our store, are in Redis in every case. Both workers are started first and stay idle
while the other side is measured.

1. Fan-out of 2,000 no-op jobs, enqueue to last completion. Ours: one `Batch`, with
   run state recorded per job. Bare: ``kiq`` x 2,000 (gathered), each task returning
   its completion time. Target: >= 1.0x bare Taskiq's jobs/s.
2. A 200-step chain. Ours: a `Chain` (the worker that finishes a step dispatches the
   next). Bare: ``kiq`` then ``wait_result(check_interval=1 ms)``, 200 times.
   Target: <= 1 ms per step.
3. A 500-job batch with a ``then`` callback, to the callback's end. Bare: the time
   until the last of 500 results is stored (what gathering them waits for at best).
   Target: <= bare Taskiq's time.

Times end where the last job (or callback) finished, as recorded by the workers;
nobody's polling interval is counted. Best of ``REPEATS``, medians alongside.

Run: ``.venv/bin/python benchmarks/bench_distributed.py`` (Redis on 127.0.0.1:6379;
``BENCH_REDIS_URL`` to change; ``BENCH_BROKER=nats`` with NATS on 127.0.0.1:4222,
``BENCH_BROKER=rabbitmq`` with RabbitMQ on 127.0.0.1:5672). Keys, streams and queues
live under a prefix of their own, deleted after.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

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
REPEATS = 5
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


# Running -----------------------------------------------------------------------------


def start_workers() -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        "ARVEL_FLOW_STORE": URL,
        "ARVEL_FLOW_BROKER": BROKER,
        "ARVEL_FLOW_URL": BROKER_URL,
        "ARVEL_FLOW_PREFIX": PREFIX,
    }
    ours = [sys.executable, "-m", "arvel_flow.cli.worker", "--allow", "bench_distributed"]
    bare = [sys.executable, "-m", "taskiq", "worker", "bench_distributed:taskiq_broker"]
    bare += ["--workers", "1", "--max-async-tasks", str(CONCURRENCY), "--log-level", "WARNING"]
    # Their output (a line per finished run, shutdown noise) would bury the numbers.
    quiet = subprocess.DEVNULL
    return [
        subprocess.Popen(
            [*ours, "--concurrency", str(CONCURRENCY)], env=env, cwd=HERE, stderr=quiet
        ),
        # A process group of its own: `taskiq worker` forks, and its child must stop too.
        subprocess.Popen(bare, env=env, cwd=HERE, stderr=quiet, start_new_session=True),
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    ours, bare = workers
    ours.send_signal(signal.SIGTERM)
    os.killpg(bare.pid, signal.SIGTERM)
    ours.wait(10)
    try:
        bare.wait(10)
    except subprocess.TimeoutExpired:  # a stock taskiq worker may not stop on SIGTERM
        os.killpg(bare.pid, signal.SIGKILL)
        bare.wait()


async def measure(label: str, run: Callable[[], Awaitable[float]]) -> list[float]:
    await run()  # warm-up: imports, connections, the plan cache
    times = [await run() for _ in range(REPEATS)]
    best, median = min(times) * 1000, statistics.median(times) * 1000
    print(f"  {label}: best {best:.1f} ms, median {median:.1f} ms", flush=True)
    return times


async def main() -> None:
    import redis.asyncio as aioredis

    from arvel_flow.settings import QueueSettings
    from arvel_flow.wiring import make_queue

    workers = start_workers()
    settings = QueueSettings(broker=BROKER, url=BROKER_URL, store=URL, prefix=PREFIX)  # type: ignore[arg-type]
    queue = make_queue(settings)
    await taskiq_broker.startup()
    try:
        await asyncio.sleep(3)  # both workers up
        print(
            f"{BROKER}: one worker process each, {CONCURRENCY} concurrent tasks, best of {REPEATS}"
        )

        print(f"1. fan-out of {FAN_OUT:,} no-op jobs, enqueue to last completion")
        bare = await measure("bare taskiq", bare_fan_out)
        ours = await measure("arvel-flow Batch", lambda: ours_fan_out(queue))
        bare_rate, ours_rate = FAN_OUT / min(bare), FAN_OUT / min(ours)
        medians = FAN_OUT / statistics.median(ours), FAN_OUT / statistics.median(bare)
        print(
            f"  -> {ours_rate:,.0f} vs {bare_rate:,.0f} jobs/s: {ours_rate / bare_rate:.2f}x bare "
            f"taskiq (target >= 1.0x; medians {medians[0]:,.0f} vs {medians[1]:,.0f})"
        )

        print(f"2. a {CHAIN}-step chain")
        bare = await measure("bare taskiq kiq + wait_result", bare_chain)
        ours = await measure("arvel-flow Chain", lambda: ours_chain(queue))
        print(
            f"  -> {min(ours) / CHAIN * 1000:.2f} ms/step vs bare {min(bare) / CHAIN * 1000:.2f} "
            f"ms/step: {min(ours) / min(bare):.2f}x its time (target <= 1 ms/step)"
        )

        print(f"3. a {BATCH}-job batch with a then callback")
        bare = await measure(f"bare taskiq, {BATCH} results", lambda: bare_fan_out(BATCH))
        ours = await measure("arvel-flow Batch + then", lambda: ours_batch_then(queue))
        print(
            f"  -> {min(ours) * 1000:.1f} ms vs bare {min(bare) * 1000:.1f} ms: "
            f"{min(ours) / min(bare):.2f}x its time (target <= 1.0x)"
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
