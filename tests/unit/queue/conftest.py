"""Fixtures of the queue suite: the journal, a fake clock, stores and drivers.

- ``harness``: the sync and in-memory taskiq drivers over the memory, sqlite and redis
  stores (``make_store`` is the one parametrised store fixture), for everything that
  keeps state in the store;
- ``memory_harness``: both drivers over a memory store, for behaviour of the runner
  that does not depend on the store;
- ``executor``: one job run to its end in place (`JobRunner.execute`), then through
  each driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arvel_flow.queue.events import EventBus
from arvel_flow.queue.runner import JobRunner
from arvel_flow.store import MemoryStore, RedisStore, SqliteStore, StoreContract
from tests.unit.queue.flow_harness import Events, Executor, FakeClock, Harness, StoreFactory
from tests.unit.queue.flow_jobs import JOURNAL, Journal

STORES = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]
DRIVERS = ["sync", "taskiq"]


@pytest.fixture(autouse=True)
def journal() -> Journal:
    """What the test jobs did; empty at the start of every test."""
    JOURNAL.reset()
    return JOURNAL


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture(params=STORES)
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StoreFactory]:
    """Opens stores that share one backend, as processes sharing a store do.

    Memory hands out one instance (its locks follow the fake clock); sqlite opens the
    same file again; redis connects again under the test's own key prefix (db 15).
    """
    opened: list[StoreContract] = []
    memory = MemoryStore(clock=clock.now)

    def open_store() -> StoreContract:
        store: StoreContract
        if request.param == "memory":
            store = memory
        elif request.param == "sqlite":
            store = SqliteStore(tmp_path / "state.db")
        else:
            url = request.getfixturevalue("redis_url")
            store = RedisStore(url, prefix=request.getfixturevalue("redis_prefix"))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture(params=DRIVERS)
async def harness(
    request: pytest.FixtureRequest, clock: FakeClock, events: Events, make_store: StoreFactory
) -> AsyncIterator[Harness]:
    """Each driver over each store."""
    harness = Harness(request.param, clock, events, make_store)
    yield harness
    await harness.close()


@pytest.fixture(params=DRIVERS)
async def memory_harness(
    request: pytest.FixtureRequest, clock: FakeClock, events: Events
) -> AsyncIterator[Harness]:
    """Each driver over one memory store whose locks follow the fake clock."""
    store = MemoryStore(clock=clock.now)
    harness = Harness(request.param, clock, events, lambda: store)
    yield harness
    await harness.close()


@pytest.fixture(params=["runner", *DRIVERS])
async def executor(
    request: pytest.FixtureRequest, clock: FakeClock, events: Events
) -> AsyncIterator[Executor]:
    """`JobRunner.execute` on its own, then each driver; one memory store."""
    store = MemoryStore(clock=clock.now)
    driver = "sync" if request.param == "runner" else request.param
    harness = Harness(driver, clock, events, lambda: store)
    yield Executor(request.param, harness, store)
    await harness.close()


@pytest.fixture
def runner(clock: FakeClock, events: Events) -> JobRunner:
    """A runner on its own, over a memory store, on the fake clock."""
    return JobRunner(
        store=MemoryStore(clock=clock.now), events=EventBus(events.append), clock=clock
    )


@pytest.fixture
async def taskiq_harness(
    clock: FakeClock, events: Events, make_store: StoreFactory
) -> AsyncIterator[Harness]:
    """The concurrent driver alone, over each store: for what only concurrency shows."""
    harness = Harness("taskiq", clock, events, make_store)
    yield harness
    await harness.close()
