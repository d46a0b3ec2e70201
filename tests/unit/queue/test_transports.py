"""`Queue(transport)`: each transport's capabilities, the local pool, and the kick transport.

The drivers of SPEC §1 are thin constructors over one front end: what a queue may do
(send secrets, own runs, pause on Ctrl-C) follows from its transport's capabilities,
and the in-process pool runs envelopes itself, with no Taskiq broker in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import pytest
from taskiq import InMemoryBroker

from arvel_flow.brokers.nats.transport import NatsTransport
from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport
from arvel_flow.brokers.redis.transport import RedisStreamTransport
from arvel_flow.errors import ConfigError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers import NullQueue, SyncQueue, TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.front import Queue
from arvel_flow.queue.job import Job
from arvel_flow.queue.transports import InlineTransport, KickTransport, LocalTransport
from arvel_flow.queue.transports.local import JOBS_PER_TURN
from arvel_flow.settings import QueueSettings
from arvel_flow.store import MemoryStore
from arvel_flow.testing import FakeClock
from arvel_flow.wiring import make_queue
from tests.fixtures.waiting import until
from tests.unit.queue.flow_jobs import Journal, Step

pytestmark = pytest.mark.timeout(10)


class Recording:
    """A broker-like transport: jobs leave for workers elsewhere; it keeps what it sent."""

    remote = True

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        self.sent.extend(envelopes)

    async def size(self, queue: str) -> int:
        return len(self.sent)

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("make", "remote", "pausable"),
    [
        (SyncQueue, False, False),
        (NullQueue, False, False),
        (TaskiqQueue, False, True),
        (lambda: TaskiqQueue(InMemoryBroker()), False, True),
        (lambda: TaskiqQueue(transport=Recording()), True, False),
        (lambda: Queue(KickTransport(InMemoryBroker())), True, False),
    ],
    ids=["sync", "null", "taskiq", "taskiq-in-memory-broker", "taskiq-transport", "kick"],
)
async def test_each_queue_has_the_capabilities_of_its_transport(
    make: Any, remote: bool, pausable: bool
) -> None:
    # Given a queue of each kind / Then it says what it can do, as properties
    queue = make()
    try:
        assert (queue.remote, queue.pausable) == (remote, pausable)
    finally:
        await queue.close()


def test_every_broker_transport_sends_to_workers_elsewhere() -> None:
    assert RedisStreamTransport.remote
    assert NatsTransport.remote
    assert RabbitMQTransport.remote


async def test_the_in_process_pool_never_starts_a_taskiq_broker(
    monkeypatch: pytest.MonkeyPatch, journal: Journal
) -> None:
    # Given that starting or kicking through Taskiq's in-memory broker is recorded
    used: list[str] = []

    async def startup(self: InMemoryBroker) -> None:
        used.append("startup")

    async def kick(self: InMemoryBroker, message: Any) -> None:
        used.append("kick")

    monkeypatch.setattr(InMemoryBroker, "startup", startup)
    monkeypatch.setattr(InMemoryBroker, "kick", kick)
    # When a chain runs on the default taskiq driver, and on one given that broker
    for queue in (TaskiqQueue(), TaskiqQueue(InMemoryBroker())):
        try:
            result = await Chain(Step(name="a"), Step(name="b")).dispatch(queue)
        finally:
            await queue.close()
        assert result.ok  # type: ignore[union-attr]
    # Then every job ran, and no envelope went through the broker
    assert journal.entries == ["a", "b", "a", "b"]
    assert used == []


async def test_the_local_pool_runs_at_most_its_concurrency(journal: Journal) -> None:
    # Given a queue composed with a pool of two slots
    queue = Queue(LocalTransport(concurrency=2))
    try:
        # When five slow jobs are dispatched together
        await queue.bulk([Step(name=str(i), hold=0.02) for i in range(5)])
        await queue.join()
    finally:
        await queue.close()
    # Then all ran, never more than two at once
    assert sorted(journal.entries) == ["0", "1", "2", "3", "4"]
    assert journal.max_running == 2


class TaskOf(Job):
    """Notes the asyncio task it runs in."""

    seen: ClassVar[list[asyncio.Task[Any] | None]] = []

    async def handle(self) -> None:
        TaskOf.seen.append(asyncio.current_task())


async def test_the_local_pool_runs_jobs_in_one_task_per_slot_not_per_job() -> None:
    # Given a pool of three slots
    TaskOf.seen.clear()
    queue = Queue(LocalTransport(concurrency=3))
    try:
        # When forty jobs are dispatched together
        await queue.bulk([TaskOf() for _ in range(40)])
        await queue.join()
    finally:
        await queue.close()
    # Then all ran, in at most three tasks (a task per job costs a task per job)
    assert len(TaskOf.seen) == 40
    assert len(set(map(id, TaskOf.seen))) <= 3


class Counted(Job):
    """Counts the jobs run, without ever awaiting anything."""

    ran: ClassVar[list[int]] = [0]

    async def handle(self) -> None:
        Counted.ran[0] += 1


async def test_a_slot_of_jobs_that_never_await_still_yields_to_the_loop() -> None:
    # Given a one-slot pool and forty jobs that never await, with callbacks waiting
    # on the loop meanwhile (as timers, grouped commits and Ctrl-C do)
    Counted.ran[0] = 0
    queue = Queue(LocalTransport(concurrency=1))
    seen_at: list[int] = []
    loop = asyncio.get_running_loop()

    def note() -> None:
        seen_at.append(Counted.ran[0])
        if len(seen_at) < 4:
            loop.call_soon(note)

    try:
        # When they run
        await queue.bulk([Counted() for _ in range(40)])
        loop.call_soon(note)
        await queue.join()
    finally:
        await queue.close()
    # Then the loop got its turns between jobs, at most JOBS_PER_TURN jobs apart
    assert Counted.ran[0] == 40
    assert seen_at[0] <= JOBS_PER_TURN
    assert all(0 < b - a <= JOBS_PER_TURN for a, b in pairwise(seen_at))


async def test_cancelling_the_pool_cancels_jobs_given_a_slot_and_starts_no_more(
    journal: Journal,
) -> None:
    # Given a paused pool of two slots running two long jobs, a third waiting
    queue = TaskiqQueue(concurrency=2)
    await queue.bulk([Step(name=str(i), hold=5) for i in range(3)])
    await asyncio.sleep(0.05)
    queue.pause()
    # When its running jobs are cancelled (a second Ctrl-C)
    queue.cancel_running()
    await asyncio.wait_for(queue.drain(), timeout=1)
    # Then both stopped at once, the third never started, and it still waits here
    assert journal.timeline[:2] == ["0>", "1>"]
    assert sorted(journal.timeline[2:]) == ["<0", "<1"]
    assert await queue.size("default") == 1
    await queue.close()


async def test_a_pool_cancelled_before_its_jobs_start_frees_every_slot(journal: Journal) -> None:
    # Given a pool whose two slots were just given to two jobs, not yet started
    queue = TaskiqQueue(concurrency=2)
    await queue.bulk([Step(name=str(i), hold=5) for i in range(2)])
    # When they are cancelled at once
    queue.stop_dispatching()
    # Then neither ran, and the pool is idle
    await asyncio.wait_for(queue.join(), timeout=1)
    assert journal.entries == []
    await queue.close()


async def test_a_transport_serves_one_queue() -> None:
    # Given a transport already serving a queue
    transport = InlineTransport()
    Queue(transport)
    # When a second queue is made with it / Then that is refused, saying why
    with pytest.raises(ValueError, match="a transport serves one queue"):
        Queue(transport)


async def test_a_kick_transport_runs_envelopes_through_its_queue_in_taskiq_workers(
    journal: Journal,
) -> None:
    # Given a queue sending through a Taskiq broker (in memory: its "worker" is here)
    broker = InMemoryBroker()
    queue = Queue(KickTransport(broker), store=MemoryStore())
    try:
        # When a job is dispatched
        await queue.dispatch(Step(name="kicked"))
        await broker.wait_all()
    finally:
        await queue.close()
    # Then the broker's task ran it through the queue
    assert journal.entries == ["kicked"]


async def test_a_broker_queue_from_settings_builds_no_taskiq_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given that building a Taskiq Redis broker would fail
    from taskiq_redis import RedisStreamBroker

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a Taskiq broker was built")

    monkeypatch.setattr(RedisStreamBroker, "__init__", refuse)
    settings = QueueSettings(broker="redis", store="redis://localhost:6379/15", prefix="x:")
    # When the queue of a redis broker is made
    queue = make_queue(settings)
    try:
        # Then it is the taskiq driver sending through the Redis transport, to workers
        assert isinstance(queue, TaskiqQueue)
        assert isinstance(queue.transport, RedisStreamTransport)
        assert queue.transport.backend == "redis://localhost:6379/15"
        assert queue.remote
    finally:
        await queue.close()


async def test_a_broker_url_that_is_no_redis_url_is_one_config_error(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path}/x.db"
    settings = QueueSettings(broker="redis", store=store, url="http://nowhere")
    with pytest.raises(ConfigError, match="invalid redis URL 'http://nowhere'"):
        make_queue(settings)


async def test_a_delayed_kick_that_fails_stops_the_queue_it_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a queue on a kick transport whose broker refuses every message
    class Refusing:
        def kicker(self) -> Refusing:
            return self

        def with_labels(self, **labels: Any) -> Refusing:
            return self

        async def kiq(self, payload: str) -> None:
            raise ConnectionError("broker gone")

    # (on a clock that stands still: the delay is not over before the job is sent, however slow)
    transport = KickTransport(InMemoryBroker(), Refusing())  # type: ignore[arg-type]
    queue = Queue(transport, store=MemoryStore(), clock=FakeClock())
    try:
        # When a delayed job's time comes
        await queue.later(0.01, Step(name="a"))
        await until(lambda: queue.abandoned is not None, what="the queue to stop")
        # Then the queue stopped for that error, and it was logged once
        assert str(queue.abandoned) == "broker gone"
        assert caplog.text.count("a delayed job could not be sent") == 1
    finally:
        await queue.close()
