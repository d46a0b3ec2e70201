"""Grouped commits in the sqlite store: fewer commits, same decisions, atomic groups."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from arvel_flow.errors import StoreFileError
from arvel_flow.store.contracts import RunRecord
from arvel_flow.store.sqlite import SqliteStore
from tests.fixtures.waiting import until


def _steps_seen_by_another_process(path: Path) -> set[str]:
    # A second connection stands for another process reading the file.
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT step FROM steps")}


async def _store_with_run(path: Path) -> SqliteStore:
    store = SqliteStore(path, commit_interval=60)
    await store.create_run(RunRecord("r", "n", created_at=1.0), {"format": 1})
    return store


async def test_grouped_writes_become_visible_together_at_the_flush(tmp_path: Path) -> None:
    # Given a store that groups writes for a long interval
    path = tmp_path / "state.db"
    store = await _store_with_run(path)
    # When two steps finish
    await store.finish_step("r", "a", "succeeded", at=2.0)
    await store.finish_step("r", "b", "failed", at=3.0)
    # Then another process sees neither until the group is committed, then both
    assert _steps_seen_by_another_process(path) == set()
    store._db.flush()
    assert _steps_seen_by_another_process(path) == {"a", "b"}
    await store.close()


async def test_the_group_is_committed_when_its_interval_ends(tmp_path: Path) -> None:
    # Given a store that groups writes for 50 ms
    path = tmp_path / "state.db"
    store = SqliteStore(path, commit_interval=0.05)
    await store.create_run(RunRecord("r", "n", created_at=1.0), {"format": 1})
    await store.finish_step("r", "a", "succeeded", at=2.0)
    # When the interval passes
    # Then the write is committed without anything else happening
    await until(lambda: _steps_seen_by_another_process(path) == {"a"}, what="the commit")
    await store.close()


async def test_a_failing_write_undoes_itself_only(tmp_path: Path) -> None:
    # Given a group holding one successful write
    path = tmp_path / "state.db"
    store = await _store_with_run(path)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    # When a later write in the same group fails (its run does not exist)
    with pytest.raises(Exception, match="no run"):
        await store.finish_step("missing", "x", "succeeded", at=3.0)
    # Then the earlier write survives the failure and is committed with the group
    await store.close()
    assert _steps_seen_by_another_process(path) == {"a"}


async def test_closing_commits_pending_writes(tmp_path: Path) -> None:
    # Given pending grouped writes
    path = tmp_path / "state.db"
    store = await _store_with_run(path)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    # When the store closes
    await store.close()
    # Then they are on disk
    assert _steps_seen_by_another_process(path) == {"a"}


async def test_each_job_finishes_in_one_statement_inside_a_group(tmp_path: Path) -> None:
    # Given a grouped store with an open group and a known run, its batch counted once
    store = await _store_with_run(tmp_path / "state.db")
    await store.finish_step("r", "a", "succeeded", at=2.0, batch="b")
    statements: list[str] = []
    store._db.conn.set_trace_callback(statements.append)
    # When a member of a batch finishes (the hot path, once per job)
    counters = await store.finish_step("r", "c", "succeeded", at=3.0, batch="b")
    # Then it takes the step's upsert only: no savepoint, the counters counted in memory
    assert counters is not False
    assert not isinstance(counters, bool)
    assert counters.done == 2
    assert len(statements) == 1
    assert not any("SAVEPOINT" in s or "RELEASE" in s for s in statements)
    await store.close()


def _counters_seen_by_another_process(path: Path) -> tuple[int, int] | None:
    with sqlite3.connect(path) as other:
        row = other.execute("SELECT done, failed FROM batches WHERE batch = 'b'").fetchone()
    return None if row is None else (row[0], row[1])


async def test_counters_counted_in_memory_are_committed_with_their_steps(tmp_path: Path) -> None:
    # Given a grouped store where three members of a batch finish, one failed
    path = tmp_path / "state.db"
    store = await _store_with_run(path)
    for step, state in (("m0", "succeeded"), ("m1", "failed"), ("m2", "succeeded")):
        await store.finish_step("r", step, state, at=2.0, batch="b")  # type: ignore[arg-type]
    # Then another process sees neither steps nor counters before the commit, both after
    assert _counters_seen_by_another_process(path) is None
    store._db.flush()
    assert _counters_seen_by_another_process(path) == (3, 1)
    assert _steps_seen_by_another_process(path) == {"m0", "m1", "m2"}
    # And counting goes on from the committed counters in the next group
    await store.finish_step("r", "m3", "succeeded", at=3.0, batch="b")
    await store.close()
    assert _counters_seen_by_another_process(path) == (4, 1)


async def test_reads_and_decisions_in_the_group_see_the_counted_members(tmp_path: Path) -> None:
    # Given a batch of 10 with 4 members claimed, 2 of which finish in the open group
    store = await _store_with_run(tmp_path / "state.db")
    assert await store.claim_members("r", "b", 10, 4) == range(0, 4)
    await store.finish_step("r", "m0", "succeeded", at=2.0, batch="b")
    await store.finish_step("r", "m1", "failed", at=2.0, batch="b")
    # When the counters are read, and more members claimed within a window of 4
    counters = await store.batch_counters("r", "b")
    claimed = await store.claim_members("r", "b", 10, 4)
    # Then both see the two finishes: done 2, failed 1, and room for two more
    assert (counters.claimed, counters.done, counters.failed) == (4, 2, 1)
    assert claimed == range(4, 6)
    # And a finish after the claim counts on top of it
    after = await store.finish_step("r", "m2", "succeeded", at=3.0, batch="b")
    assert not isinstance(after, bool)
    assert (after.claimed, after.done) == (6, 3)
    await store.close()


async def test_a_write_failing_halfway_without_a_savepoint_rolls_the_group_back(
    tmp_path: Path,
) -> None:
    # Given a group holding one successful write
    path = tmp_path / "state.db"
    store = await _store_with_run(path)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    # When a finish fails after its first statement (a batch name sqlite cannot bind)
    with pytest.raises(sqlite3.ProgrammingError):
        await store.finish_step("r", "x", "succeeded", at=3.0, batch=object())  # type: ignore[arg-type]
    # Then no half-written finish is ever committed: the group is rolled back, and the
    # store gives up (as when the file fails) rather than commit later writes without it
    with pytest.raises(StoreFileError):
        await store.finish_step("r", "y", "succeeded", at=4.0)
    with pytest.raises(StoreFileError):
        await store.close()
    assert _steps_seen_by_another_process(path) == set()


async def test_counters_of_a_group_that_was_lost_are_not_carried_into_the_next(
    tmp_path: Path,
) -> None:
    # Given a member counted in a group that sqlite then rolls back on its own
    path = tmp_path / "state.db"
    store = await _store_with_run(path)
    store._db.flush()
    await store.finish_step("r", "m0", "succeeded", at=2.0, batch="b")
    store._db.conn.execute("ROLLBACK")
    store._db.flush()
    # When another member finishes in the next group
    counters = await store.finish_step("r", "m1", "succeeded", at=3.0, batch="b")
    await store.close()
    # Then it counts from the file, where the lost finish never was
    assert not isinstance(counters, bool)
    assert counters.done == 1
    assert _counters_seen_by_another_process(path) == (1, 0)
    assert _steps_seen_by_another_process(path) == {"m1"}
