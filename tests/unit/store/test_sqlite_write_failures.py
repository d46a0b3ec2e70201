"""Writes the sqlite store cannot make: they surface as `StoreFileError`, never half-kept.

A full disk is simulated two ways: sqlite's own ``max_page_count`` (a real "database or
disk is full" from sqlite), and a connection wrapper that fails chosen statements the
way sqlite does, rolling the transaction back first when told to. The end-to-end test
with a filesystem that really fills is ``tests/e2e/test_disk_full.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from arvel_flow.errors import BackendError, StoreFileError
from arvel_flow.store.contracts import FailedJob, RunRecord
from arvel_flow.store.sqlite import SqliteStore
from tests.fixtures.waiting import until
from tests.unit.store.sqlite_faults import FULL, wrap

pytestmark = pytest.mark.timeout(10)


def steps_on_disk(path: Path) -> set[str]:
    """The steps another process would see in the file."""
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT step FROM steps")}


async def grouped_store(path: Path, interval: float = 60.0) -> SqliteStore:
    """A store grouping writes for ``interval`` seconds, holding run ``r`` (committed)."""
    store = SqliteStore(path, commit_interval=interval)
    await store.create_run(RunRecord("r", "n", created_at=1.0), {"format": 1})
    store._db.flush()
    return store


async def test_a_failed_group_commit_is_raised_by_the_next_call_not_into_the_loop(
    tmp_path: Path, loop_errors: list[dict[str, Any]]
) -> None:
    # Given a store that commits its group 50 ms after the first write
    path = tmp_path / "state.db"
    store = await grouped_store(path, interval=0.05)
    conn = wrap(store)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    # When the disk is full at the commit
    conn.fail_on = "COMMIT"
    await until(lambda: conn.failures > 0, what="the group commit")
    # Then nothing reached the event loop's handler
    assert loop_errors == []
    # And the next call of any kind (a read too) raises the failure, with one message
    message = f"the state store {path} could not be written: {FULL}"
    with pytest.raises(StoreFileError) as raised:
        await store.get_run("r")
    assert str(raised.value) == message
    with pytest.raises(StoreFileError, match="could not be written"):
        await store.finish_step("r", "b", "succeeded", at=3.0)
    # And it is a BackendError (exit 3), and closing says so too
    assert isinstance(raised.value, BackendError)
    with pytest.raises(StoreFileError):
        await store.close()
    # And the lost group left nothing in the file
    assert steps_on_disk(path) == set()


async def test_after_a_group_is_lost_no_later_write_is_committed_without_it(
    tmp_path: Path,
) -> None:
    # Given a group holding a finished step
    path = tmp_path / "state.db"
    store = await grouped_store(path)
    conn = wrap(store)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    # When a later write fails and sqlite rolls the whole group back, as on a full disk
    conn.fail_on, conn.roll_back = "INSERT", True
    with pytest.raises(StoreFileError, match=FULL):
        await store.finish_step("r", "b", "succeeded", at=3.0)
    # Then writes after it are refused rather than committed on their own, even once
    # the disk has room again
    conn.fail_on = None
    with pytest.raises(StoreFileError, match=FULL):
        await store.finish_step("r", "c", "succeeded", at=4.0)
    with pytest.raises(StoreFileError):
        await store.close()
    # And the file holds the state of the last commit: none of a, b or c
    assert steps_on_disk(path) == set()


async def test_a_group_rolled_back_behind_the_store_is_not_continued(tmp_path: Path) -> None:
    # Given a group whose transaction sqlite has rolled back without an error reaching
    # the store
    path = tmp_path / "state.db"
    store = await grouped_store(path)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    store._db.conn.execute("ROLLBACK")
    # When another write comes
    with pytest.raises(StoreFileError, match="rolled back"):
        await store.finish_step("r", "b", "succeeded", at=3.0)
    # Then it was not committed on its own
    with pytest.raises(StoreFileError):
        await store.close()
    assert steps_on_disk(path) == set()


async def test_a_real_full_database_fails_the_write_with_sqlites_words(tmp_path: Path) -> None:
    # Given a grouped store whose file may not grow (sqlite's own limit on pages)
    path = tmp_path / "state.db"
    store = await grouped_store(path)
    conn = store._db.conn
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    record = FailedJob(
        id="f1", job="x:Y", queue="default", payload={"blob": "x" * 100_000},
        exception="E", message="m", traceback="t", attempts=1, failed_at=1.0,
    )  # fmt: skip
    # When a write needs more pages
    with pytest.raises(StoreFileError, match=FULL):
        await store.add_failed(record)
    # Then the store gives up on writes
    with pytest.raises(StoreFileError, match=FULL):
        await store.finish_step("r", "a", "succeeded", at=2.0)
    with pytest.raises(StoreFileError):
        await store.close()


async def test_a_failed_write_outside_a_group_loses_only_itself(tmp_path: Path) -> None:
    # Given a store that commits every write
    path = tmp_path / "state.db"
    store = await grouped_store(path, interval=0.0)
    conn = wrap(store)
    # When one commit fails (a lock held past the busy timeout, a moment of full disk)
    conn.fail_on = "COMMIT"
    with pytest.raises(StoreFileError, match=FULL):
        await store.finish_step("r", "a", "succeeded", at=2.0)
    # Then the store goes on: the next write is committed, and the failed one is not
    conn.fail_on = None
    await store.finish_step("r", "b", "succeeded", at=3.0)
    assert steps_on_disk(path) == {"b"}
    await store.close()


async def test_a_lock_held_past_the_busy_timeout_fails_the_write_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a grouped store with a short busy timeout, its last group committed, and
    # another process holding the file's write lock
    monkeypatch.setattr("arvel_flow.sqlite_db.BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "state.db"
    store = await grouped_store(path)
    await store.finish_step("r", "a", "succeeded", at=2.0)
    store._db.flush()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    # When a write would open the next group
    with pytest.raises(StoreFileError) as raised:
        await store.finish_step("r", "b", "succeeded", at=3.0)
    # Then it fails with sqlite's words, and nothing was lost, so the store goes on
    # once the lock is free
    assert str(raised.value) == f"the state store {path} could not be written: database is locked"
    other.execute("ROLLBACK")
    other.close()
    await store.finish_step("r", "c", "succeeded", at=4.0)
    await store.close()
    assert steps_on_disk(path) == {"a", "c"}
