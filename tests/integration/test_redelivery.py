"""Redelivery by worker liveness: not by idle time, capped, and repairing lost sends."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest

from arvel_flow.brokers.redis.keys import GROUP
from arvel_flow.queue import outbox
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.wire import decode_message
from arvel_flow.worker import WorkerOptions
from tests.integration.conftest import HEARTBEAT_TIMEOUT, Cluster, every_broker
from tests.integration.jobs import Blocking, Crash, Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def record(cluster: Cluster, tag: str, hold: float = 0.0) -> Record:
    return Record(journal=cluster.journal_key, tag=tag, hold=hold)


@every_broker
async def test_a_long_job_on_a_live_worker_is_not_run_twice(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers whose redelivery timeout (0.5 s) and heartbeat timeout (1.5 s)
    # are both far shorter than a job
    for _ in range(2):
        await cluster.start_worker(ARVEL_FLOW_REDELIVERY_TIMEOUT="0.5")
    # When a 4 s job runs
    await dispatcher.dispatch(record(cluster, "long", hold=4.0))
    await cluster.wait_for(lambda: cluster.tags() == ["long"], 15, "the job finished")
    await asyncio.sleep(2 * HEARTBEAT_TIMEOUT)
    # Then it ran exactly once, from start to end
    (entry,) = cluster.journal()
    assert entry["end"] - entry["start"] >= 4.0


@every_broker
async def test_a_job_blocking_its_event_loop_does_not_make_its_worker_look_dead(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    if cluster.broker == "rabbitmq":
        pytest.skip("RabbitMQ's heartbeats run on the event loop (README 'Other brokers')")
    # Given two workers, and a job that blocks its worker's event loop for twice the
    # heartbeat timeout (heartbeats, or NATS "in progress", come from a thread of their own)
    for _ in range(2):
        await cluster.start_worker()
    job = Blocking(journal=cluster.journal_key, tag="blocking", hold=2 * HEARTBEAT_TIMEOUT)
    # When it runs
    await dispatcher.dispatch(job)
    await cluster.wait_for(lambda: cluster.tags() == ["blocking"], 15, "the job finished")
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    # Then the other worker did not take it over: it ran once
    assert cluster.tags() == ["blocking"]


async def test_messages_of_a_consumer_without_heartbeats_are_taken_after_the_timeout(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a message read by a consumer that never sends heartbeats (a stock Taskiq
    # worker, say) which then vanished
    stream = f"{cluster.prefix}queue:default"
    cluster.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    await dispatcher.dispatch(record(cluster, "orphaned"))
    read_at = time.monotonic()
    assert cluster.redis.xreadgroup(GROUP, "stock-taskiq", {stream: ">"}, count=1)
    # When a worker with a 1 s redelivery timeout runs
    await cluster.start_worker(ARVEL_FLOW_REDELIVERY_TIMEOUT="1")
    await cluster.wait_for(lambda: cluster.tags() == ["orphaned"], 10, "the job ran")
    # Then the message was taken once it had been idle that long
    assert time.monotonic() - read_at >= 1.0


async def test_a_message_pending_for_a_live_worker_that_lost_it_is_run_again(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a live worker, and a message delivered to it that it never saw (as when a
    # read's reply is lost on the way): stopped until its blocked read has expired
    # (5 s), the message is read under its name by someone else
    worker = await cluster.start_worker()
    assert worker.name is not None
    stream = f"{cluster.prefix}queue:default"
    worker.process.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(WorkerOptions().read_block_seconds + 0.5)
        await dispatcher.dispatch(record(cluster, "lost"))
        assert cluster.redis.xreadgroup(GROUP, worker.name, {stream: ">"}, count=1)
    finally:
        worker.process.send_signal(signal.SIGCONT)
    # When the worker looks at its own pending messages
    took = await cluster.wait_for(lambda: cluster.tags() == ["lost"], 10, "the job ran")
    # Then it runs the message once it has been idle for the heartbeat timeout
    print(f"MEASURED lost read: message run {took:.2f}s after the worker resumed")
    await cluster.wait_for(lambda: cluster.redis.xlen(stream) == 0, 5, "acknowledged")
    assert cluster.tags() == ["lost"]


@every_broker
async def test_a_message_whose_workers_keep_dying_fails_after_max_deliveries(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a chain whose job kills its worker, with a catch, and max_deliveries 2
    options = {"ARVEL_FLOW_MAX_DELIVERIES": "2"}
    chain = Chain(Crash(journal=cluster.journal_key, tag="crash")).catch(record(cluster, "caught"))
    first = await cluster.start_worker(**options)
    run_id = await chain.dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)
    # When it is delivered to one worker after another, each dying on it
    assert first.wait(10) == 1
    second = await cluster.start_worker(**options)
    assert second.wait(HEARTBEAT_TIMEOUT + 10) == 1
    await cluster.start_worker(**options)
    # Then the third delivery fails it for good: recorded, and the chain's catch runs
    async with asyncio.timeout(HEARTBEAT_TIMEOUT + 10):
        result = await dispatcher.wait(run_id)
    assert result.status == "failed"
    assert Counter(cluster.tags()) == {"crash": 2, "caught": 1}
    (failure,) = await dispatcher.store.list_failed()
    assert failure.exception == "arvel_flow.errors.DeliveryLimitError"
    assert failure.step == "root.0"
    assert "delivered 3 times" in failure.message


async def test_a_run_is_repaired_when_a_worker_died_between_finishing_and_sending(
    cluster: Cluster, dispatcher: TaskiqQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a chain whose first step a worker ("ghost") read and finished, but which
    # died before sending the next step or acknowledging the message
    monkeypatch.setenv("ARVEL_FLOW_STORE", cluster.url)
    stream = f"{cluster.prefix}queue:default"
    cluster.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    chain = Chain(record(cluster, "s0"), record(cluster, "s1"), record(cluster, "s2"))
    run_id = await chain.dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)
    ((_, ((_, fields),)),) = cluster.redis.xreadgroup(GROUP, "ghost", {stream: ">"}, count=1)
    with outbox.collect():  # what it would have sent is lost with it
        await dispatcher.process(decode_message(fields[b"data"]))
    cluster.redis.zadd(f"{cluster.prefix}consumers:default", {"ghost": 1})
    assert cluster.tags() == ["s0"]
    # When a worker starts and takes over the ghost's message
    await cluster.start_worker()
    async with asyncio.timeout(15):
        result = await dispatcher.wait(run_id)
    # Then the run goes on from where it was, without running the first step again
    assert result.status == "succeeded"
    assert cluster.tags() == ["s0", "s1", "s2"]


@every_broker
async def test_copies_of_a_step_sent_by_a_resume_of_a_live_run_run_once(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a chain whose first step is queued, and a second message of every unfinished
    # step, as `run --resume` of a live run (or a repair) sends: no broker can be
    # searched cheaply for the messages still on their way
    chain = Chain(*(record(cluster, f"s{i}") for i in range(3)))
    run_id = await chain.dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)
    await dispatcher.resume(run_id)
    # When two workers run them
    for _ in range(2):
        await cluster.start_worker()
    async with asyncio.timeout(15):
        result = await dispatcher.wait(run_id)
    # Then every step ran once: the copy that arrived second was dropped
    assert result.status == "succeeded"
    await asyncio.sleep(0.5)
    assert cluster.tags() == ["s0", "s1", "s2"]
