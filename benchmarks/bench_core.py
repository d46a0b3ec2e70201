"""Queue-core overhead, measured against its baselines in the same run.

1. The runner's overhead per job: `JobRunner.attempt` of a no-op job against
   awaiting ``handle()`` directly.
2. Throughput of 10,000 no-op jobs through `TaskiqQueue` (its in-process pool)
   against the same through bare Taskiq's `InMemoryBroker`. Target: >= 0.5x. Measured
   twice: jobs dispatched with ``bulk`` (the driver alone), and the same jobs as one
   `Batch` (the driver plus orchestration state in the memory store).

Run: ``.venv/bin/python benchmarks/bench_core.py``
"""

from __future__ import annotations

import asyncio
import statistics
import time

from taskiq import InMemoryBroker

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.job import Job
from arvel_flow.queue.runner import JobRunner
from arvel_flow.queue.targets import JobRef

JOBS = 10_000
REPEATS = 5


class NoOp(Job):
    """Does nothing: what is measured is everything around it."""

    n: int = 0

    async def handle(self) -> None:
        return None


async def direct_handle(count: int) -> float:
    job = NoOp()
    start = time.perf_counter()
    for _ in range(count):
        await job.handle()
    return time.perf_counter() - start


async def runner_attempts(count: int) -> float:
    runner = JobRunner()
    envelope = Envelope(JobRef.of(NoOp()), "bench")
    start = time.perf_counter()
    for _ in range(count):
        await runner.attempt(envelope)
    return time.perf_counter() - start


async def bare_taskiq(count: int) -> float:
    broker = InMemoryBroker(max_stored_results=1)

    @broker.task
    async def noop(n: int) -> None:
        return None

    await broker.startup()
    start = time.perf_counter()
    for i in range(count):
        await noop.kiq(i)
    await broker.wait_all()
    elapsed = time.perf_counter() - start
    await broker.shutdown()
    return elapsed


async def arvel_taskiq_jobs(count: int) -> float:
    queue = TaskiqQueue(concurrency=30)
    jobs = [NoOp(n=i) for i in range(count)]
    start = time.perf_counter()
    await queue.bulk(jobs)
    await queue.join()
    elapsed = time.perf_counter() - start
    await queue.close()
    return elapsed


async def arvel_taskiq_batch(count: int) -> float:
    queue = TaskiqQueue(concurrency=30)
    batch = Batch([FanOut(NoOp, [{"n": i} for i in range(count)])])
    start = time.perf_counter()
    result = await batch.dispatch(queue)
    elapsed = time.perf_counter() - start
    assert result.progress == (count, count), result.progress
    await queue.close()
    return elapsed


def best(samples: list[float]) -> float:
    return min(samples)


async def main() -> None:
    direct = [await direct_handle(JOBS) for _ in range(REPEATS)]
    runner = [await runner_attempts(JOBS) for _ in range(REPEATS)]
    per_direct = best(direct) / JOBS * 1e6
    per_runner = best(runner) / JOBS * 1e6
    print(
        f"runner overhead: handle() {per_direct:.2f} us/job, "
        f"JobRunner.attempt {per_runner:.2f} us/job "
        f"-> {per_runner / per_direct:.1f}x direct, +{per_runner - per_direct:.1f} us/job"
    )

    bare: list[float] = []
    jobs: list[float] = []
    batch: list[float] = []
    for _ in range(REPEATS):
        bare.append(await bare_taskiq(JOBS))
        jobs.append(await arvel_taskiq_jobs(JOBS))
        batch.append(await arvel_taskiq_batch(JOBS))
    bare_rate = JOBS / best(bare)
    print(
        f"{JOBS:,} no-op jobs, best of {REPEATS}: "
        f"bare taskiq InMemoryBroker {bare_rate:,.0f} jobs/s"
    )
    for label, samples in (
        ("TaskiqQueue.bulk(jobs)", jobs),
        ("Batch of jobs (run state in memory store)", batch),
    ):
        rate = JOBS / best(samples)
        print(
            f"  arvel-flow {label}: {rate:,.0f} jobs/s -> {rate / bare_rate:.2f}x bare taskiq "
            f"(target >= 0.5x; medians {JOBS / statistics.median(samples):,.0f} vs "
            f"{JOBS / statistics.median(bare):,.0f})"
        )


if __name__ == "__main__":
    asyncio.run(main())
