"""Helpers of the queue suite: a fake clock, recorded events, and driver harnesses.

Kept out of ``conftest.py`` so that test modules import them by a name of their own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arvel_flow.errors import JobFailedError
from arvel_flow.queue.drivers import SyncQueue, TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.queue.runner import JobRunner
from arvel_flow.store import StoreContract
from arvel_flow.store.contracts import FailedJob
from arvel_flow.testing import FakeClock  # the one fake clock, also for users

T0 = 1_700_000_000.0  # FakeClock()'s start
"""Where the fake clock starts: an epoch time, as the system clock would give."""

StoreFactory = Callable[[], StoreContract]


def gaps(times: Sequence[float]) -> list[float]:
    """The time between consecutive moments: the waits between attempts."""
    return [later - earlier for earlier, later in itertools.pairwise(times)]


class Events(list[Event]):
    """Every event emitted in a test, with ways to pick some out."""

    def named(self, name: str, step: str | None = None) -> list[Event]:
        return [e for e in self if e.event == name and (step is None or e.step == step)]

    def names(self) -> list[str]:
        return [e.event for e in self]


@dataclass
class Harness:
    """Builds queues of one driver on one store backend, and runs jobs through them."""

    driver: str
    clock: FakeClock
    events: Events
    make_store: StoreFactory
    queues: list[Queue] = field(default_factory=list)

    def queue(self, *, concurrency: int = 16, store: StoreContract | None = None) -> Queue:
        """A new queue (as in another process) on the shared store, reporting to ``events``."""
        options: dict[str, Any] = {
            "store": store if store is not None else self.make_store(),
            "events": EventBus(self.events.append),
            "clock": self.clock,
        }
        queue: Queue
        if self.driver == "sync":
            queue = SyncQueue(**options)
        else:
            queue = TaskiqQueue(concurrency=concurrency, **options)
        self.queues.append(queue)
        return queue

    async def run(self, *jobs: Any, queue: Queue | None = None) -> list[str | None]:
        """Dispatch ``jobs`` together and wait until the queue is idle; their ids."""
        queue = queue if queue is not None else self.queue()
        ids = await queue.bulk(list(jobs))
        await self.settle(queue)
        return ids

    async def settle(self, queue: Queue) -> None:
        """Wait until everything dispatched to ``queue`` has run (sync: it has already)."""
        if queue.pausable:
            await asyncio.wait_for(queue.join(), timeout=10)

    async def close(self) -> None:
        for queue in self.queues:
            await queue.close()


@dataclass
class Executor:
    """Runs one job to its end: in place through `JobRunner.execute`, or through a driver.

    ``error`` keeps what ``execute`` raised; drivers record failures in the store only.
    """

    how: str
    harness: Harness
    store: StoreContract
    error: BaseException | None = None

    def runner(self, **options: Any) -> JobRunner:
        """A runner on the same store, clock and events as the drivers."""
        return JobRunner(
            store=self.store,
            events=EventBus(self.harness.events.append),
            clock=self.harness.clock,
            **options,
        )

    async def run(self, job: Any) -> None:
        """Run ``job`` until it succeeded or failed for good."""
        if self.how == "runner":
            try:
                await self.runner().execute(job)
            except JobFailedError as error:
                self.error = error
            return
        await self.harness.run(job)

    async def failed(self) -> list[FailedJob]:
        """The failed-jobs store, oldest first."""
        return sorted(await self.store.list_failed(), key=lambda r: r.failed_at)


class CrashingQueue(SyncQueue):
    """A sync driver whose process "dies" after ``deliveries`` sends: the rest are dropped.

    What it dropped never runs; the run stays in the store unfinished, as after a crash.
    """

    def __init__(self, deliveries: int, **options: Any) -> None:
        super().__init__(**options)
        self.budget = deliveries
        self.dropped: list[Envelope] = []

    async def _send(self, envelopes: Sequence[Envelope]) -> None:
        kept: list[Envelope] = []
        for envelope in envelopes:
            if self.budget > 0:
                self.budget -= 1
                kept.append(envelope)
            else:
                self.dropped.append(envelope)
        await super()._send(kept)
