"""Starting and stopping ``arvel-flow worker``: signals, exit codes, what it prints."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import HEARTBEAT_TIMEOUT, Cluster
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def consumers(cluster: Cluster) -> list[bytes]:
    return list(cluster.redis.zrange(f"{cluster.prefix}consumers:default", 0, -1))


async def test_an_idle_worker_exits_0_on_sigterm_at_once_and_leaves_the_group(
    cluster: Cluster,
) -> None:
    # Given an idle worker, blocked reading its stream
    worker = await cluster.start_worker()
    await asyncio.sleep(0.5)
    # When it gets SIGTERM
    started = time.monotonic()
    worker.terminate()
    code = worker.wait(10)
    took = time.monotonic() - started
    print(f"MEASURED idle SIGTERM: exit 0 after {took:.2f}s")
    # Then it exits 0 within a second (its blocked read is woken, not waited out)
    assert code == 0, worker.output()
    assert took < 1.5, took
    # And it left: no heartbeat entry, no consumer in the group
    assert consumers(cluster) == []
    group = cluster.redis.xinfo_consumers(f"{cluster.prefix}queue:default", "arvel-flow")
    assert group == []


async def test_a_busy_worker_finishes_its_job_on_sigterm_takes_no_more_and_exits_0(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker running a 1.5 s job
    worker = await cluster.start_worker()
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="long", hold=1.5))
    await cluster.wait_for(
        lambda: bool(
            cluster.redis.xpending(f"{cluster.prefix}queue:default", "arvel-flow")["pending"]
        ),
        10,
        "the job started",
    )
    # When it gets SIGTERM, and another job arrives after that
    started = time.monotonic()
    worker.terminate()
    await asyncio.sleep(0.2)
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="after"))
    code = worker.wait(10)
    took = time.monotonic() - started
    print(f"MEASURED busy SIGTERM (1.5s job, 0.2s+ into it): exit 0 after {took:.2f}s")
    # Then it finished the running job, took no new one, and exited 0 in a few seconds
    assert code == 0, worker.output()
    assert took < 3.0, took
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
    # And the spare worker takes the job without waiting out the heartbeat timeout
    took = await cluster.wait_for(
        lambda: _pending_of(cluster, stream) == [spare.name], HEARTBEAT_TIMEOUT, "taken over"
    )
    print(f"MEASURED second SIGTERM: job taken over {took:.2f}s after exit 130")
    await cluster.wait_for(lambda: cluster.tags() == ["slow"], 5, "the spare ran the job")


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
