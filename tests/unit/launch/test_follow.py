"""Following a remote run through its event stream, on a fake clock (no server)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from taskiq import InMemoryBroker

from arvel_flow.brokers.redis.transport import RedisStreamTransport
from arvel_flow.launch import Launcher
from arvel_flow.launch.follow import RemoteFollower, format_no_worker
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.queue.plan import JobNode
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.transports import KickTransport
from arvel_flow.store.contracts import RunRecord
from arvel_flow.store.redis import RedisStore
from tests.unit.queue.flow_jobs import Step

pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """Gives each scripted batch of events in turn; an empty read "blocks" on the clock."""

    def __init__(self, clock: Clock, batches: Sequence[list[dict[str, Any]]]) -> None:
        self.clock = clock
        self.batches = list(batches)
        self.blocks: list[float] = []
        self.afters: list[str] = []

    async def read(self, run_id: str, after: str, block: float) -> list[tuple[str, Any]]:
        self.afters.append(after)
        if self.batches:
            batch = self.batches.pop(0)
            if batch:
                return [(f"{len(self.afters)}-{n}", data) for n, data in enumerate(batch)]
        self.blocks.append(block)
        self.clock.now += block
        return []


class Store:
    """Says ``running`` until ``ends_after`` reads, then ``succeeded``."""

    def __init__(self, ends_after: int = 10**9) -> None:
        self.reads = 0
        self.ends_after = ends_after

    async def get_run(self, run_id: str) -> RunRecord:
        self.reads += 1
        status = "succeeded" if self.reads > self.ends_after else "running"
        return RunRecord(run_id, "p", status, 0.0)  # type: ignore[arg-type]


class Watched:
    """A transport whose workers' newest heartbeat ages follow a script."""

    remote = True

    def __init__(self, ages: Sequence[float | None]) -> None:
        self.ages = list(ages)

    async def last_heartbeats(self, queues: Sequence[str]) -> dict[str, float | None]:
        age = self.ages.pop(0) if len(self.ages) > 1 else self.ages[0]
        return dict.fromkeys(queues, age)


class Orchestrator:
    async def plan_of(self, run_id: str) -> Any:
        # One job, on the default queue: what queues_of reads of a plan.
        return SimpleNamespace(nodes={"a": JobNode("a", JobRef.of(Step(name="a")))})

    async def result(self, run_id: str) -> str:
        return f"result of {run_id}"


class FakeQueue:
    def __init__(self, store: Store, transport: Any = None) -> None:
        self.store = store
        self.transport = transport
        self.orchestrator = Orchestrator()
        self.events = EventBus()


def _follower(queue: FakeQueue, reader: Reader, said: list[str], clock: Clock) -> RemoteFollower:
    return RemoteFollower(
        queue,  # type: ignore[arg-type]
        reader,  # type: ignore[arg-type]
        said.append,
        heartbeat_timeout=10.0,
        check_every=5.0,
        clock=clock,
    )


def _data(name: str, run_id: str = "r1") -> dict[str, Any]:
    return {"event": name, "time": 1.0, "run_id": run_id, "step": "s", "extra": 1}


async def test_events_are_emitted_in_order_and_the_run_ends_at_its_run_finished() -> None:
    # Given a stream with two batches of events, the last ending the run
    clock = Clock()
    reader = Reader(
        clock, [[_data("job.started")], [], [_data("job.succeeded"), _data("run.finished")]]
    )
    queue = FakeQueue(Store())
    seen: list[Event] = []
    queue.events.subscribe(seen.append)
    # When the run is followed
    result = await _follower(queue, reader, [], clock).wait("r1", "0-0")
    # Then each event reached the bus as it was written, and following ended there
    assert [e.event for e in seen] == ["job.started", "job.succeeded", "run.finished"]
    assert seen[0].data == {"extra": 1}
    assert result == "result of r1"
    # And each read started after the last entry read
    assert reader.afters == ["0-0", "1-0", "1-0"]


async def test_a_lost_run_finished_is_found_by_the_safety_check_of_the_store() -> None:
    # Given a run that ended without its run.finished reaching the stream
    clock = Clock()
    store = Store(ends_after=1)
    reader = Reader(clock, [])
    # When it is followed
    result = await _follower(FakeQueue(store), reader, [], clock).wait("r1", "0-0")
    # Then the store's answer ends it after one blocking read of the check interval
    assert result == "result of r1"
    assert reader.blocks == [5.0]
    assert store.reads == 2


async def test_no_live_worker_is_said_at_once_then_again_only_after_workers_came_back() -> None:
    # Given workers that are never seen, then beat, then go quiet for 2 minutes
    clock = Clock()
    said: list[str] = []
    transport = Watched([None, None, 0.5, 125.0])
    queue = FakeQueue(Store(ends_after=4), transport)
    # When the run is followed until the store says it ended
    await _follower(queue, Reader(clock, []), said, clock).wait("r1", "0-0")
    # Then the first check (at once) said so, and again once the workers were gone again
    assert said == [format_no_worker("default", None), format_no_worker("default", 125.0)]
    assert "(last heartbeat: never); waiting - start one with: arvel-flow worker" in said[0]
    assert "last heartbeat: 2m 5s ago" in said[1]


def test_the_notice_names_a_queue_other_than_default_in_its_command() -> None:
    assert format_no_worker("mail", 3.0).endswith("arvel-flow worker --allow PREFIX --queues mail")


@pytest.mark.parametrize(
    ("transport", "followed"),
    [
        (lambda: RedisStreamTransport.from_url("redis://127.0.0.1:1/0"), True),
        # Taskiq's own workers publish no run events: the store is watched instead.
        (lambda: KickTransport(InMemoryBroker()), False),
    ],
)
async def test_only_runs_sent_to_arvel_flow_workers_are_followed_through_their_events(
    transport: Any, followed: bool
) -> None:
    # Given a queue on a Redis store sending through the transport (nothing connects yet)
    queue = Queue(transport(), store=RedisStore("redis://127.0.0.1:1/0"))
    try:
        # When a launcher is made for it
        launcher = Launcher(queue)
        # Then it follows runs through their event stream only for arvel-flow workers
        assert (launcher._follower is not None) is followed
    finally:
        await queue.close()
