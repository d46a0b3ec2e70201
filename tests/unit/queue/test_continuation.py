"""Continuing a failed run (``run --resume`` of a failed run): what runs again, and how."""

from __future__ import annotations

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.events import EventBus
from tests.unit.queue.flow_harness import CrashingQueue, Harness
from tests.unit.queue.flow_jobs import Journal, Step

pytestmark = pytest.mark.timeout(10)

UPSTREAM = {"down": True}
"""Whether `Fetch` fails: the cause a test fixes before continuing its run."""


class Fetch(Step):
    """A `Step` that fails while the upstream is down."""

    async def handle(self) -> str:
        done = await super().handle()
        if UPSTREAM["down"]:
            raise ConnectionError(f"{self.name}: upstream is down")
        return done


async def test_a_continued_batch_restarts_its_failed_members_within_its_concurrency(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given a batch of eight members, two at a time, that failed: more than the three
    # failures it allows, the members it had not started cancelled
    UPSTREAM["down"] = True
    steps = [Fetch(name=f"m{i}", hold=0.01) for i in range(8)]
    failed = await Batch(steps, concurrency=2, allow_failures=3).dispatch(
        taskiq_harness.queue(concurrency=16)
    )
    assert not isinstance(failed, str)
    assert failed.status == "failed"
    assert len(journal.entries) >= 4
    ran_before = len(journal.entries)

    # When the cause is fixed and the run continued, on a driver with room for all
    UPSTREAM["down"] = False
    journal.max_running = 0
    fresh = taskiq_harness.queue(concurrency=16)
    await fresh.resume(failed.run_id)
    result = await fresh.wait(failed.run_id)

    # Then every member ran again and succeeded, never more than two at once
    assert result.status == "succeeded"
    assert sorted(journal.entries[ran_before:]) == [f"m{i}" for i in range(8)]
    assert journal.max_running == 2


async def test_a_continued_batch_whose_process_died_resumes_within_its_concurrency(
    taskiq_harness: Harness, journal: Journal
) -> None:
    # Given a failed batch (as above), continued by a process that died after one send
    UPSTREAM["down"] = True
    steps = [Fetch(name=f"m{i}", hold=0.01) for i in range(8)]
    failed = await Batch(steps, concurrency=2, allow_failures=3).dispatch(
        taskiq_harness.queue(concurrency=16)
    )
    assert not isinstance(failed, str)
    UPSTREAM["down"] = False
    crashed = CrashingQueue(
        1,
        store=taskiq_harness.make_store(),
        clock=taskiq_harness.clock,
        events=EventBus(taskiq_harness.events.append),
    )
    taskiq_harness.queues.append(crashed)
    await crashed.resume(failed.run_id)
    assert crashed.dropped
    await taskiq_harness.clock.sleep(crashed.owner_lease)
    ran_before = len(journal.entries)
    journal.max_running = 0

    # When the run is resumed
    fresh = taskiq_harness.queue(concurrency=16)
    await fresh.resume(failed.run_id)
    result = await fresh.wait(failed.run_id)

    # Then it succeeds: every member not yet succeeded ran, still two at a time
    assert result.status == "succeeded"
    assert len(journal.entries) - ran_before == 7
    assert journal.max_running == 2
