"""The memory store keeps finished fan-out members compact, and reads them back whole."""

from __future__ import annotations

import tracemalloc

from arvel_flow.store.contracts import RunRecord, StepRecord
from arvel_flow.store.memory import MemoryStore

MEMBERS = 50_000


async def test_finished_members_cost_a_few_bytes_each() -> None:
    # Given a run in the memory store
    store = MemoryStore()
    await store.create_run(RunRecord("r", "p"), {})
    # When 50,000 fan-out members finish (one failed), memory traced
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for index in range(MEMBERS):
        state = "failed" if index == 7 else "succeeded"
        await store.finish_step(
            "r",
            f"root.0[{index}]",
            state,
            attempts=1,
            error="boom" if index == 7 else None,
            at=float(index),
            batch="root",
        )
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # Then each costs well under a record and its key string (~160 bytes)
    assert kept / MEMBERS < 40
    # And reading them back gives every record, the failed one with its error
    steps = await store.get_steps("r")
    assert len(steps) == MEMBERS
    assert steps["root.0[7]"] == StepRecord("root.0[7]", "failed", 1, "boom", 7.0, 7.0)
    assert steps["root.0[49999]"].finished_at == 49_999.0
    assert sum(record.state == "succeeded" for record in steps.values()) == MEMBERS - 1


async def test_a_snapshot_does_not_change_with_later_writes() -> None:
    # Given a member finished and the steps read
    store = MemoryStore()
    await store.create_run(RunRecord("r", "p"), {})
    await store.finish_step("r", "f[0]", "failed", at=1.0)
    steps = await store.get_steps("r")
    # When the member settles and another finishes
    await store.settle_retried_step("r", "f[0]", attempts=2, at=2.0)
    await store.finish_step("r", "f[1]", "succeeded", at=3.0)
    # Then what was read is what the store held then, and the store holds the writes
    now = await store.get_steps("r")
    assert (now["f[0]"].state, now["f[1]"].state) == ("succeeded", "succeeded")
    assert list(steps) == ["f[0]"]
    assert steps["f[0]"].state == "failed"
