"""The scheduler loop on a fake clock and a memory store: claims, overlap, missed, restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from arvel_flow.errors import BackendError, RunExistsError
from arvel_flow.pipeline.schedule import TriggerSpec
from arvel_flow.scheduler import Scheduler, Trigger
from arvel_flow.scheduler.claim import RECOVER_GRACE, claim, decide, tick_run_id
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
    plan: dict[str, object] = field(default_factory=lambda: REMOTE)

    async def __call__(self, t: Trigger, at: float, run_id: str) -> FakeRun:
        record = RunRecord(run_id, t.pipeline, created_at=self.clock.now(), trigger=t.key)
        if not await self.store.create_run(record, self.plan):
            raise RunExistsError(run_id)  # as the orchestrator does
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
    starter.plan = {"settings": {}}
    scheduler = make(trigger(every="10s", overlap="skip"), store, starter, clock)
    clock._now = T0 + 10.1
    await scheduler.tick()
    await settle()
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


async def claim_and_die(store: MemoryStore, t: Trigger, at: float, now: float) -> str:
    """What a scheduler killed between claim and start leaves: the claim, no run."""
    claimed = await claim(store, t.key, t.overlap, at, tick_run_id(t.key, at), now)
    assert claimed is not None
    return claimed.tick.run_id or ""


def test_a_tick_run_id_is_the_same_everywhere_and_shaped_as_generated_ids() -> None:
    # Given a tick / When its run id is made twice, and for the next tick
    first, again = tick_run_id("demo:t", T0), tick_run_id("demo:t", T0)
    # Then it is the same, 12 hex digits, and differs from the next tick's and trigger's
    assert first == again
    assert len(first) == 12
    assert int(first, 16) >= 0
    assert first != tick_run_id("demo:t", T0 + 1)
    assert first != tick_run_id("demo:u", T0)


async def test_a_claimed_tick_without_a_run_is_started_by_another_scheduler_once(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given a scheduler that claimed the tick at T0+10 and died before starting its run
    t = trigger(every="1h")
    clock._now = T0 + 10.1
    run_id = await claim_and_die(store, t, T0 + 10, clock.now())
    second = make(t, store, starter, clock)
    # When a second scheduler passes within the grace: Then it waits (the claimer may be slow)
    await second.tick()
    await settle()
    clock._now += RECOVER_GRACE - 1
    await second.tick()
    await settle()
    assert starter.ticks == []
    # When it passes after the grace, and again
    clock._now += 1
    await second.tick()
    await settle()
    clock._now += 5
    await second.tick()
    await settle()
    # Then it started the tick's run, under the claimed id, exactly once
    assert second.started == [(t.key, T0 + 10, run_id)]
    assert starter.ticks == [T0 + 10]
    assert second.errors == 0
    await second.close()


async def test_a_restarted_scheduler_starts_the_tick_it_died_after_claiming(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given a scheduler killed between claim and start, restarted a minute later
    t = trigger(every="1h")
    clock._now = T0 + 10.1
    run_id = await claim_and_die(store, t, T0 + 10, clock.now())
    clock._now += 60
    restarted = make(t, store, starter, clock)
    # When it passes once
    await restarted.tick()
    await settle()
    # Then the lost tick's run is started at once
    assert restarted.started == [(t.key, T0 + 10, run_id)]
    await restarted.close()


async def test_a_lost_tick_is_started_even_after_later_ticks_were_claimed(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given an every-second trigger whose tick at T0+1 was claimed by a scheduler that died
    t = trigger(every="1s", overlap="allow")
    clock._now = T0 + 1.1
    lost = await claim_and_die(store, t, T0 + 1, clock.now())
    second = make(t, store, starter, clock)
    # When a second scheduler passes every second for fifteen seconds
    for _ in range(15):
        await second.tick()
        await settle()
        clock._now += 1
    # Then every tick started exactly one run, the lost one too (once its grace passed)
    assert sorted(starter.ticks) == [T0 + n for n in range(1, 16)]
    assert [s for s in second.started if s[2] == lost] == [(t.key, T0 + 1, lost)]
    await second.close()


async def test_a_slow_claimer_and_a_recovering_scheduler_start_one_run(
    store: MemoryStore, starter: Starter, clock: FakeClock
) -> None:
    # Given a scheduler whose start of its claimed tick is held up past the grace
    t = trigger(every="1h")
    held = asyncio.Event()

    async def slow_start(trigger: Trigger, at: float, run_id: str) -> FakeRun:
        await held.wait()
        return await starter(trigger, at, run_id)

    slow = Scheduler([t], store, start=slow_start, clock=clock)
    clock._now = T0 + 10.1
    await slow.tick()
    await settle()
    # When another scheduler starts the tick's run after the grace, and the slow one goes on
    other = make(t, store, starter, clock)
    await other.tick()
    clock._now += RECOVER_GRACE + 1
    await other.tick()
    await settle()
    held.set()
    await settle()
    # Then one run was made; the slow scheduler was told it started elsewhere, no error
    assert len(starter.ticks) == 1
    assert len(other.started) == 1
    assert slow.started == []
    assert slow.errors == 0
    assert other.errors == 0
    await slow.close()
    await other.close()


class FlakyStore(MemoryStore):
    """A memory store whose ``get_run`` fails while ``down``."""

    down = False

    async def get_run(self, run_id: str) -> RunRecord | None:
        if self.down:
            raise BackendError("memory", "down")
        return await super().get_run(run_id)


async def test_a_lost_tick_is_still_recovered_after_the_store_failed_once(
    clock: FakeClock,
) -> None:
    # Given a claim without a run, watched by a second scheduler
    store = FlakyStore()
    starter = Starter(store, clock)
    t = trigger(every="1h")
    clock._now = T0 + 10.1
    run_id = await claim_and_die(store, t, T0 + 10, clock.now())
    second = make(t, store, starter, clock)
    await second.tick()
    # When the store fails at the pass after the grace, then is back
    clock._now += RECOVER_GRACE
    store.down = True
    with pytest.raises(BackendError):
        await second.tick()
    store.down = False
    clock._now += 1
    await second.tick()
    await settle()
    # Then the tick's run is started all the same
    assert [s[2] for s in second.started] == [run_id]
    await second.close()
