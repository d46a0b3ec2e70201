"""The scheduler loop on a fake clock and a memory store: claims, overlap, missed, restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from arvel_flow.pipeline.schedule import TriggerSpec
from arvel_flow.scheduler import Scheduler, Trigger
from arvel_flow.scheduler.claim import decide
from arvel_flow.store import MemoryStore
from arvel_flow.store.contracts import RunRecord
from tests.unit.queue.flow_harness import FakeClock

T0 = 1_800_000_000.0
"""On the grid of every interval used here."""
REMOTE = {"settings": {"driver": "taskiq", "broker": "redis"}}
"""A plan run by workers: running as long as its status says so."""


def trigger(**keys: object) -> Trigger:
    return Trigger.of("demo", "demo.yaml", TriggerSpec.model_validate({"id": "t", **keys}))


@dataclass
class FakeRun:
    id: str
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> object:
        await self.done.wait()
        return None

    async def close(self) -> None:
        return None


@dataclass
class Starter:
    """Starts runs in the store as workers would run them; ``finish`` ends one."""

    store: MemoryStore
    clock: FakeClock
    runs: dict[str, FakeRun] = field(default_factory=dict)
    ticks: list[float] = field(default_factory=list)

    async def __call__(self, t: Trigger, at: float, run_id: str) -> FakeRun:
        record = RunRecord(run_id, t.pipeline, created_at=self.clock.now(), trigger=t.key)
        await self.store.create_run(record, REMOTE)
        self.ticks.append(at)
        self.runs[run_id] = FakeRun(run_id)
        return self.runs[run_id]

    async def finish_all(self) -> None:
        for run in self.runs.values():
            await self.store.set_run_status(run.id, "succeeded", self.clock.now())
            run.done.set()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 0.2)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def starter(store: MemoryStore, clock: FakeClock) -> Starter:
    return Starter(store, clock)


def make(t: Trigger, store: MemoryStore, starter: Starter, clock: FakeClock) -> Scheduler:
    return Scheduler([t], store, start=starter, clock=clock)


@pytest.mark.parametrize(
    ("overlap", "running", "action"),
    [
        ("skip", None, "start"),
        ("skip", "r1", "skip"),
        ("allow", "r1", "start"),
        ("queue", "r1", "queue"),
    ],
)
def test_decide(overlap: str, running: str | None, action: str) -> None:
    assert decide(overlap, running) == action  # type: ignore[arg-type]


async def test_two_schedulers_start_each_tick_once(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given two schedulers sharing a store, every second, runs ending at once
    t = trigger(every="1s", overlap="allow")
    first, second = make(t, store, starter, clock), make(t, store, starter, clock)
    # When both pass at every second for ten seconds
    for _ in range(10):
        clock._now += 1
        await first.tick()
        await second.tick()
        await settle()
    # Then each tick started exactly one run, none lost
    assert starter.ticks == [T0 + n for n in range(1, 11)]
    assert len(first.started) + len(second.started) == 10
    await first.close()
    await second.close()


async def test_overlap_skip_skips_a_tick_while_the_run_goes_on(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given a run of the trigger still running
    scheduler = make(trigger(every="10s", overlap="skip"), store, starter, clock)
    clock._now = T0 + 10.1
    await scheduler.tick()
    await settle()
    # When the next tick comes
    clock._now = T0 + 20.1
    claimed = await scheduler.tick()
    # Then it is claimed as skipped, naming the run in the way, and starts nothing
    assert [c.action for c in claimed] == ["skip"]
    assert claimed[0].tick.note is not None
    assert starter.ticks == [T0 + 10]
    # And once the run ended, the next tick starts again
    await starter.finish_all()
    clock._now = T0 + 30.1
    await scheduler.tick()
    await settle()
    assert starter.ticks == [T0 + 10, T0 + 30]
    await scheduler.close()


async def test_overlap_queue_starts_the_tick_when_the_run_ahead_ends(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    scheduler = make(trigger(every="10s", overlap="queue"), store, starter, clock)
    clock._now = T0 + 10.1
    await scheduler.tick()
    await settle()
    # When the next tick comes while the first run goes on
    clock._now = T0 + 20.1
    claimed = await scheduler.tick()
    await settle()
    # Then it waits
    assert [c.action for c in claimed] == ["queue"]
    assert starter.ticks == [T0 + 10]
    # And starts once the run ahead has ended
    await starter.finish_all()
    await settle()
    await settle()
    assert starter.ticks == [T0 + 10, T0 + 20]
    await scheduler.close()


async def test_overlap_allow_starts_while_the_run_goes_on(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    scheduler = make(trigger(every="10s", overlap="allow"), store, starter, clock)
    for at in (T0 + 10.1, T0 + 20.1):
        clock._now = at
        await scheduler.tick()
        await settle()
    assert starter.ticks == [T0 + 10, T0 + 20]
    await scheduler.close()


async def test_a_run_whose_process_died_does_not_block_the_trigger(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given the trigger's last run was executed in place by a process that died
    # (status still running, no live lease)
    scheduler = make(trigger(every="10s", overlap="skip"), store, starter, clock)
    clock._now = T0 + 10.1
    await scheduler.tick()
    await settle()
    await store.create_run(
        RunRecord(next(iter(starter.runs)), "demo", created_at=T0), {"settings": {}}
    )
    # When the next tick comes; Then it starts a run
    clock._now = T0 + 20.1
    await scheduler.tick()
    await settle()
    assert starter.ticks == [T0 + 10, T0 + 20]
    await scheduler.close()


@pytest.mark.parametrize(("missed", "count"), [("skip", 0), ("latest", 1), ("all", 3)])
async def test_a_restarted_scheduler_catches_up_per_missed(
    store: MemoryStore, starter: Starter, clock: FakeClock, missed: str, count: int
) -> None:
    # Given a daily trigger that ran, then no scheduler for three days and a half
    t = trigger(cron="0 3 * * *", missed=missed, overlap="allow")
    day = 86400.0
    first = make(t, store, starter, clock)
    clock._now = 1_800_010_800.0 + 5  # 2027-01-15 11:00 UTC: ... find the 03:00 tick below
    last_3am = clock._now - ((clock._now - 3 * 3600) % day)
    clock._now = last_3am + 5
    await first.tick()
    await settle()
    await first.close()
    assert starter.ticks == [last_3am]
    # When a new scheduler starts (same store) three days and a half later
    clock._now = last_3am + 3 * day + 12 * 3600
    restarted = make(t, store, starter, clock)
    await restarted.tick()
    await settle()
    # Then the policy decides
    expected = [last_3am + n * day for n in range(4 - count, 4)]
    assert starter.ticks[1:] == expected
    await restarted.close()


async def test_serve_fires_every_second_until_stopped(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given a scheduler serving an every-second trigger on the fake clock
    scheduler = make(trigger(every="1s", overlap="allow"), store, starter, clock)
    stop = asyncio.Event()
    wakes: list[float] = []
    original = clock.sleep

    async def sleep(seconds: float) -> None:
        wakes.append(clock.now() + seconds)
        if clock.now() >= T0 + 5:
            stop.set()
        await original(seconds)

    clock.sleep = sleep  # type: ignore[method-assign]
    # When it serves until stopped at T0 + 5
    await asyncio.wait_for(scheduler.serve(stop), 5)
    # Then it woke at each tick's time (not later) and started each tick once, the
    # tick 0.2 s before it started too (on time)
    assert starter.ticks == [T0 + n for n in range(6)]
    assert all(wake == int(wake) for wake in wakes)


async def test_queued_catch_up_ticks_start_one_after_another(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given a trigger that ran at T0 + 10, then three ticks missed, with queue and all
    t = trigger(every="10s", overlap="queue", missed="all")
    scheduler = make(t, store, starter, clock)
    clock._now = T0 + 10.1
    await scheduler.tick()
    await settle()
    await starter.finish_all()
    # When a pass finds the three missed ticks at once
    clock._now = T0 + 40.1
    claimed = await scheduler.tick()
    await settle()
    # Then the first starts, and each next one waits for the run before it
    assert [c.action for c in claimed] == ["start", "queue", "queue"]
    assert starter.ticks == [T0 + 10, T0 + 20]
    await starter.finish_all()
    await settle()
    await settle()
    assert starter.ticks == [T0 + 10, T0 + 20, T0 + 30]
    await starter.finish_all()
    await settle()
    await settle()
    assert starter.ticks == [T0 + 10, T0 + 20, T0 + 30, T0 + 40]
    await scheduler.close()
