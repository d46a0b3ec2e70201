"""Observers: loaded by path, fed through bounded queues, never in a job's way."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from arvel_flow.errors import ImportTargetError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.observers import Observers, load_observer
from arvel_flow.queue.result import BatchResult
from arvel_flow.store import MemoryStore
from tests.unit.queue import observer_targets
from tests.unit.queue.flow_jobs import Step

TARGETS = "tests.unit.queue.observer_targets"


def event(name: str = "job.started") -> Event:
    return Event(name, 1.0, "r1", "step", "pkg:Job", 1)


@pytest.fixture(autouse=True)
def _clear() -> None:
    observer_targets.SEEN.clear()


async def test_functions_and_classes_receive_every_event_in_order() -> None:
    bus = EventBus()
    paths = [f"{TARGETS}:{name}" for name in ("record", "record_async", "Recorder", "Callable_")]
    observers = Observers.load(bus, paths)
    bus.emit(event("run.started"))
    bus.emit(event("run.finished"))
    await observers.aclose()
    assert observer_targets.SEEN.count("run.started") == 1
    seen = observer_targets.SEEN
    for prefix in ("", "async ", "class ", "call "):
        assert seen.index(prefix + "run.started") < seen.index(prefix + "run.finished")
    assert len(seen) == 8


def test_an_observer_outside_the_allowlist_is_refused() -> None:
    with pytest.raises(ImportTargetError, match="not under the allowed modules"):
        load_observer(f"{TARGETS}:record", allowed=["myapp"])


def test_an_allowed_observer_loads() -> None:
    assert load_observer(f"{TARGETS}:record", allowed=["tests"]) is observer_targets.record


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("NeedsArgs", "built with no arguments"),
        ("NOT_CALLABLE", "not a function or class"),
        ("Silent", "needs on_event"),
    ],
)
def test_what_cannot_observe_is_refused_with_its_reason(name: str, reason: str) -> None:
    with pytest.raises(ImportTargetError, match=reason):
        load_observer(f"{TARGETS}:{name}")


async def test_a_full_queue_drops_and_counts_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    got: list[str] = []

    async def slow(e: Event) -> None:
        await release.wait()
        got.append(e.event)

    bus = EventBus()
    observers = Observers(bus, [("slow", slow)], queue_size=2, drain_timeout=5)
    for _ in range(10):
        bus.emit(event())  # never blocks, however slow the observer
    await asyncio.sleep(0)
    release.set()
    await observers.aclose()
    # Emitted before the delivery task ran: two wait in the queue, eight are dropped.
    assert len(got) == 2
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    said = [r.getMessage() for r in drops]
    assert said == ["observer slow: 8 event(s) dropped (it did not keep up)"]


async def test_a_raising_observer_is_logged_once_per_kind_and_others_still_receive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[str] = []

    def broken(e: Event) -> None:
        raise ValueError("boom")

    bus = EventBus()
    observers = Observers(bus, [("broken", broken), ("fine", lambda e: got.append(e.event))])
    for _ in range(5):
        bus.emit(event())
    await observers.aclose()
    assert got == ["job.started"] * 5
    raised = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(raised) == 1
    assert "observer broken raised ValueError" in raised[0].getMessage()
    assert raised[0].exc_info is not None


async def test_a_blocked_sync_observer_does_not_stall_the_loop_and_is_cut_at_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unblock = threading.Event()
    entered = threading.Event()

    def blocking(e: Event) -> None:
        entered.set()
        unblock.wait()

    drained = asyncio.Event()

    async def instant(delay: float) -> None:  # a fake clock: the drain bound ends now
        await drained.wait()

    bus = EventBus()
    observers = Observers(bus, [("blocking", blocking)], sleep=instant)
    bus.emit(event("job.started"))
    bus.emit(event("job.succeeded"))
    # The loop keeps running other work while the observer blocks in its thread.
    assert await asyncio.to_thread(entered.wait, 10)
    progressed = [i for i in range(100) if not await asyncio.sleep(0, result=False)]
    assert len(progressed) == 100
    drained.set()
    await observers.aclose()
    unblock.set()
    assert observers.dropped == {}
    assert "observer blocking: 1 event(s) dropped" in caplog.text


async def test_a_run_finishes_while_a_blocked_sync_observer_still_holds_its_first_event() -> None:
    unblock = threading.Event()
    entered = threading.Event()
    held: list[str] = []

    def blocking(e: Event) -> None:
        held.append(e.event)
        entered.set()
        unblock.wait()

    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.event))
    observers = Observers(bus, [("blocking", blocking)], sleep=_no_wait)
    # When a two-step chain runs while the observer blocks on the first event it got
    result = await Chain(Step(name="a"), Step(name="b")).dispatch(
        SyncQueue(store=MemoryStore(), events=bus)
    )
    # Then the run succeeded and ended, the observer still on that first event
    assert isinstance(result, BatchResult)
    assert result.ok
    assert seen[-1] == "run.finished"
    assert seen.count("job.succeeded") == 2
    assert await asyncio.to_thread(entered.wait, 10)
    assert held == [seen[0]]
    await observers.aclose()
    unblock.set()


async def test_a_run_finishes_while_an_async_observer_awaits_for_ever_and_what_it_misses_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    never = asyncio.Event()
    held: list[str] = []

    async def stuck(e: Event) -> None:
        held.append(e.event)
        await never.wait()

    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.event))
    observers = Observers(bus, [("stuck", stuck)], queue_size=2, sleep=_no_wait)
    # When a five-step chain runs while the observer awaits for ever on the loop
    steps = [Step(name=f"s{n}") for n in range(5)]
    result = await Chain(*steps).dispatch(SyncQueue(store=MemoryStore(), events=bus))
    # Then the run succeeded and ended
    assert isinstance(result, BatchResult)
    assert result.ok
    assert seen[-1] == "run.finished"
    # And every event is accounted for: one held, at most two queued, the rest dropped
    assert held == [seen[0]]
    assert len(seen) - 1 - 2 <= observers.dropped["stuck"] <= len(seen) - 1
    await observers.aclose()
    assert f"observer stuck: {len(seen) - 1} event(s) dropped (it did not keep up)" in caplog.text


async def _no_wait(delay: Any) -> None:
    return None
