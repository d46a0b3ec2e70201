"""The promises of distributed runs on NATS JetStream and on RabbitMQ (each test runs on both).

The store is Redis in both cases; only the broker changes. Where a broker cannot keep
a promise the Redis workers keep, the test says so and the README's "Other brokers"
section explains it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.flow import FanOut
from tests.integration.conftest import HEARTBEAT_TIMEOUT, Cluster, publish_raw
from tests.integration.jobs import Blocking, Crash, Flaky, Record

pytestmark = [pytest.mark.redis, pytest.mark.brokers, pytest.mark.slow]


def record(cluster: Cluster, tag: str, hold: float = 0.0, **settings: object) -> Record:
    return Record(journal=cluster.journal_key, tag=tag, hold=hold, **settings)


def members(cluster: Cluster, count: int, hold: float = 0.0) -> FanOut:
    items = [{"tag": f"m{i}"} for i in range(count)]
    return FanOut(Record(journal=cluster.journal_key, tag="", hold=hold), items)


async def test_two_workers_share_a_batch_and_its_callbacks_fire_once(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given two workers
    first = await cluster.start_worker("--concurrency", "8")
    second = await cluster.start_worker("--concurrency", "8")
    batch = Batch([members(cluster, 300, hold=0.002)]).then(record(cluster, "then"))
    # When a batch of 300 jobs with a callback runs on them
    async with asyncio.timeout(60):
        result = await batch.dispatch(broker_dispatcher)
    # Then every job ran once, the callback once, and both workers did some of the work
    assert not isinstance(result, str)
    assert (result.status, result.progress) == ("succeeded", (300, 300))
    tags = Counter(cluster.tags())
    assert {tag: n for tag, n in tags.items() if n != 1} == {}
    assert len(tags) == 301
    pids = Counter(e["pid"] for e in cluster.journal() if e["tag"].startswith("m"))
    assert set(pids) == {first.pid, second.pid}


async def test_a_chain_advances_step_by_step_in_the_workers(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given a worker, and a chain of five steps
    await cluster.start_worker()
    chain = Chain(*(record(cluster, f"s{i}") for i in range(5)))
    # When it runs
    async with asyncio.timeout(30):
        result = await chain.dispatch(broker_dispatcher)
    # Then each step ran once, in order
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    assert cluster.tags() == [f"s{i}" for i in range(5)]


async def test_jobs_of_a_worker_killed_mid_batch_finish_elsewhere_callbacks_once(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given two workers, and a batch of 100 jobs of 50 ms each
    victim = await cluster.start_worker("--concurrency", "8")
    await cluster.start_worker("--concurrency", "8")
    batch = Batch([members(cluster, 100, hold=0.05)]).then(record(cluster, "then"))
    run_id = await batch.dispatch(broker_dispatcher, wait=False)
    assert isinstance(run_id, str)
    # When one worker is killed with SIGKILL in the middle of the batch
    await cluster.wait_for(lambda: len(cluster.journal()) >= 20, 30, "a fifth of the batch ran")
    victim.kill()
    killed_at = time.monotonic()
    # Then the run succeeds within the heartbeat timeout plus a few seconds
    async with asyncio.timeout(HEARTBEAT_TIMEOUT + 15):
        result = await broker_dispatcher.wait(run_id)
    took = time.monotonic() - killed_at
    print(f"MEASURED {cluster.broker} kill -9 mid-batch: run finished {took:.2f}s after")
    assert (result.status, result.progress) == ("succeeded", (100, 100))
    # And every job ran at least once, the callback exactly once
    tags = Counter(cluster.tags())
    assert {f"m{i}" for i in range(100)} <= set(tags)
    assert tags["then"] == 1


async def test_a_long_job_on_a_live_worker_is_not_run_twice(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given two workers whose heartbeat timeout (1.5 s) is far shorter than a job
    for _ in range(2):
        await cluster.start_worker(ARVEL_FLOW_REDELIVERY_TIMEOUT="0.5")
    # When a 4 s job runs
    await broker_dispatcher.dispatch(record(cluster, "long", hold=4.0))
    await cluster.wait_for(lambda: cluster.tags() == ["long"], 15, "the job finished")
    await asyncio.sleep(2 * HEARTBEAT_TIMEOUT)
    # Then it ran exactly once, from start to end
    (entry,) = cluster.journal()
    assert entry["end"] - entry["start"] >= 4.0


async def test_a_job_blocking_its_event_loop_does_not_make_its_worker_look_dead(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    if cluster.broker == "rabbitmq":
        pytest.skip("RabbitMQ's heartbeats run on the event loop (README 'Other brokers')")
    # Given two workers, and a job that blocks its worker's event loop for twice the
    # heartbeat timeout (NATS "in progress" beats come from a thread of their own)
    for _ in range(2):
        await cluster.start_worker()
    job = Blocking(journal=cluster.journal_key, tag="blocking", hold=2 * HEARTBEAT_TIMEOUT)
    # When it runs
    await broker_dispatcher.dispatch(job)
    await cluster.wait_for(lambda: cluster.tags() == ["blocking"], 15, "the job finished")
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    # Then the other worker did not take it over: it ran once
    assert cluster.tags() == ["blocking"]


async def test_a_retry_waits_out_its_backoff_in_the_broker_without_holding_a_slot(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given a worker with one slot, a job failing once with a 1 s backoff, and another job
    await cluster.start_worker("--concurrency", "1")
    flaky = Flaky(journal=cluster.journal_key, tag="flaky", backoff=1, max_retries=2)
    batch = Batch([flaky, record(cluster, "other", hold=0.2)])
    # When both run
    async with asyncio.timeout(15):
        result = await batch.dispatch(broker_dispatcher)
    # Then the retry came once, after its backoff, and the other job ran meanwhile
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    entries = cluster.journal()
    flaky_starts = [e["start"] for e in entries if e["tag"] == "flaky"]
    other = next(e for e in entries if e["tag"] == "other")
    assert len(flaky_starts) == 2
    assert 1.0 <= flaky_starts[1] - flaky_starts[0] < 1.5
    assert flaky_starts[0] < other["start"] < flaky_starts[1]


async def test_later_runs_once_at_its_time_after_the_dispatcher_exited(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given two workers
    for _ in range(2):
        await cluster.start_worker()
    # When 20 jobs are queued to run in 1 s, and the dispatcher exits at once
    sent_at = time.time()
    for i in range(20):
        await broker_dispatcher.later(1.0, record(cluster, f"later{i}"))
    await broker_dispatcher.close()
    # Then each runs exactly once, no earlier than asked
    await cluster.wait_for(lambda: len(cluster.tags()) >= 20, 10, "the delayed jobs ran")
    await asyncio.sleep(0.5)
    assert Counter(cluster.tags()) == {f"later{i}": 1 for i in range(20)}
    starts = [e["start"] for e in cluster.journal()]
    assert min(starts) >= sent_at + 1.0
    assert max(starts) < sent_at + 2.0


async def test_poisoned_messages_are_recorded_as_failed_and_the_worker_goes_on(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given a worker
    worker = await cluster.start_worker()
    # When a message that is not JSON and one naming another task arrive, then a good job
    await publish_raw(cluster, b"{not json")
    await publish_raw(cluster, b'{"task_id": "1", "task_name": "x", "args": [], "kwargs": {}}')
    await broker_dispatcher.dispatch(record(cluster, "good"))
    # Then the good job runs in the same worker, and both are recorded as failed
    await cluster.wait_for(lambda: cluster.tags() == ["good"], 10, "the good job ran")
    assert worker.process.poll() is None
    failed_key = f"{cluster.prefix}failed"
    await cluster.wait_for(lambda: cluster.redis.hlen(failed_key) == 2, 5, "recorded")
    failures = await broker_dispatcher.store.list_failed()
    assert [f.job for f in failures] == ["<unreadable message>"] * 2


async def test_a_message_whose_workers_keep_dying_fails_after_max_deliveries(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given a chain whose job kills its worker, with a catch, and max_deliveries 2
    options = {"ARVEL_FLOW_MAX_DELIVERIES": "2"}
    crash = Crash(journal=cluster.journal_key, tag="crash")
    chain = Chain(crash).catch(record(cluster, "caught"))
    first = await cluster.start_worker(**options)
    run_id = await chain.dispatch(broker_dispatcher, wait=False)
    assert isinstance(run_id, str)
    # When it is delivered to one worker after another, each dying on it
    assert first.wait(10) == 1
    second = await cluster.start_worker(**options)
    assert second.wait(HEARTBEAT_TIMEOUT + 10) == 1
    await cluster.start_worker(**options)
    # Then the third delivery fails it for good: recorded, and the chain's catch runs
    async with asyncio.timeout(HEARTBEAT_TIMEOUT + 10):
        result = await broker_dispatcher.wait(run_id)
    assert result.status == "failed"
    assert Counter(cluster.tags()) == {"crash": 2, "caught": 1}
    (failure,) = await broker_dispatcher.store.list_failed()
    assert failure.exception == "arvel_flow.errors.DeliveryLimitError"


async def test_an_idle_worker_exits_0_on_sigterm_within_a_second_or_so(
    broker_cluster: Cluster,
) -> None:
    cluster = broker_cluster
    # Given an idle worker
    worker = await cluster.start_worker()
    await asyncio.sleep(0.5)
    # When it gets SIGTERM
    started = time.monotonic()
    worker.terminate()
    code = worker.wait(10)
    took = time.monotonic() - started
    print(f"MEASURED {cluster.broker} idle SIGTERM: exit 0 after {took:.2f}s")
    # Then it exits 0 soon (a NATS fetch waits at most a second)
    assert code == 0, worker.output()
    assert took < 2.0, took


async def test_a_busy_worker_finishes_its_job_on_sigterm_and_exits_0(
    broker_cluster: Cluster, broker_dispatcher: TaskiqQueue
) -> None:
    cluster = broker_cluster
    # Given a worker running a 1.5 s job
    worker = await cluster.start_worker()
    await broker_dispatcher.dispatch(record(cluster, "long", hold=1.5))
    await asyncio.sleep(0.5)
    # When it gets SIGTERM, and another job arrives after that
    started = time.monotonic()
    worker.terminate()
    await asyncio.sleep(0.2)
    await broker_dispatcher.dispatch(record(cluster, "after"))
    code = worker.wait(10)
    took = time.monotonic() - started
    # Then it finished the running job and exited 0 within a few seconds
    assert code == 0, worker.output()
    assert took < 3.0, took
    assert cluster.tags()[:1] == ["long"]
    # And a new worker runs what is left once: the long job was acknowledged
    await cluster.start_worker()
    await cluster.wait_for(lambda: len(cluster.tags()) == 2, 10, "the other job ran")
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    assert cluster.tags() == ["long", "after"]


async def test_an_unreachable_broker_exits_3_and_never_shows_the_password(
    broker_cluster: Cluster,
) -> None:
    cluster = broker_cluster
    # Given a broker URL with a password, where nothing listens
    scheme = {"nats": "nats", "rabbitmq": "amqp"}[cluster.broker]
    url = f"{scheme}://worker:s3cret-pw@127.0.0.1:1/"
    # When a worker starts on it
    started = time.monotonic()
    worker = await cluster.start_worker(wait=False, ARVEL_FLOW_URL=url)
    # Then it exits 3 within a few seconds, naming the server with the password masked
    assert worker.wait(15) == 3, worker.output()
    assert time.monotonic() - started < 10
    output = worker.output()
    assert "s3cret-pw" not in output
    assert f"{scheme}://worker:***@127.0.0.1:1/ could not be reached" in output
    assert "Traceback" not in output
