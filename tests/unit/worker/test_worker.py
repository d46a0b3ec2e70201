"""The worker's delivery rules (SPEC §2 "Distributed runs"), on the in-memory `StubBroker`.

First copy, repair, the delivery cap, refusals, at least once, stop and abort, and
riding through an outage: each exercised without a server, in milliseconds. The
integration tests run the same rules on the real brokers.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from arvel_flow.errors import OutageError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.wire import decode_message, encode_message
from arvel_flow.store.contracts import FailedJob, RunRecord
from arvel_flow.store.memory import MemoryStore
from arvel_flow.worker import Worker, WorkerOptions
from arvel_flow.worker.refusals import UNREADABLE
from arvel_flow.worker.stub import StubBroker, StubConsumer
from tests.fixtures.waiting import until
from tests.unit.worker.worker_jobs import JOBS, RAN, Step

pytestmark = pytest.mark.timeout(5)

FORBIDDEN = "tests.unit.worker.forbidden"
"""A job module outside the allowed prefix, which no test imports."""


class Rig:
    """A stub broker, a memory store they share, a dispatcher and workers on them."""

    def __init__(self) -> None:
        self.broker = StubBroker()
        self.store = MemoryStore()
        self.dispatcher = self.queue()
        self.serving: dict[Worker, asyncio.Task[None]] = {}

    def queue(self) -> TaskiqQueue:
        """A queue sending through the stub broker, on the shared store."""
        return TaskiqQueue(
            transport=self.broker.transport, store=self.store, allowed_modules=(JOBS,)
        )

    def worker(self, **options: Any) -> Worker:
        """A worker on the stub broker (not started)."""
        values: dict[str, Any] = {"allowed_modules": (JOBS,), "read_block_seconds": 0.05}
        return Worker(
            self.queue(), self.broker.consumer(), options=WorkerOptions(**values | options)
        )

    async def start(self, **options: Any) -> Worker:
        """A worker serving as a task; returned once it reads."""
        worker = self.worker(**options)
        self.serving[worker] = asyncio.create_task(worker.run())
        await until(worker.ready.is_set)
        return worker

    async def stop(self, worker: Worker) -> None:
        """Stop ``worker`` and wait for `run` to return."""
        worker.stop()
        await self.serving.pop(worker)

    async def run(self, *steps: Step) -> str:
        """Start a chain of ``steps`` from the dispatcher; the run's id."""
        return await self.dispatcher.start(Chain(*steps).to_plan())

    async def run_record(self, run_id: str) -> RunRecord:
        record = await self.store.get_run(run_id)
        assert record is not None
        return record

    async def finished(self, run_id: str) -> str:
        """Wait until the run is final; its status."""
        for _ in range(2000):
            status = (await self.run_record(run_id)).status
            if status != "running":
                return status
            await asyncio.sleep(0.001)
        raise AssertionError(f"run {run_id} did not finish")

    async def failed(self) -> list[FailedJob]:
        return await self.store.list_failed()

    def sent_steps(self) -> list[str | None]:
        """The step of every envelope sent, in order."""
        return [envelope.step for envelope in self.broker.sent]


@pytest.fixture
def ran() -> Iterator[None]:
    RAN.clear()
    yield
    RAN.clear()


@pytest.fixture
async def rig(ran: None) -> AsyncIterator[Rig]:
    rig = Rig()
    yield rig
    for worker in tuple(rig.serving):
        await rig.stop(worker)


def envelope_of(data: bytes | None) -> Envelope:
    return decode_message(data)


# At least once -------------------------------------------------------------------------


async def test_each_message_is_acknowledged_after_what_its_job_dispatched_was_sent(
    rig: Rig,
) -> None:
    # Given a chain of two steps, and a worker
    run_id = await rig.run(Step(name="a"), Step(name="b"))
    await rig.start()
    # When it runs
    status = await rig.finished(run_id)
    await until(lambda: len(rig.broker.acked) == 2)
    # Then each step ran once, and the first message was acknowledged only after the
    # second step was sent
    assert status == "succeeded"
    assert RAN == {"a": 1, "b": 1}
    assert rig.broker.history == [("put", "m1"), ("put", "m2"), ("ack", "m1"), ("ack", "m2")]
    assert rig.sent_steps() == ["root.0", "root.1"]
    assert rig.broker.unacked == []


async def test_a_message_whose_next_step_cannot_be_sent_is_left_unacknowledged(
    rig: Rig,
) -> None:
    # Given a chain of two steps, a broker that refuses the next send, and a worker
    # that gives up on the first failure
    run_id = await rig.run(Step(name="a"), Step(name="b"))
    rig.broker.failing_sends = 1
    worker = rig.worker(outage_grace=0.05)
    # When the first step runs and its next step cannot be sent
    with pytest.raises(OutageError):
        await worker.run()
    # Then its message is not acknowledged: another worker gets it again
    assert RAN == {"a": 1}
    assert rig.broker.acked == []
    assert len(rig.broker.unacked) == 1
    assert rig.sent_steps() == ["root.0"]
    assert (await rig.run_record(run_id)).status == "running"


async def test_an_outage_while_settling_is_ridden_through_without_running_the_job_again(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a chain of two steps and a broker that refuses one send
    run_id = await rig.run(Step(name="a"), Step(name="b"))
    rig.broker.failing_sends = 1
    # When a worker runs it
    await rig.start()
    status = await rig.finished(run_id)
    # Then the outage was said once and its end once; the first step ran once, and
    # its message was handled again as a redelivery, sending the second step
    assert status == "succeeded"
    assert RAN == {"a": 1, "b": 1}
    assert rig.sent_steps() == ["root.0", "root.1"]
    said = [r.getMessage() for r in caplog.records if "stub broker" in r.getMessage()]
    assert said == [
        "stub broker could not be reached: sending failed on purpose; retrying for up to 30s",
        "stub broker is back",
    ]


# First copy and repair -----------------------------------------------------------------


async def test_a_second_copy_of_a_step_is_acknowledged_without_running(rig: Rig) -> None:
    # Given a run whose step was sent twice (a resume while its first message waits)
    run_id = await rig.run(Step(name="a"))
    await rig.dispatcher.resume(run_id)
    first, second = rig.broker.waiting()
    assert envelope_of(first.data).id != envelope_of(second.data).id
    # When a worker reads both
    await rig.start()
    await rig.finished(run_id)
    await until(lambda: len(rig.broker.acked) == 2)
    # Then the step ran from the first message only; both are acknowledged
    assert RAN == {"a": 1}
    assert rig.broker.acked == [first.message_id, second.message_id]


async def test_a_redelivered_message_of_a_finished_step_repairs_the_run(rig: Rig) -> None:
    # Given a worker that dies after its first step finished, before sending the next
    run_id = await rig.run(Step(name="a"), Step(name="b"))
    rig.broker.die_before_settling()
    first = await rig.start()
    await until(lambda: RAN["a"] == 1 and not first.held)
    await rig.stop(first)
    assert rig.sent_steps() == ["root.0"]
    # When the broker hands its message to another worker
    (message_id,) = rig.broker.redeliver()
    await rig.start()
    status = await rig.finished(run_id)
    # Then the finished step does not run again: the step it lost is sent, once
    assert status == "succeeded"
    assert RAN == {"a": 1, "b": 1}
    assert rig.sent_steps() == ["root.0", "root.1"]
    assert rig.broker.messages[message_id].deliveries == 2
    assert message_id in rig.broker.acked


# Delivery cap and refusals -------------------------------------------------------------


async def test_a_message_delivered_too_often_fails_without_running(rig: Rig) -> None:
    # Given a step whose message was handed to a worker that died, once already
    run_id = await rig.run(Step(name="a"))
    (taken,) = rig.broker.take(["default"], 1, now=time.time())
    rig.broker.redeliver()
    # When a worker allowing one delivery gets it a second time
    await rig.start(max_deliveries=1)
    status = await rig.finished(run_id)
    await until(lambda: taken.message_id in rig.broker.acked)
    # Then it fails for good, unrun, with a failed-jobs record
    assert status == "failed"
    assert RAN == {}
    (failed,) = await rig.failed()
    assert failed.exception == "arvel_flow.errors.DeliveryLimitError"
    assert rig.broker.unacked == []


async def test_an_unreadable_message_is_recorded_as_failed_and_acknowledged(rig: Rig) -> None:
    # Given a message that is no envelope
    message_id = rig.broker.put("default", b"{nope")
    # When a worker reads it
    await rig.start()
    await until(lambda: message_id in rig.broker.acked)
    # Then it is a failed-jobs record, and gone from the broker
    (failed,) = await rig.failed()
    assert (failed.job, failed.queue) == (UNREADABLE, "default")
    assert rig.broker.unacked == []


async def test_a_message_naming_a_job_outside_the_allowlist_imports_nothing(rig: Rig) -> None:
    # Given a message whose job lives outside the allowed modules
    job = JobRef(f"{FORBIDDEN}:Forbidden", {}, JobSettings())
    message_id = rig.broker.put("default", encode_message(Envelope(job, "e1"), "default"))
    events: list[Event] = []
    # When a worker reads it
    queue = TaskiqQueue(
        transport=rig.broker.transport,
        store=rig.store,
        events=EventBus(events.append),
        allowed_modules=(JOBS,),
    )
    options = WorkerOptions(allowed_modules=(JOBS,), read_block_seconds=0.05)
    worker = Worker(queue, rig.broker.consumer(), options=options)
    rig.serving[worker] = asyncio.create_task(worker.run())
    await until(lambda: message_id in rig.broker.acked)
    # Then the worker refused it before running anything: a failed-jobs record, and
    # its module was never imported
    (failed,) = await rig.failed()
    assert failed.job == f"{FORBIDDEN}:Forbidden"
    assert failed.exception == "arvel_flow.errors.ImportTargetError"
    assert [e.data["reason"] for e in events if e.event == "job.failed"] == [
        "refused by the worker"
    ]
    assert FORBIDDEN not in sys.modules


# Stopping ------------------------------------------------------------------------------


async def test_stop_lets_the_running_job_finish_and_acknowledges_it(rig: Rig) -> None:
    # Given a worker running a job that takes a while
    run_id = await rig.run(Step(name="a", hold=0.1))
    worker = await rig.start()
    await until(lambda: RAN["a"] == 1)
    # When it is stopped
    await rig.stop(worker)
    # Then the job finished, its message is acknowledged, nothing was handed back
    assert (await rig.run_record(run_id)).status == "succeeded"
    assert len(rig.broker.acked) == 1
    assert rig.broker.unacked == []


async def test_abort_cancels_running_jobs_and_hands_their_messages_back(rig: Rig) -> None:
    # Given a worker running two long jobs
    run_id = await rig.run(Step(name="a", hold=30))
    other = await rig.dispatcher.dispatch(Step(name="b", hold=30))
    consumer = rig.broker.consumer()
    worker = Worker(
        rig.queue(),
        consumer,
        options=WorkerOptions(allowed_modules=(JOBS,), read_block_seconds=0.05),
    )
    serving = asyncio.create_task(worker.run())
    await until(lambda: RAN == {"a": 1, "b": 1})
    # When it is aborted
    worker.abort()
    await serving
    # Then the jobs were cancelled unfinished, nothing is acknowledged, and both
    # messages went back to the broker at once, for other workers
    assert worker.aborted
    assert (await rig.run_record(run_id)).status == "running"
    assert other is not None
    assert rig.broker.acked == []
    assert consumer.left_with is not None
    handed_back = sorted(d.message_id for d in consumer.left_with)
    assert handed_back == ["m1", "m2"]
    assert sorted(m.message_id for m in rig.broker.waiting()) == handed_back


async def test_the_consumer_is_opened_bound_and_disconnected_by_the_worker(rig: Rig) -> None:
    # Given a worker on a stub consumer
    consumer: StubConsumer = rig.broker.consumer()
    worker = Worker(rig.queue(), consumer, options=WorkerOptions(allowed_modules=(JOBS,)))
    # When it serves and stops
    serving = asyncio.create_task(worker.run())
    await until(worker.ready.is_set)
    opened = consumer.opened
    worker.stop()
    await serving
    # Then the consumer served this worker and was closed; nothing was held
    assert consumer.host is worker
    assert (opened, consumer.opened) == (True, False)
    assert consumer.left_with == []
    assert worker.where == "stub broker"
