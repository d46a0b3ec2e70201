"""Starting and stopping ``arvel-flow worker``: signals, exit codes, what it prints."""

from __future__ import annotations

import asyncio
import signal

import pytest

from arvel_flow.brokers.redis.consumer import RedisConsumer
from arvel_flow.brokers.redis.transport import RedisStreamTransport
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.wiring import make_queue
from arvel_flow.worker import Worker, WorkerOptions
from tests.integration.conftest import (
    HEARTBEAT_TIMEOUT,
    JOBS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Cluster,
)
from tests.integration.jobs import Gated, Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def consumers(cluster: Cluster) -> list[bytes]:
    return list(cluster.redis.zrange(f"{cluster.prefix}consumers:default", 0, -1))


async def test_an_idle_worker_exits_0_on_sigterm_and_leaves_the_group(
    cluster: Cluster,
) -> None:
    # Given an idle worker, blocked reading its stream
    worker = await cluster.start_worker()
    await asyncio.sleep(0.5)
    # When it gets SIGTERM
    worker.terminate()
    # Then it says it stops, then that it stopped, and exits 0
    assert worker.wait(STOP_TIMEOUT) == 0, worker.output()
    assert worker.said()[-2:] == [
        "stopping: finishing running jobs (again to cancel them)",
        f"worker {worker.name} stopped",
    ]
    # And it left: no heartbeat entry, no consumer in the group
    assert consumers(cluster) == []
    group = cluster.redis.xinfo_consumers(f"{cluster.prefix}queue:default", "arvel-flow")
    assert group == []


async def test_stopping_wakes_a_blocked_read_instead_of_waiting_it_out(cluster: Cluster) -> None:
    # Given an idle worker (in this process) whose read blocks for an hour
    queue = make_queue(cluster.settings)
    assert isinstance(queue.transport, RedisStreamTransport)
    options = WorkerOptions(allowed_modules=(JOBS,), read_block_seconds=3600.0)
    served = Worker(queue, RedisConsumer(queue.transport, url=cluster.url), options=options)
    running = asyncio.create_task(served.run())
    async with asyncio.timeout(START_TIMEOUT):
        await served.ready.wait()
    await asyncio.sleep(0.3)
    # When it is stopped
    served.stop()
    # Then `run` returns (the timeout only guards against a hang): the read was woken
    async with asyncio.timeout(STOP_TIMEOUT):
        await running
    assert consumers(cluster) == []


async def test_a_busy_worker_finishes_its_job_on_sigterm_takes_no_more_and_exits_0(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker running a job that ends when the test says so
    worker = await cluster.start_worker()
    await dispatcher.dispatch(Gated(journal=cluster.journal_key, tag="long"))
    started = f"{cluster.journal_key}:started:long"
    await cluster.wait_for(lambda: bool(cluster.redis.exists(started)), 10, "the job started")
    # When it gets SIGTERM, and another job arrives after that
    worker.terminate()
    await cluster.wait_for(lambda: "stopping:" in worker.output(), 10, "stopping")
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="after"))
    # Then it goes on running the job, however long that takes
    await asyncio.sleep(0.5)
    assert worker.process.poll() is None, worker.output()
    # And once the job ends, it exits 0, having taken no new one
    cluster.redis.set(f"{cluster.journal_key}:release:long", 1)
    assert worker.wait(STOP_TIMEOUT) == 0, worker.output()
    assert cluster.tags() == ["long"]
    # And the job was acknowledged: a new worker runs only the other one, once
    await cluster.start_worker()
    await cluster.wait_for(lambda: len(cluster.tags()) == 2, 10, "the other job ran")
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    assert cluster.tags() == ["long", "after"]


async def test_a_second_sigterm_cancels_running_jobs_and_others_take_them_at_once(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers, one of them running a long job
    # (Both start first: a worker started while the job runs may take longer than the
    # job under load, leaving nothing to cancel.)
    workers = [await cluster.start_worker("--queues", "slow") for _ in range(2)]
    await dispatcher.dispatch(
        Record(journal=cluster.journal_key, tag="slow", hold=2.0, queue_name="slow")
    )
    stream = f"{cluster.prefix}queue:slow"
    # (Running, not only read: SIGTERM while a read returns hands the message back.)
    started = f"{cluster.journal_key}:started:slow"
    await cluster.wait_for(lambda: bool(cluster.redis.exists(started)), 10, "job started")
    holder = _pending_of(cluster, stream)[0]
    busy, spare = workers if workers[0].name == holder else reversed(workers)
    # When the busy one gets SIGTERM twice
    busy.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    busy.process.send_signal(signal.SIGTERM)
    # Then it exits 130 at once, the job unfinished
    assert busy.wait(5) == 130, busy.output()
    assert cluster.tags() == []
    # And it said it is dead as it left (heartbeat 0), so that others need not wait out
    # its heartbeat timeout (the entry may already be gone: the spare took over)
    beat = cluster.redis.zscore(f"{cluster.prefix}consumers:slow", str(busy.name))
    assert beat in (0.0, None), beat
    # And the spare worker takes the job and runs it
    await cluster.wait_for(lambda: _pending_of(cluster, stream) == [spare.name], 10, "taken over")
    await cluster.wait_for(lambda: cluster.tags() == ["slow"], 10, "the spare ran the job")


def _pending_of(cluster: Cluster, stream: str) -> list[str | None]:
    pending = cluster.redis.xpending_range(stream, "arvel-flow", "-", "+", 10)
    return [p["consumer"].decode() for p in pending]


async def test_a_worker_without_allowed_modules_refuses_to_start_with_exit_2(
    cluster: Cluster,
) -> None:
    # Given no --allow and no ARVEL_FLOW_ALLOWED_MODULES
    # When a worker starts
    worker = await cluster.start_worker(wait=False, ARVEL_FLOW_ALLOWED_MODULES="")
    # Then it exits 2, saying how to allow modules
    assert worker.wait(15) == 2
    assert "--allow PREFIX" in worker.output()


async def test_an_unreachable_redis_exits_3_and_never_shows_the_password(
    cluster: Cluster,
) -> None:
    # Given a Redis URL with a password, where nothing listens
    url = "redis://worker:s3cret-pw@127.0.0.1:1/0"
    # When a worker starts on it
    worker = await cluster.start_worker(wait=False, ARVEL_FLOW_URL=url, ARVEL_FLOW_STORE=url)
    # Then it exits 3, naming the server with the password masked
    assert worker.wait(15) == 3, worker.output()
    output = worker.output()
    assert "s3cret-pw" not in output
    assert "redis://worker:***@127.0.0.1:1/0" in output
