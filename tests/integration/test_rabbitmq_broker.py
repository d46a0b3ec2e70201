"""RabbitMQ as the broker: quorum queues, delay buckets, and a worker in this process.

The store and the jobs' journal are the real Redis (under the test's key prefix), the
broker the real RabbitMQ (under a queue prefix of the test's own, whose queues are
deleted afterwards). Workers run as tasks of the test's event loop, so a test can stop
them at a chosen moment; every log line they wrote is checked for warnings and
tracebacks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import pytest
import redis
from taskiq_aio_pika import AioPikaBroker

from arvel_flow.brokers.rabbitmq import consumer as rabbitmq_consumer
from arvel_flow.brokers.rabbitmq.consumer import RabbitMQConsumer
from arvel_flow.brokers.rabbitmq.transport import (
    DELAY_BUCKETS,
    READY_WITHIN,
    RabbitMQTransport,
    compute_delay_bucket,
)
from arvel_flow.errors import BackendError
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.wire import encode_message
from arvel_flow.store.redis import RedisStore
from arvel_flow.worker import Worker, WorkerOptions
from arvel_flow.worker.refusals import UNREADABLE
from tests.integration import jobs
from tests.integration.conftest import Journaled
from tests.integration.jobs import Flaky, Gated, Record

JOBS = "tests.integration.jobs"
FORBIDDEN = "tests.integration.forbidden:handle"
T = TypeVar("T")


def needs_servers(test: T) -> T:
    """Marks a test that needs Redis and RabbitMQ."""
    return pytest.mark.redis(pytest.mark.brokers(test))  # type: ignore[no-any-return]


# The bucket a delay waits in (pure) ---------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "bucket"),
    [
        (-3.0, None),
        (0.0, None),
        (0.049, None),
        (0.05, 0.05),
        (0.3, 0.25),
        (0.999, 0.5),
        (1.0, 1.0),
        (59.9, 30.0),
        (7200.0, 3600.0),
    ],
)
def test_a_delay_waits_in_the_largest_bucket_not_longer_than_what_remains(
    remaining: float, bucket: float | None
) -> None:
    # When the bucket is chosen for a message due in `remaining` seconds
    chosen = compute_delay_bucket(remaining)
    # Then it is the largest one that does not overshoot; none below READY_WITHIN
    assert chosen == bucket


def test_the_buckets_ascend_from_the_ready_threshold() -> None:
    # Given the buckets, then they ascend, and the smallest is where "ready" ends
    assert list(DELAY_BUCKETS) == sorted(set(DELAY_BUCKETS))
    assert DELAY_BUCKETS[0] == READY_WITHIN


def test_a_bucket_never_overshoots_whatever_remains() -> None:
    # Given every remaining time from 0 to 2 h in 10 ms steps
    for step in range(0, 720_000, 7):
        remaining = step / 100
        # When its bucket is chosen
        bucket = compute_delay_bucket(remaining)
        # Then the message never comes back late, and waits here only when nearly due
        assert (bucket is None) == (remaining < READY_WITHIN)
        assert bucket is None or bucket <= remaining


# A worker in this process, on the real servers ----------------------------------------


class Rig(Journaled):
    """A dispatcher and in-process workers on RabbitMQ, with a Redis store and journal."""

    def __init__(self, amqp_url: str, redis_url: str, redis_prefix: str) -> None:
        self.amqp_url = amqp_url
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix
        self.prefix = f"arvel-flow-test-{uuid.uuid4().hex}:"
        self.journal_key = f"{redis_prefix}journal"
        self.redis = redis.Redis.from_url(redis_url)
        self.dispatcher = self.queue()
        self.running: dict[Worker, asyncio.Task[None]] = {}
        self.expected_warnings: list[str] = []
        """Parts of the warnings a test provokes on purpose."""

    def queue(self, transport: RabbitMQTransport | None = None) -> TaskiqQueue:
        """A `TaskiqQueue` sending through RabbitMQ, on the shared Redis store."""
        return TaskiqQueue(
            AioPikaBroker(self.amqp_url),
            transport=transport or RabbitMQTransport(self.amqp_url, prefix=self.prefix),
            store=RedisStore(self.redis_url, prefix=self.redis_prefix),
            allowed_modules=(JOBS,),
        )

    @property
    def transport(self) -> RabbitMQTransport:
        """The dispatcher's transport."""
        transport = self.dispatcher.transport
        assert isinstance(transport, RabbitMQTransport)
        return transport

    async def start_worker(
        self, transport: RabbitMQTransport | None = None, **options: Any
    ) -> Worker:
        """Start a worker on the default queue; wait until it is consuming."""
        queue = self.queue(transport)
        transport = queue.transport
        assert isinstance(transport, RabbitMQTransport)
        worker = Worker(
            queue,
            RabbitMQConsumer(transport, url=self.amqp_url),
            options=WorkerOptions(allowed_modules=(JOBS,), **options),
        )
        self.running[worker] = asyncio.create_task(worker.run())
        async with asyncio.timeout(10):
            await worker.ready.wait()
        return worker

    async def stop(self, worker: Worker) -> None:
        """Stop ``worker`` and wait until `run` returned (a hang fails after 10 s)."""
        worker.stop()
        async with asyncio.timeout(10):
            await self.running.pop(worker)

    async def publish_raw(self, body: bytes) -> None:
        """Put ``body`` into the default queue as a stranger would: no arvel-flow headers."""
        name = await self.transport.declare("default")
        channel = await self.transport.channel()
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=name)

    async def close(self) -> None:
        """Stop the workers still running, close the dispatcher, delete the queues."""
        for worker in tuple(self.running):
            await self.stop(worker)
        await self.dispatcher.close()
        cleaner = RabbitMQTransport(self.amqp_url, prefix=self.prefix)
        await cleaner.delete_queues(["default"])
        await cleaner.close()
        self.redis.close()


@pytest.fixture
async def rig(
    rabbitmq_url: str,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Rig]:
    """A rig under this test's own prefixes; fails the test if a worker logged a problem."""
    monkeypatch.setenv("ARVEL_FLOW_STORE", redis_url)
    caplog.set_level(logging.INFO)
    made = Rig(rabbitmq_url, redis_url, redis_prefix)
    try:
        yield made
    finally:
        await made.close()
        await _close_journal_clients()
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    problems = [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.exc_info
        or "Traceback" in r.getMessage()
        or (
            r.levelno >= logging.WARNING
            and not any(part in r.getMessage() for part in made.expected_warnings)
        )
    ]
    assert not problems, "\n".join(problems)


async def _close_journal_clients() -> None:
    # The jobs keep one Redis client per URL for their process; here each test has an
    # event loop of its own, which that client must not outlive.
    for client in jobs._clients.values():
        await client.aclose()
    jobs._clients.clear()


async def poll(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float, what: str
) -> T:
    """Call ``probe`` until ``done`` accepts its value; that value. Fails after ``within`` s."""
    deadline = time.monotonic() + within
    while not done(value := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s (last: {value!r})")
        await asyncio.sleep(0.05)
    return value


def record(rig: Rig, tag: str, **fields: Any) -> Record:
    return Record(journal=rig.journal_key, tag=tag, **fields)


@needs_servers
async def test_a_dispatched_job_runs_once_and_its_message_is_acknowledged(rig: Rig) -> None:
    # Given a worker
    worker = await rig.start_worker()
    # When a job is dispatched
    await rig.dispatcher.dispatch(record(rig, "one"))
    # Then it runs
    await rig.wait_for(lambda: rig.tags() == ["one"], 5, "the job ran")
    # And once the worker is gone, nothing is left to run again: it was acknowledged
    await rig.stop(worker)
    await asyncio.sleep(0.2)
    assert await rig.dispatcher.size() == 0
    assert rig.tags() == ["one"]


@needs_servers
async def test_retries_wait_out_their_backoff_in_the_delay_buckets(rig: Rig) -> None:
    # Given a worker, and a job failing twice with a 0.3 s backoff
    await rig.start_worker()
    flaky = Flaky(journal=rig.journal_key, tag="flaky", failures=2, backoff=0.3, max_retries=2)
    # When it runs
    async with asyncio.timeout(10):
        result = await Batch([flaky]).dispatch(rig.dispatcher)
    # Then it succeeded on its third attempt
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    starts = [e["start"] for e in rig.journal()]
    assert [e["attempt"] for e in rig.journal()] == [1, 2, 3]
    # And each retry started after its backoff, and not long after
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    print(f"MEASURED retry gaps with a 0.3s backoff: {[round(g, 3) for g in gaps]}")
    assert all(0.3 <= gap < 0.6 for gap in gaps), gaps


def _envelope(target: str) -> bytes:
    ref = JobRef(target, {"journal": "x", "tag": "x"}, JobSettings.from_values({}))
    return encode_message(Envelope(ref, "poison"), "default")


@needs_servers
async def test_poisoned_messages_are_recorded_as_failed_and_the_worker_goes_on(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker allowed to import tests.integration.jobs only
    marker = tmp_path / "imported"
    monkeypatch.setenv("ARVEL_FLOW_TEST_MARKER", str(marker))
    await rig.start_worker()
    # When a message that is not JSON and one naming a disallowed module are queued,
    # followed by a good job
    await rig.publish_raw(b"{not json")
    await rig.publish_raw(_envelope(FORBIDDEN))
    await rig.dispatcher.dispatch(record(rig, "good"))
    # Then the good job runs
    await rig.wait_for(lambda: rig.tags() == ["good"], 5, "the good job ran")
    # And both poisoned messages are recorded as failed, nothing imported for them
    failures = await poll(rig.dispatcher.store.list_failed, lambda f: len(f) == 2, 5, "failed")
    assert sorted(f.job for f in failures) == sorted([UNREADABLE, FORBIDDEN])
    refused = next(f for f in failures if f.job == FORBIDDEN)
    assert refused.exception == "arvel_flow.errors.ImportTargetError"
    assert "tests.integration.forbidden" not in sys.modules
    assert not marker.exists()
    # And every message was acknowledged
    assert await rig.dispatcher.size() == 0


@needs_servers
async def test_a_message_delivered_past_the_cap_fails_without_running(rig: Rig) -> None:
    # Given a job whose message was delivered once and handed back (as by a dying worker)
    await rig.dispatcher.dispatch(record(rig, "capped"))
    name = await rig.transport.declare("default")
    channel = await rig.transport.channel()
    queue = await channel.declare_queue(name, passive=True)
    first = await poll(lambda: queue.get(no_ack=False, fail=False), bool, 5, "the message")
    assert first is not None
    await first.reject(requeue=True)
    # When a worker allowing one delivery gets it a second time
    worker = await rig.start_worker(max_deliveries=1)
    # Then the job does not run, and fails for good with the delivery limit
    (failure,) = await poll(rig.dispatcher.store.list_failed, bool, 5, "the failure")
    assert failure.job == f"{JOBS}:Record"
    assert failure.exception == "arvel_flow.errors.DeliveryLimitError"
    assert "delivered 2 times" in failure.message
    await rig.stop(worker)
    assert rig.tags() == []
    assert await rig.dispatcher.size() == 0


@needs_servers
async def test_an_idle_worker_stops_at_once_however_long_its_read_would_wait(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an idle worker whose read would wait an hour for a message
    monkeypatch.setattr(rabbitmq_consumer, "_MAX_READ_WAIT", 3600.0)
    worker = await rig.start_worker(read_block_seconds=3600.0)
    await asyncio.sleep(0.3)
    # When it is stopped
    await rig.stop(worker)
    # Then `run` returned (within the stop's 10 s hang guard): its wait was woken,
    # not waited out
    assert worker.stopping


@needs_servers
async def test_a_busy_worker_finishes_its_job_and_hands_back_what_it_did_not_start(
    rig: Rig,
) -> None:
    # Given a worker with two slots running a job that ends when the test says so
    busy = await rig.start_worker(concurrency=2)
    await rig.dispatcher.dispatch(Gated(journal=rig.journal_key, tag="long"))
    await rig.wait_for(lambda: len(busy.held) == 1, 5, "the job started")
    # When it is stopped, and another job arrives after that (prefetched, not started)
    stopping = asyncio.create_task(rig.stop(busy))
    await asyncio.sleep(0.2)
    await rig.dispatcher.dispatch(record(rig, "after"))
    await poll(rig.dispatcher.size, lambda n: n == 0, 10, "prefetched by the stopping worker")
    # Then it goes on running the job, and starts no other
    assert not stopping.done()
    assert rig.tags() == []
    # And once the job ends, it stops, having run that job only
    rig.redis.set(f"{rig.journal_key}:release:long", 1)
    await stopping
    assert rig.tags() == ["long"]
    # And the other job went back to the queue (RabbitMQ counts a requeued message a
    # moment after the hand-back): a new worker runs it, once
    await poll(rig.dispatcher.size, lambda n: n == 1, 10, "the job handed back")
    await rig.start_worker()
    await rig.wait_for(lambda: rig.tags() == ["long", "after"], 5, "the other job ran")
    await asyncio.sleep(0.3)
    assert rig.tags() == ["long", "after"]


@needs_servers
async def test_an_aborted_worker_hands_its_running_job_to_another_at_once(rig: Rig) -> None:
    # Given a worker running a long job
    doomed = await rig.start_worker()
    await rig.dispatcher.dispatch(record(rig, "cut", hold=1.0))
    await rig.wait_for(lambda: len(doomed.held) == 1, 5, "the job was taken")
    await asyncio.sleep(0.2)  # running, not only taken
    # When it aborts
    doomed.abort()
    async with asyncio.timeout(5):
        await rig.running.pop(doomed)
    # Then the job, unfinished, is back in the queue (handed back as the worker left)
    assert rig.tags() == []
    await poll(rig.dispatcher.size, lambda n: n == 1, 10, "the job handed back")
    # And another worker runs it to its end
    await rig.start_worker()
    await rig.wait_for(lambda: rig.tags() == ["cut"], 8, "the job ran elsewhere")


class OutageTransport(RabbitMQTransport):
    """A transport whose first ``outages`` publishes fail, as during a broker hiccup."""

    def __init__(self, url: str, *, prefix: str, outages: int) -> None:
        super().__init__(url, prefix=prefix)
        self.outages = outages

    async def publish(self, envelopes: Sequence[Envelope], now: float) -> None:
        if self.outages:
            self.outages -= 1
            raise BackendError(self.backend, "a moment's outage")
        await super().publish(envelopes, now)


@needs_servers
async def test_a_message_whose_settling_failed_is_handled_again_once_the_broker_is_back(
    rig: Rig,
) -> None:
    # Given a worker whose first settling fails (after its job ran), with fast timings
    transport = OutageTransport(rig.amqp_url, prefix=rig.prefix, outages=1)
    rig.expected_warnings += ["a moment's outage; retrying for up to 30s", "is back"]
    await rig.start_worker(transport, heartbeat_seconds=0.1, heartbeat_timeout=0.5)
    # When a job (outside any run) is dispatched
    await rig.dispatcher.dispatch(record(rig, "again"))
    # Then its message is handled again once the outage is over, as a redelivery: a
    # job outside a run has no step to find finished, so it runs again (at least
    # once), then is acknowledged
    took = await rig.wait_for(lambda: rig.tags() == ["again", "again"], 5, "it ran again")
    print(f"MEASURED unacknowledged message ran again after {took:.2f}s")
    assert await poll(rig.dispatcher.size, lambda n: n == 0, 10, "acknowledged") == 0
    await asyncio.sleep(0.5)
    assert rig.tags() == ["again", "again"]
