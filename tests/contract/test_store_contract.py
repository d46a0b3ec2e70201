"""One suite for every `StoreContract` driver: memory, sqlite and redis behave the same."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from arvel_flow import sqlite_db
from arvel_flow.errors import BackendError, ConfigError, RunNotFoundError
from arvel_flow.lock.contracts import LockContract
from arvel_flow.queue.failed_claims import claim_failed, retry_claimed
from arvel_flow.store import (
    MemoryStore,
    RedisStore,
    SqliteStore,
    StoreContract,
    open_store,
)
from arvel_flow.store.contracts import (
    BatchCounters,
    FailedJob,
    RunOwner,
    RunRecord,
    StepRecord,
    TickRecord,
)
from arvel_flow.store.urls import mask_url

REPO = Path(__file__).resolve().parents[2]
T0 = 1_712_345_678.123456
"""An epoch time with microseconds: stores must keep every digit."""

BACKENDS = ["memory", "sqlite", "sqlite-grouped", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreContract]:
    """Each driver in turn, empty, closed after the test."""
    backend: StoreContract
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "sqlite":
        backend = SqliteStore(tmp_path / "state.db")
    elif request.param == "sqlite-grouped":
        # Writes grouped into one transaction per interval must decide exactly the same.
        backend = SqliteStore(tmp_path / "state.db", commit_interval=0.05)
    else:
        url = request.getfixturevalue("redis_url")
        backend = RedisStore(url, prefix=request.getfixturevalue("redis_prefix"))
    yield backend
    await backend.close()


@pytest.fixture
async def run(store: StoreContract) -> str:
    """A run, created, with a small plan."""
    await store.create_run(RunRecord("run-1", "nightly", created_at=T0), {"root": "chain"})
    return "run-1"


def failed_job(failed_id: str, failed_at: float) -> FailedJob:
    return FailedJob(
        id=failed_id,
        job="myapp.jobs.Import",
        queue="default",
        payload={"path": "rows.csv", "token": "***"},
        exception="ValueError",
        message="bad row",
        traceback="Traceback ...",
        attempts=3,
        failed_at=failed_at,
        run_id="run-1",
        step="import",
        settings={"max_retries": 2},
    )


# Runs -------------------------------------------------------------------------------


async def test_store_satisfies_the_contract(store: StoreContract) -> None:
    # Given a driver / Then it is a StoreContract with a LockContract of its own
    assert isinstance(store, StoreContract)
    assert isinstance(store.lock(), LockContract)


async def test_created_run_is_returned_with_its_plan(store: StoreContract) -> None:
    # Given a run created with a plan
    record = RunRecord("run-1", "nightly", created_at=T0, source="pipeline.yaml")
    await store.create_run(record, {"root": {"chain": ["a", "b"]}, "n": 1.5})
    # When it is read back
    loaded = await store.get_run("run-1")
    plan = await store.load_plan("run-1")
    # Then record and plan are what was stored
    assert loaded == record
    assert plan == {"root": {"chain": ["a", "b"]}, "n": 1.5}


async def test_a_run_is_created_only_if_its_id_is_new(store: StoreContract) -> None:
    # Given a run created, with a step recorded
    first = RunRecord("tick-run", "nightly", created_at=T0, trigger="nightly")
    assert await store.create_run(first, {"n": 1}) is True
    await store.claim_step("tick-run", "a", at=T0)
    # When a run with the same id is created again
    again = RunRecord("tick-run", "other", created_at=T0 + 5)
    created = await store.create_run(again, {"n": 2})
    # Then nothing is written: the first run, its plan and its step stay
    assert created is False
    assert await store.get_run("tick-run") == first
    assert await store.load_plan("tick-run") == {"n": 1}
    assert list(await store.get_steps("tick-run")) == ["a"]


async def test_racing_creates_of_one_run_id_make_one_run(store: StoreContract) -> None:
    # Given ten schedulers starting the same tick's run at once
    records = [RunRecord("tick-run", f"p{n}", created_at=T0 + n) for n in range(10)]
    # When they all create it
    created = await asyncio.gather(*(store.create_run(r, {"n": i}) for i, r in enumerate(records)))
    # Then exactly one did, and the store holds its record and plan
    assert created.count(True) == 1
    winner = created.index(True)
    assert await store.get_run("tick-run") == records[winner]
    assert await store.load_plan("tick-run") == {"n": winner}
    assert [r.run_id for r in await store.list_runs()] == ["tick-run"]


async def test_unknown_run_is_none_and_has_no_plan(store: StoreContract) -> None:
    # Given an empty store / When an unknown run is read / Then None, and no plan
    assert await store.get_run("nope") is None
    with pytest.raises(RunNotFoundError) as caught:
        await store.load_plan("nope")
    assert caught.value.run_id == "nope"


async def test_list_runs_returns_most_recent_first_up_to_limit(store: StoreContract) -> None:
    # Given three runs created at different times, not in time order
    for run_id, created in (("b", T0 + 2), ("a", T0 + 1), ("c", T0 + 3)):
        await store.create_run(RunRecord(run_id, "p", created_at=created), {})
    # When the two most recent are listed
    listed = await store.list_runs(limit=2)
    # Then they come newest first
    assert [r.run_id for r in listed] == ["c", "b"]


PREFIXED = ("abc123", "abc999", "abd000", "xabc")
LITERAL = ("a%b", "a_b", "a*b", "a[b]", "a?b", "a\\b", "axb", "a]b")
"""Ids holding every character that SQL LIKE, GLOB or Redis MATCH would read as a pattern."""


async def test_find_run_ids_returns_the_runs_starting_with_a_prefix(store: StoreContract) -> None:
    # Given four runs, two of them sharing a prefix
    for run_id in PREFIXED:
        await store.create_run(RunRecord(run_id, "p", created_at=T0), {})
    # When runs are looked up by prefixes / Then those starting with it, in text order
    assert await store.find_run_ids("abc", 10) == ["abc123", "abc999"]
    assert await store.find_run_ids("abc1", 10) == ["abc123"]
    assert await store.find_run_ids("abc123", 10) == ["abc123"]
    assert await store.find_run_ids("ab", 2) == ["abc123", "abc999"]
    assert await store.find_run_ids("zz", 10) == []


async def test_find_run_ids_takes_pattern_characters_literally(store: StoreContract) -> None:
    # Given runs whose ids hold pattern characters
    for run_id in LITERAL:
        await store.create_run(RunRecord(run_id, "p", created_at=T0), {})
    # When each is looked up by its first two characters / Then only itself matches
    for run_id in LITERAL:
        assert await store.find_run_ids(run_id[:2], 10) == [run_id]
    # And a pattern alone matches nothing
    for pattern in ("%", "_", "*", "[", "?", "\\"):
        assert await store.find_run_ids(pattern, 10) == []


def counted_plan(batch: str) -> dict[str, Any]:
    """A stored plan whose root is a batch (its counters live in the store)."""
    return {"root": {"kind": "batch", "key": batch, "members": []}}


async def make_run(
    store: StoreContract, run_id: str, status: str, *, created: float, finished: float = 0.0
) -> None:
    """A run with a step, batch counters and an owner lease, ended as ``status`` at ``finished``."""
    await store.create_run(RunRecord(run_id, "p", created_at=created), counted_plan("b"))
    await store.finish_step(run_id, "s", "succeeded", attempts=1, at=created, batch="b")
    await store.take_run_owner(run_id, owner(f"{run_id}-owner", created, ttl=1e9))
    if status != "running":
        await store.set_run_status(run_id, status, finished)  # type: ignore[arg-type]


async def test_prune_runs_deletes_runs_that_ended_before_the_cutoff(store: StoreContract) -> None:
    # Given runs that ended long ago, one that ended recently, a running and an interrupted one
    await make_run(store, "old-ok", "succeeded", created=T0, finished=T0 + 1)
    await make_run(store, "old-failed", "failed", created=T0, finished=T0 + 2)
    await make_run(store, "new-ok", "succeeded", created=T0, finished=T0 + 100)
    await make_run(store, "running", "running", created=T0)
    await make_run(store, "stopped", "interrupted", created=T0, finished=T0 + 1)
    await store.add_failed(failed_job("f1", T0 + 1))  # of run-1: failed jobs stay

    # When runs that ended before T0 + 50 are pruned
    pruned = await store.prune_runs(T0 + 50)

    # Then the two old ended runs are gone with everything kept for them
    assert sorted(pruned) == ["old-failed", "old-ok"]
    for run_id in pruned:
        assert await store.get_run(run_id) is None
        with pytest.raises(RunNotFoundError):
            await store.load_plan(run_id)
        with pytest.raises(RunNotFoundError):
            await store.get_steps(run_id)
        assert await store.batch_counters(run_id, "b") == BatchCounters()
        assert await store.get_run_owner(run_id, T0) is None
    assert await store.find_run_ids("old", 10) == []
    # And the others, and the failed jobs, are untouched
    listed = {run.run_id for run in await store.list_runs(10)}
    assert listed == {"new-ok", "running", "stopped"}
    assert (await store.batch_counters("new-ok", "b")).done == 1
    assert [f.id for f in await store.list_failed()] == ["f1"]
    # And pruning again finds nothing more
    assert await store.prune_runs(T0 + 50) == []


async def test_prune_runs_deletes_interrupted_runs_only_when_asked(store: StoreContract) -> None:
    # Given an interrupted and a running run, both started long ago
    await make_run(store, "stopped", "interrupted", created=T0, finished=T0 + 1)
    await make_run(store, "running", "running", created=T0)
    # When pruned without, then with interrupted runs
    without = await store.prune_runs(T0 + 50)
    with_interrupted = await store.prune_runs(T0 + 50, interrupted=True)
    # Then the interrupted run goes the second time only; a running run never does
    assert (without, with_interrupted) == ([], ["stopped"])
    assert [run.run_id for run in await store.list_runs(10)] == ["running"]


async def test_final_run_status_is_set_once(store: StoreContract, run: str) -> None:
    # Given a running run that succeeded
    assert await store.set_run_status(run, "succeeded", at=T0 + 5) is True
    # When something later tries to mark it failed
    changed = await store.set_run_status(run, "failed", at=T0 + 9)
    # Then nothing changes
    record = await store.get_run(run)
    assert changed is False
    assert record is not None
    assert (record.status, record.finished_at) == ("succeeded", T0 + 5)


async def test_interrupted_run_may_run_again(store: StoreContract, run: str) -> None:
    # Given an interrupted run
    assert await store.set_run_status(run, "interrupted", at=T0 + 1) is True
    # When it is resumed
    resumed = await store.set_run_status(run, "running", at=T0 + 2)
    # Then it is running and not finished
    record = await store.get_run(run)
    assert resumed is True
    assert record is not None
    assert (record.status, record.finished_at) == ("running", None)


async def test_run_status_of_unknown_run_is_an_error(store: StoreContract) -> None:
    # Given no run / When its status is set / Then RunNotFoundError
    with pytest.raises(RunNotFoundError):
        await store.set_run_status("nope", "failed", at=T0)


# Steps ------------------------------------------------------------------------------


async def test_claim_step_succeeds_once(store: StoreContract, run: str) -> None:
    # Given a step nobody touched
    # When two callers claim it
    first = await store.claim_step(run, "import", at=T0)
    second = await store.claim_step(run, "import", at=T0 + 1)
    # Then only the first wins, and the step is queued since the first claim
    steps = await store.get_steps(run)
    assert (first, second) == (True, False)
    assert steps["import"].state == "queued"
    assert steps["import"].started_at == T0


async def test_concurrent_claims_have_one_winner(store: StoreContract, run: str) -> None:
    # Given 20 callers racing for one step
    results = await asyncio.gather(*(store.claim_step(run, "s", at=T0) for _ in range(20)))
    # Then exactly one claimed it
    assert results.count(True) == 1


async def test_update_step_records_progress(store: StoreContract, run: str) -> None:
    # Given a claimed step that failed once
    await store.claim_step(run, "s", at=T0)
    await store.update_step(run, "s", "retrying", attempts=1, error="boom", at=T0 + 1)
    # When it runs again without a new error
    await store.update_step(run, "s", "running", attempts=2, at=T0 + 2)
    # Then state and attempts move on, and the last error is kept
    record = (await store.get_steps(run, ["s"]))["s"]
    assert (record.state, record.attempts, record.error) == ("running", 2, "boom")
    assert record.started_at == T0


async def test_update_step_never_overwrites_a_final_state(store: StoreContract, run: str) -> None:
    # Given a step that succeeded
    await store.finish_step(run, "s", "succeeded", attempts=1, at=T0)
    # When a late update arrives
    await store.update_step(run, "s", "running", attempts=5, at=T0 + 1)
    # Then the step is still succeeded
    record = (await store.get_steps(run))["s"]
    assert (record.state, record.attempts) == ("succeeded", 1)


async def test_finish_step_is_idempotent(store: StoreContract, run: str) -> None:
    # Given a batch member that finished
    first = await store.finish_step(run, "m0", "succeeded", attempts=1, at=T0, batch="b")
    # When the same finish is delivered again
    again = await store.finish_step(run, "m0", "failed", attempts=2, at=T0 + 1, batch="b")
    # Then the repeat is refused and counted nowhere
    assert first == BatchCounters(done=1)
    assert again is False
    assert await store.batch_counters(run, "b") == BatchCounters(done=1)
    assert (await store.get_steps(run))["m0"].state == "succeeded"


async def test_finish_step_counts_failures(store: StoreContract, run: str) -> None:
    # Given two batch members, one failing
    await store.finish_step(run, "m0", "succeeded", at=T0, batch="b")
    # When the other fails
    counters = await store.finish_step(run, "m1", "failed", error="boom", at=T0, batch="b")
    # Then both are done and one failed
    assert counters == BatchCounters(done=2, failed=1)
    assert (await store.get_steps(run))["m1"].error == "boom"


async def test_finish_step_outside_a_batch_returns_true(store: StoreContract, run: str) -> None:
    # Given a queued step / When it finishes with no batch / Then True, and it is final
    await store.claim_step(run, "s", at=T0)
    assert await store.finish_step(run, "s", "succeeded", attempts=1, at=T0 + 3) is True
    record = (await store.get_steps(run))["s"]
    assert (record.state, record.started_at, record.finished_at) == ("succeeded", T0, T0 + 3)


async def test_finish_and_claim_finishes_a_step_and_claims_the_next(
    store: StoreContract, run: str
) -> None:
    # Given a running chain step
    await store.claim_step(run, "s0", at=T0)
    # When it finishes and claims the next one, twice (a redelivered finish)
    first = await store.finish_and_claim(run, "s0", "succeeded", "s1", attempts=1, at=T0 + 1)
    again = await store.finish_and_claim(run, "s0", "failed", "s1", attempts=2, at=T0 + 2)
    # Then the first did both, the repeat nothing: the step keeps its first outcome
    assert (first, again) == ((True, True), (False, False))
    steps = await store.get_steps(run)
    assert (steps["s0"].state, steps["s0"].started_at, steps["s0"].finished_at) == (
        "succeeded",
        T0,
        T0 + 1,
    )
    assert (steps["s1"].state, steps["s1"].started_at) == ("queued", T0 + 1)


async def test_finish_and_claim_leaves_a_claimed_step_alone(store: StoreContract, run: str) -> None:
    # Given a chain step whose next step was claimed already (a resume did)
    await store.claim_step(run, "s1", at=T0)
    # When the step finishes and claims it / Then it finished, but claimed nothing
    assert await store.finish_and_claim(run, "s0", "duplicate", "s1", at=T0 + 1) == (True, False)
    assert (await store.get_steps(run))["s1"].started_at == T0


async def test_finish_and_claim_of_an_unknown_run_is_an_error(store: StoreContract) -> None:
    with pytest.raises(RunNotFoundError):
        await store.finish_and_claim("nope", "s0", "succeeded", "s1", at=T0)


async def test_mark_steps_leaves_final_steps_alone(store: StoreContract, run: str) -> None:
    # Given one succeeded step, one running and one never touched
    await store.finish_step(run, "done", "succeeded", attempts=1, at=T0)
    await store.update_step(run, "busy", "running", attempts=1, at=T0)
    # When all three are marked skipped
    await store.mark_steps(run, ["done", "busy", "later"], "skipped", at=T0 + 1)
    # Then only the unfinished ones are skipped
    steps = await store.get_steps(run)
    assert {name: record.state for name, record in steps.items()} == {
        "done": "succeeded",
        "busy": "skipped",
        "later": "skipped",
    }
    assert steps["busy"].attempts == 1


async def test_get_steps_lists_only_touched_steps(store: StoreContract, run: str) -> None:
    # Given one claimed step / When it and an untouched one are asked for
    await store.claim_step(run, "a", at=T0)
    steps = await store.get_steps(run, ["a", "never"])
    # Then only the touched one is there
    assert list(steps) == ["a"]


async def test_fan_out_members_keep_every_field_through_their_life(
    store: StoreContract, run: str
) -> None:
    # Given fan-out members: two finished (one failed), one retrying, one never touched
    await store.finish_step(run, "f[0]", "succeeded", attempts=1, at=T0, batch="b")
    await store.update_step(run, "f[1]", "retrying", attempts=1, error="slow", at=T0)
    await store.finish_step(run, "f[2]", "failed", attempts=3, error="boom", at=T0 + 1, batch="b")
    await store.finish_step(run, "f[10]", "succeeded", attempts=2, at=T0 + 2, batch="b")
    # When they are read back, the failed one settled by a retry, another run reopened
    steps = await store.get_steps(run)
    assert await store.settle_retried_step(run, "f[2]", attempts=1, at=T0 + 5)
    settled = (await store.get_steps(run, ["f[2]", "f[3]"]))["f[2]"]
    # Then every field is as written, and untouched members are absent
    assert sorted(steps) == ["f[0]", "f[10]", "f[1]", "f[2]"]
    assert steps["f[0]"] == StepRecord("f[0]", "succeeded", 1, None, T0, T0)
    assert steps["f[1]"] == StepRecord("f[1]", "retrying", 1, "slow", T0, None)
    assert steps["f[2]"] == StepRecord("f[2]", "failed", 3, "boom", T0 + 1, T0 + 1)
    assert steps["f[10]"].attempts == 2
    assert "f[3]" not in steps
    assert steps.get("f[5]") is None
    assert settled == StepRecord("f[2]", "succeeded", 1, None, T0 + 1, T0 + 5)
    assert await store.finish_step(run, "f[0]", "failed", at=T0 + 9, batch="b") is False


async def test_step_calls_on_an_unknown_run_are_errors(store: StoreContract) -> None:
    # Given no run / When its steps are used / Then RunNotFoundError, nothing created
    with pytest.raises(RunNotFoundError):
        await store.claim_step("nope", "s", at=T0)
    with pytest.raises(RunNotFoundError):
        await store.finish_step("nope", "s", "succeeded", at=T0, batch="b")
    with pytest.raises(RunNotFoundError):
        await store.get_steps("nope")
    assert await store.batch_counters("nope", "b") == BatchCounters()


# Batches ----------------------------------------------------------------------------


async def test_batch_counters_start_at_zero(store: StoreContract, run: str) -> None:
    # Given a batch nothing happened to / Then its counters are zero
    assert await store.batch_counters(run, "b") == BatchCounters()


async def test_claim_members_respects_the_concurrency_limit(store: StoreContract, run: str) -> None:
    # Given a batch of 5 with at most 2 running, 2 already claimed
    assert await store.claim_members(run, "b", total=5, limit=2) == range(0, 2)
    # When one more is asked for before any finished
    full = await store.claim_members(run, "b", total=5, limit=2)
    # Then none is claimed; once one finished, exactly one more is
    assert full == range(0)
    await store.finish_step(run, "m0", "succeeded", at=T0, batch="b")
    assert await store.claim_members(run, "b", total=5, limit=2) == range(2, 3)


async def test_claim_members_stops_at_the_total(store: StoreContract, run: str) -> None:
    # Given every member of a batch of 3 claimed
    assert await store.claim_members(run, "b", total=3, limit=None) == range(0, 3)
    # When more are asked for / Then there are none
    assert await store.claim_members(run, "b", total=3, limit=None) == range(0)


async def test_claim_members_stops_after_cancel(store: StoreContract, run: str) -> None:
    # Given a cancelled batch with members left
    await store.claim_members(run, "b", total=5, limit=1)
    await store.cancel_members(run, "b", total=5)
    # When a member finishes and more are asked for
    await store.finish_step(run, "m0", "failed", at=T0, batch="b")
    # Then none is claimed
    assert await store.claim_members(run, "b", total=5, limit=1) == range(0)


async def test_cancel_members_cancels_the_unclaimed_once(store: StoreContract, run: str) -> None:
    # Given a batch of 5 with 2 members started
    await store.claim_members(run, "b", total=5, limit=2)
    # When it is cancelled twice
    first = await store.cancel_members(run, "b", total=5)
    second = await store.cancel_members(run, "b", total=5)
    # Then the 3 unstarted members are cancelled, by the first call only
    assert first == BatchCounters(claimed=5, cancelled=3, cancel_flag=True)
    assert second is None
    assert await store.batch_counters(run, "b") == first


async def test_concurrent_finishes_count_every_member_once(store: StoreContract, run: str) -> None:
    # Given 50 members of one batch, all claimed
    await store.claim_members(run, "b", total=50, limit=None)
    # When they all finish at once
    results = await asyncio.gather(
        *(store.finish_step(run, f"m{i}", "succeeded", at=T0, batch="b") for i in range(50))
    )
    # Then all are counted, and exactly one caller saw the batch complete
    assert await store.batch_counters(run, "b") == BatchCounters(claimed=50, done=50)
    assert [isinstance(r, BatchCounters) and r.done == 50 for r in results].count(True) == 1


async def test_a_failed_step_whose_retry_succeeded_is_settled_once(
    store: StoreContract, run: str
) -> None:
    # Given a failed step and a succeeded one
    await store.finish_step(run, "bad", "failed", attempts=3, error="boom", at=T0)
    await store.finish_step(run, "good", "succeeded", attempts=1, at=T0)
    # When the failed one's retry succeeded (settled twice), and the good one is "settled"
    first = await store.settle_retried_step(run, "bad", attempts=1, at=T0 + 60)
    again = await store.settle_retried_step(run, "bad", attempts=1, at=T0 + 61)
    good = await store.settle_retried_step(run, "good", attempts=9, at=T0 + 62)
    # Then only the failed step changed, once: succeeded, its error gone
    steps = await store.get_steps(run)
    assert (first, again, good) == (True, False, False)
    assert steps["bad"].state == "succeeded"
    assert (steps["bad"].attempts, steps["bad"].error) == (1, None)
    assert (steps["bad"].started_at, steps["bad"].finished_at) == (T0, T0 + 60)
    assert steps["good"].attempts == 1
    assert await store.settle_retried_step(run, "never-ran", attempts=1, at=T0) is False


async def test_a_failed_run_is_reopened_once_with_its_steps_forgotten(
    store: StoreContract, run: str
) -> None:
    # Given a failed run: one step succeeded, one failed, one was skipped; a batch counted
    await store.finish_step(run, "good", "succeeded", attempts=1, at=T0)
    await store.finish_step(run, "bad", "failed", attempts=1, error="boom", at=T0)
    await store.mark_steps(run, ["later"], "skipped", at=T0)
    await store.claim_members(run, "b", 4, None)
    await store.set_run_status(run, "failed", T0 + 1)
    counters = {"b": BatchCounters(claimed=2, done=1)}
    # When it is reopened twice, concurrently
    results = await asyncio.gather(
        store.reopen_run(run, ["bad", "later"], counters, T0 + 2),
        store.reopen_run(run, ["bad", "later"], counters, T0 + 2),
    )
    # Then one caller reopened it: running again, the steps forgotten, the counters set
    assert sorted(results) == [False, True]
    record = await store.get_run(run)
    assert record is not None
    assert (record.status, record.finished_at) == ("running", None)
    assert list(await store.get_steps(run)) == ["good"]
    assert await store.batch_counters(run, "b") == BatchCounters(claimed=2, done=1)


async def test_only_a_failed_run_is_reopened(store: StoreContract, run: str) -> None:
    # Given a running run, and a succeeded one
    await store.finish_step(run, "bad", "failed", at=T0)
    other = "run-2"
    await store.create_run(RunRecord(other, "nightly", created_at=T0), {"root": "chain"})
    await store.set_run_status(other, "succeeded", T0)
    # When each is reopened / Then neither changes
    assert await store.reopen_run(run, ["bad"], {}, T0) is False
    assert await store.reopen_run(other, [], {}, T0) is False
    assert list(await store.get_steps(run)) == ["bad"]
    with pytest.raises(RunNotFoundError):
        await store.reopen_run("no-such-run", [], {}, T0)


# Run owners -------------------------------------------------------------------------


def owner(owner_id: str, now: float, ttl: float = 10.0, *, pid: int = 4242) -> RunOwner:
    return RunOwner(owner_id, f"host-{owner_id}", pid, T0, now, now + ttl)


async def test_a_free_run_is_taken_and_its_owner_is_recorded(store: StoreContract) -> None:
    # Given a run nobody owns / When an owner takes it
    holder = await store.take_run_owner("r", owner("a", T0))
    # Then it holds it, and the store tells who, while the lease lasts
    assert holder == owner("a", T0)
    assert await store.get_run_owner("r", at=T0 + 9) == owner("a", T0)
    assert await store.get_run_owner("other", at=T0) is None


async def test_a_live_owner_is_not_displaced(store: StoreContract) -> None:
    # Given a run owned by a
    await store.take_run_owner("r", owner("a", T0))
    # When b tries to take it while a's lease lasts
    holder = await store.take_run_owner("r", owner("b", T0 + 5))
    # Then a keeps it, unchanged, and b is told so
    assert holder == owner("a", T0)
    assert await store.get_run_owner("r", at=T0 + 5) == owner("a", T0)


async def test_renewing_extends_the_lease(store: StoreContract) -> None:
    # Given a run owned by a, renewed late in its lease
    await store.take_run_owner("r", owner("a", T0))
    renewed = await store.take_run_owner("r", owner("a", T0 + 8))
    # When b tries after the first lease would have ended
    holder = await store.take_run_owner("r", owner("b", T0 + 12))
    # Then a still holds it, as last seen at its renewal
    assert renewed == holder == owner("a", T0 + 8)


async def test_an_expired_lease_is_taken_over(store: StoreContract) -> None:
    # Given a's lease, not renewed
    await store.take_run_owner("r", owner("a", T0))
    # When b takes the run once the lease has run out
    holder = await store.take_run_owner("r", owner("b", T0 + 10))
    # Then b holds it, a's renewal is refused, and nobody is the owner at the old time
    assert holder == owner("b", T0 + 10)
    assert await store.take_run_owner("r", owner("a", T0 + 11)) == owner("b", T0 + 10)
    assert await store.get_run_owner("r", at=T0 + 20) is None


async def test_a_live_owner_named_as_replaced_is_taken_over(store: StoreContract) -> None:
    # Given a's live lease
    await store.take_run_owner("r", owner("a", T0))
    # When b forces it out naming another owner, then naming a
    wrong = await store.take_run_owner("r", owner("b", T0 + 1), replacing="someone-else")
    forced = await store.take_run_owner("r", owner("b", T0 + 1), replacing="a")
    # Then only naming a works, and a's next renewal finds b
    assert wrong == owner("a", T0)
    assert forced == owner("b", T0 + 1)
    assert await store.take_run_owner("r", owner("a", T0 + 2)) == owner("b", T0 + 1)


async def test_only_the_owner_releases_the_lease(store: StoreContract) -> None:
    # Given a's lease
    await store.take_run_owner("r", owner("a", T0))
    # When b, then a release it
    by_b = await store.release_run_owner("r", "b")
    by_a = await store.release_run_owner("r", "a")
    # Then only a's release counted, and b may take the run at once
    assert (by_b, by_a) == (False, True)
    assert await store.get_run_owner("r", at=T0) is None
    assert await store.take_run_owner("r", owner("b", T0 + 1)) == owner("b", T0 + 1)
    assert await store.release_run_owner("r", "a") is False


async def test_concurrent_takers_have_one_owner(store: StoreContract) -> None:
    # Given 20 processes racing for a free run
    takers = [owner(f"o{i}", T0) for i in range(20)]
    holders = await asyncio.gather(*(store.take_run_owner("r", o) for o in takers))
    # Then they all agree on one owner
    assert len({h.owner_id for h in holders}) == 1
    assert await store.get_run_owner("r", at=T0) == holders[0]


async def test_a_lease_left_alone_disappears_when_it_expires(store: StoreContract) -> None:
    # Given a lease of 0.2 s in real time, never renewed
    now = time.time()
    await store.take_run_owner("r", owner("a", now, ttl=0.2))
    # When its time has passed
    await asyncio.sleep(0.3)
    # Then there is no owner (in Redis, the key itself expired)
    later = time.time()
    assert await store.get_run_owner("r", at=later) is None
    assert await store.take_run_owner("r", owner("b", later)) == owner("b", later)


# Failed jobs ------------------------------------------------------------------------


async def test_failed_job_round_trips(store: StoreContract) -> None:
    # Given a recorded failure / When it is read back / Then every field is kept
    record = failed_job("f1", T0)
    await store.add_failed(record)
    assert await store.get_failed("f1") == record
    assert await store.get_failed("nope") is None


async def test_list_failed_is_most_recent_first(store: StoreContract) -> None:
    # Given three failures recorded out of time order
    for failed_id, at in (("f2", T0 + 2), ("f1", T0 + 1), ("f3", T0 + 3)):
        await store.add_failed(failed_job(failed_id, at))
    # When they are listed, all and the newest two
    everything = await store.list_failed()
    newest = await store.list_failed(limit=2)
    # Then newest come first
    assert [f.id for f in everything] == ["f3", "f2", "f1"]
    assert [f.id for f in newest] == ["f3", "f2"]


async def test_forget_failed_deletes_once(store: StoreContract) -> None:
    # Given a recorded failure / When it is forgotten twice
    await store.add_failed(failed_job("f1", T0))
    first = await store.forget_failed("f1")
    second = await store.forget_failed("f1")
    # Then it existed the first time only, and is gone
    assert (first, second) == (True, False)
    assert await store.list_failed() == []


async def test_flush_failed_deletes_all_and_counts_them(store: StoreContract) -> None:
    # Given two failures / When flushed / Then 2 are reported and none remain
    await store.add_failed(failed_job("f1", T0))
    await store.add_failed(failed_job("f2", T0 + 1))
    assert await store.flush_failed() == 2
    assert await store.list_failed() == []
    assert await store.flush_failed() == 0


def failure(failed_id: str, run_id: str, job: str, at: float) -> FailedJob:
    """A failed job of ``run_id`` that ran ``job``."""
    return replace(failed_job(failed_id, at), run_id=run_id, job=job)


async def test_list_failed_of_one_run(store: StoreContract) -> None:
    # Given failures of two runs
    await store.add_failed(failure("f1", "run-1", "a:A", T0))
    await store.add_failed(failure("f2", "run-2", "a:A", T0 + 1))
    await store.add_failed(failure("f3", "run-1", "a:A", T0 + 2))
    # When the failures of one run are listed / Then only its own, newest first
    assert [f.id for f in await store.list_failed(run_id="run-1")] == ["f3", "f1"]
    assert [f.id for f in await store.list_failed(1, run_id="run-1")] == ["f3"]
    assert await store.list_failed(run_id="nope") == []


async def test_flush_failed_deletes_only_what_every_filter_matches(store: StoreContract) -> None:
    # Given failures of two runs and two jobs, at three times
    await store.add_failed(failure("f1", "run-1", "a:A", T0))
    await store.add_failed(failure("f2", "run-2", "a:A", T0 + 10))
    await store.add_failed(failure("f3", "run-1", "a:B", T0 + 20))
    # When flushed by time (strictly before), by run and time, by job, by all three
    at_t0 = await store.flush_failed(before=T0)
    old_of_run_1 = await store.flush_failed(before=T0 + 15, run_id="run-1")
    of_job_b = await store.flush_failed(job="a:B")
    rest = await store.flush_failed(before=T0 + 100, run_id="run-2", job="a:A")
    # Then each deleted what it names, once
    assert (at_t0, old_of_run_1, of_job_b, rest) == (0, 1, 1, 1)
    assert await store.list_failed() == []


async def test_find_failed_ids_takes_prefixes_literally(store: StoreContract) -> None:
    # Given failed jobs with ids sharing a prefix and ids holding pattern characters
    for failed_id in (*PREFIXED, *LITERAL):
        await store.add_failed(failed_job(failed_id, T0))
    # When looked up by prefix / Then only the ids starting with it, in text order
    assert await store.find_failed_ids("abc", 10) == ["abc123", "abc999"]
    assert await store.find_failed_ids("abc", 1) == ["abc123"]
    for failed_id in LITERAL:
        assert await store.find_failed_ids(failed_id[:2], 10) == [failed_id]
    for pattern in ("%", "_", "*", "[", "?", "\\"):
        assert await store.find_failed_ids(pattern, 10) == []


# Claims on failed jobs --------------------------------------------------------------


async def test_concurrent_claims_of_a_failed_job_have_one_winner(store: StoreContract) -> None:
    # Given a failed job and 20 retriers claiming it at once
    await store.add_failed(failed_job("f1", T0))
    claims = await asyncio.gather(*(claim_failed(store, "f1", f"r{i}") for i in range(20)))
    # Then exactly one got the record
    won = [claim for claim in claims if claim is not None]
    assert won == [failed_job("f1", T0)]


async def test_a_claim_of_a_crashed_retrier_expires(store: StoreContract) -> None:
    # Given a failed job claimed for 0.2 s by a retrier that then died
    await store.add_failed(failed_job("f1", T0))
    assert await claim_failed(store, "f1", "dead", seconds=0.2) is not None
    # When another claims it, at once and after the claim ran out
    at_once = await claim_failed(store, "f1", "alive")
    await asyncio.sleep(0.3)
    later = await claim_failed(store, "f1", "alive")
    # Then it is refused while the claim lasts, and wins after
    assert at_once is None
    assert later == failed_job("f1", T0)


async def test_a_retried_record_is_not_claimed_again(store: StoreContract) -> None:
    # Given a failed job retried (removed) under a claim that was then released
    await store.add_failed(failed_job("f1", T0))

    async def retry(record: FailedJob) -> str:
        await store.forget_failed(record.id)
        return "succeeded"

    first = await retry_claimed(store, "f1", retry)
    # When a slower retrier, which listed it before, claims it now
    second = await retry_claimed(store, "f1", retry)
    # Then only the first ran it
    assert (first, second) == ("succeeded", None)


async def test_a_claim_whose_record_cannot_be_read_is_let_go(
    store: StoreContract, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a failed job, and a store that fails to read it once the claim is taken
    await store.add_failed(failed_job("f1", T0))
    real_get_failed = store.get_failed

    async def failing(failed_id: str) -> FailedJob | None:
        raise BackendError("test", "read failed")

    monkeypatch.setattr(store, "get_failed", failing)
    with pytest.raises(BackendError):
        await claim_failed(store, "f1", "first")
    # When the store answers again and another retrier claims the job at once
    monkeypatch.setattr(store, "get_failed", real_get_failed)
    # Then it wins: the failed claim was let go, not held for its full 30 s
    assert await claim_failed(store, "f1", "second") == failed_job("f1", T0)


async def test_concurrent_retries_run_each_record_once(store: StoreContract) -> None:
    # Given 20 failed jobs, and 3 retriers that each listed all of them
    for i in range(20):
        await store.add_failed(failed_job(f"f{i}", T0 + i))
    listed = [r.id for r in await store.list_failed()]
    ran: list[str] = []

    async def retry(record: FailedJob) -> str:
        ran.append(record.id)
        await asyncio.sleep(0.001)  # the job's work: others try meanwhile
        await store.forget_failed(record.id)
        return "succeeded"

    async def retry_all() -> None:
        for failed_id in listed:
            await retry_claimed(store, failed_id, retry)

    # When they all retry everything at once
    await asyncio.gather(retry_all(), retry_all(), retry_all())
    # Then every record ran exactly once
    assert sorted(ran) == sorted(listed)
    assert await store.list_failed() == []


def _claim_in_thread(path: Path, failed_id: str, owner: str) -> bool:
    async def claim() -> bool:
        store = SqliteStore(path)
        try:
            return await claim_failed(store, failed_id, owner) is not None
        finally:
            await store.close()

    return asyncio.run(claim())


async def test_sqlite_threads_with_their_own_connections_claim_once(tmp_path: Path) -> None:
    # Given a failed job in a sqlite file
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    await store.add_failed(failed_job("f1", T0))
    await store.close()
    # When 8 threads, each with its own connection, claim it at once
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda i: _claim_in_thread(path, "f1", f"t{i}"), range(8)))
    # Then exactly one won
    assert wins.count(True) == 1


def _take_in_thread(path: Path, taker: RunOwner) -> str:
    async def take() -> str:
        store = SqliteStore(path)
        try:
            return (await store.take_run_owner("r", taker)).owner_id
        finally:
            await store.close()

    return asyncio.run(take())


async def test_sqlite_threads_with_their_own_connections_agree_on_one_owner(
    tmp_path: Path,
) -> None:
    # Given a sqlite file, and 8 threads with connections of their own
    path = tmp_path / "state.db"
    await SqliteStore(path).close()
    takers = [owner(f"t{i}", T0) for i in range(8)]
    # When they all take the run at once
    with ThreadPoolExecutor(8) as pool:
        holders = list(pool.map(lambda taker: _take_in_thread(path, taker), takers))
    # Then all name the same owner
    assert len(set(holders)) == 1


# Rate limits ------------------------------------------------------------------------


async def test_rate_limit_allows_up_to_max_then_tells_when(store: StoreContract) -> None:
    # Given a window of 3 hits per 10 seconds, filled at T0, T0+1, T0+2
    for offset in (0, 1, 2):
        assert await store.hit_rate_limit("api", 3, 10.0, now=T0 + offset) is None
    # When a fourth hit comes / Then it is refused until the oldest hit leaves
    assert await store.hit_rate_limit("api", 3, 10.0, now=T0 + 3) == T0 + 10.0
    assert await store.hit_rate_limit("api", 3, 10.0, now=T0 + 9.5) == T0 + 10.0


async def test_rate_limit_allows_again_once_the_oldest_left(store: StoreContract) -> None:
    # Given a full window of 2 hits per 10 seconds
    await store.hit_rate_limit("api", 2, 10.0, now=T0)
    await store.hit_rate_limit("api", 2, 10.0, now=T0 + 1)
    free_at = await store.hit_rate_limit("api", 2, 10.0, now=T0 + 2)
    assert free_at is not None
    # When a hit comes at the time it was given / Then it is allowed, the next one not
    assert await store.hit_rate_limit("api", 2, 10.0, now=free_at) is None
    assert await store.hit_rate_limit("api", 2, 10.0, now=free_at) == T0 + 11.0


async def test_rate_limit_windows_are_per_key(store: StoreContract) -> None:
    # Given a full window for one key / When another key is hit / Then it is allowed
    await store.hit_rate_limit("a", 1, 10.0, now=T0)
    assert await store.hit_rate_limit("a", 1, 10.0, now=T0) == T0 + 10.0
    assert await store.hit_rate_limit("b", 1, 10.0, now=T0) is None


# Same answers as the reference ----------------------------------------------------

_STATES = ("queued", "running", "retrying", "succeeded", "failed", "skipped", "cancelled")


def _random_call(rng: random.Random, now: float) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """One store call with arguments drawn from small pools, so calls collide often."""
    # Member keys ("f[0]") too: a driver may keep finished fan-out members apart.
    steps = ["a", "b", "f[0]", "f[1]"]
    run, step, batch = rng.choice(["r1", "r2"]), rng.choice(steps), rng.choice("xy")
    at = now + rng.choice([0.0, 0.25])
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("create_run", (RunRecord(run, "p", created_at=now + rng.random()), {"p": run}), {}),
        ("set_run_status", (run, rng.choice(["running", "interrupted", "failed"]), at), {}),
        ("claim_step", (run, step, at), {}),
        ("update_step", (run, step, rng.choice(_STATES)), {"attempts": 1, "error": "e", "at": at}),
        ("finish_step", (run, step, rng.choice(_STATES)), {"at": at, "batch": batch}),
        ("mark_steps", (run, rng.choices(steps, k=2), "skipped", at), {}),
        ("settle_retried_step", (run, step), {"attempts": 1, "at": at}),
        ("get_steps", (run,), {}),
        ("claim_members", (run, batch, rng.randrange(1, 6), rng.choice([None, 1, 2])), {}),
        ("cancel_members", (run, batch, rng.randrange(1, 6)), {}),
        ("list_runs", (rng.choice([1, 20]),), {}),
        ("hit_rate_limit", (rng.choice("kl"), rng.choice([1, 2]), 1.5, now), {}),
        ("add_failed", (failed_job(rng.choice(["f1", "f2"]), now + rng.random()),), {}),
        ("forget_failed", (rng.choice(["f1", "f2"]),), {}),
        ("list_failed", (rng.choice([None, 1]),), {}),
    ]
    return rng.choice(calls)


async def _answer(store: StoreContract, call: tuple[str, tuple[Any, ...], dict[str, Any]]) -> Any:
    name, args, kwargs = call
    try:
        return await getattr(store, name)(*args, **kwargs)
    except RunNotFoundError as exc:
        return ("RunNotFoundError", exc.run_id)


@pytest.mark.parametrize("seed", range(8))
async def test_random_calls_get_the_answers_of_the_memory_store(
    store: StoreContract, seed: int
) -> None:
    # Given the reference store and a driver, both empty
    reference, rng, now = MemoryStore(), random.Random(seed), 0.0
    # When both get the same 300 random calls (times from 0, so zeros come up too)
    for _ in range(300):
        now += rng.choice([0.0, 0.5, 1.0])
        call = _random_call(rng, now)
        expected, actual = await _answer(reference, call), await _answer(store, call)
        # Then every answer is the same
        assert actual == expected, call


# Durable drivers --------------------------------------------------------------------


async def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    # Given a run with a finished step in a sqlite file that was closed
    path = tmp_path / "deep" / "dir" / "state.db"
    store = SqliteStore(path)
    await store.create_run(RunRecord("r", "p", created_at=T0), {"k": [1, 2]})
    await store.finish_step("r", "s", "succeeded", attempts=1, at=T0, batch="b")
    await store.close()
    # When the file is opened again
    reopened = SqliteStore(path)
    try:
        steps = await reopened.get_steps("r")
        plan = await reopened.load_plan("r")
        counters = await reopened.batch_counters("r", "b")
    finally:
        await reopened.close()
    # Then everything is there
    assert steps["s"].state == "succeeded"
    assert plan == {"k": [1, 2]}
    assert counters == BatchCounters(done=1)


async def test_sqlite_file_of_schema_version_1_is_migrated(tmp_path: Path) -> None:
    # Given a database written by a version that knew schema 1 only, with a run in it
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        for statement in sqlite_db._SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute("INSERT INTO runs VALUES ('r', 'p', 'running', ?, NULL, NULL, '{}')", (T0,))
    conn.close()
    # When this version opens it
    store = SqliteStore(path)
    try:
        taken = await store.take_run_owner("r", owner("a", T0))
        run = await store.get_run("r")
        claimed = await store.claim_tick(TickRecord("p/t", T0, T0, run_id="r"))
    finally:
        await store.close()
    # Then the run is still there (started by no trigger), the new tables work, and
    # the file says version 3
    assert run is not None
    assert (run.trigger, run.scheduled_at) == (None, None)
    assert taken == owner("a", T0)
    assert claimed
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    conn.close()
    assert version == sqlite_db.SCHEMA_VERSION == 3


async def test_sqlite_reader_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    # Given a store path whose directory and file do not exist
    path = tmp_path / "absent" / "state.db"
    # When a reader opens it and reads
    store = SqliteStore(path, create=False)
    try:
        runs = await store.list_runs()
        failed = await store.list_failed()
        run = await store.get_run("r")
    finally:
        await store.close()
    # Then the store is empty, and nothing was created
    assert (runs, failed, run) == ([], [], None)
    assert not (tmp_path / "absent").exists()


async def test_sqlite_reader_reads_an_existing_file(tmp_path: Path) -> None:
    # Given a store file with a run in it
    path = tmp_path / "state.db"
    writer = SqliteStore(path)
    await writer.create_run(RunRecord("r", "p", created_at=T0), {})
    await writer.close()
    # When a reader opens it / Then it sees the run
    reader = SqliteStore(path, create=False)
    try:
        assert [run.run_id for run in await reader.list_runs()] == ["r"]
    finally:
        await reader.close()


def test_sqlite_file_that_is_not_a_database_is_a_backend_error(tmp_path: Path) -> None:
    # Given a file that holds something else
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just some text" * 100)
    # When a store opens it / Then BackendError names the store
    with pytest.raises(BackendError) as caught:
        SqliteStore(path)
    assert caught.value.backend == f"sqlite:{path}"


def test_sqlite_path_that_is_a_directory_is_a_backend_error(tmp_path: Path) -> None:
    # Given a path that is a directory / When a store opens it / Then BackendError
    with pytest.raises(BackendError) as caught:
        SqliteStore(tmp_path)
    assert caught.value.backend == f"sqlite:{tmp_path}"


_HAMMER = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from arvel_flow.store.sqlite import SqliteStore

    async def main(path, total, me, other):
        store = SqliteStore(path)
        claimed, saw_last = [], 0
        # Start together, so the two really race for the same rows.
        open(me, "w").close()
        while not os.path.exists(other):
            time.sleep(0.001)
        try:
            while True:
                members = await store.claim_members("r", "b", total, 4)
                if not members:
                    if (await store.batch_counters("r", "b")).claimed >= total:
                        break
                    time.sleep(0.001)  # the other process holds the free slots
                for i in members:
                    claimed.append(i)
                    time.sleep(0.0002)  # the job's work, outside any transaction
                    state = "failed" if i % 7 == 0 else "succeeded"
                    counters = await store.finish_step("r", f"m{i}", state, at=1.0, batch="b")
                    saw_last += counters.done == total
        finally:
            await store.close()
        print(json.dumps({"claimed": claimed, "saw_last": saw_last}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    """
)


async def _run_hammer(path: Path, total: int, me: Path, other: Path) -> dict[str, Any]:
    worker = await asyncio.create_subprocess_exec(
        *[sys.executable, "-c", _HAMMER, str(path), str(total), str(me), str(other)],
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await worker.communicate()
    assert worker.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def _sqlite_counters(path: Path, run_id: str, batch: str) -> BatchCounters:
    store = SqliteStore(path)
    try:
        return await store.batch_counters(run_id, batch)
    finally:
        await store.close()


async def test_sqlite_two_processes_lose_no_counts(tmp_path: Path) -> None:
    # Given a run in a sqlite file and two worker processes sharing a batch of 400
    path, total = tmp_path / "state.db", 400
    store = SqliteStore(path)
    await store.create_run(RunRecord("r", "p", created_at=T0), {})
    await store.close()
    ready = tmp_path / "ready-0", tmp_path / "ready-1"
    # When both claim and finish members as fast as they can
    outputs = await asyncio.gather(
        _run_hammer(path, total, ready[0], ready[1]), _run_hammer(path, total, ready[1], ready[0])
    )
    # Then every member was claimed by exactly one, and counted exactly once
    claimed = sorted(i for out in outputs for i in out["claimed"])
    assert claimed == list(range(total))
    assert all(out["claimed"] for out in outputs), "both workers took part"
    expected = BatchCounters(claimed=total, done=total, failed=len(range(0, total, 7)))
    assert await _sqlite_counters(path, "r", "b") == expected
    assert sum(out["saw_last"] for out in outputs) == 1


@pytest.mark.redis
async def test_redis_windows_are_shared_by_separate_clients(
    redis_url: str, redis_prefix: str
) -> None:
    # Given two workers with clients of their own on one Redis
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    first, second = (RedisStore.from_client(c, prefix=redis_prefix) for c in clients)
    try:
        # When each takes one hit of a limit of 2
        assert await first.hit_rate_limit("api", 2, 10.0, now=T0) is None
        assert await second.hit_rate_limit("api", 2, 10.0, now=T0 + 1) is None
        # Then the window is full for both
        assert await first.hit_rate_limit("api", 2, 10.0, now=T0 + 2) == T0 + 10.0
        assert await second.hit_rate_limit("api", 2, 10.0, now=T0 + 2) == T0 + 10.0
    finally:
        for client in clients:
            await client.aclose()


async def test_unreachable_redis_is_a_backend_error_with_the_password_masked() -> None:
    # Given a store whose server does not exist (port 1 refuses connections)
    store = RedisStore("redis://worker:s3cret@127.0.0.1:1/0")
    # When it is used / Then BackendError names the server, never the password
    try:
        with pytest.raises(BackendError) as caught:
            await store.get_run("r")
    finally:
        await store.close()
    assert caught.value.backend == "redis://worker:***@127.0.0.1:1/0"
    assert "s3cret" not in str(caught.value)


# Opening stores ---------------------------------------------------------------------


async def test_open_store_picks_the_driver_from_the_url(tmp_path: Path) -> None:
    # Given one value per driver / When each is opened / Then the matching store
    opened = [
        open_store("memory"),
        open_store(f"sqlite:{tmp_path / 'state.db'}"),
        open_store("redis://127.0.0.1:6379/15"),
    ]
    try:
        assert [type(s) for s in opened] == [MemoryStore, SqliteStore, RedisStore]
    finally:
        for store in opened:
            await store.close()


@pytest.mark.parametrize(
    "url", ["postgres://u:hunter2@db/x", "sqlite:", "", "redis:/x", "redis://u:hunter2@h:port/0"]
)
def test_open_store_rejects_unknown_values_without_leaking_passwords(url: str) -> None:
    # Given a value naming no store / When opened / Then ConfigError, password hidden
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert "invalid" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:p@ss:w0rd@host/1", "rediss://user:***@host/1"),
        ("redis://user@host/0", "redis://user@host/0"),
        ("unix:///run/redis.sock?db=2&password=pw", "unix:///run/redis.sock?db=2&password=***"),
        ("redis://localhost", "redis://localhost"),
    ],
)
def test_mask_url_hides_passwords_only(url: str, shown: str) -> None:
    # Given a URL / When masked / Then only its password is hidden
    assert mask_url(url) == shown


# Schedule ticks ---------------------------------------------------------------------


async def test_a_run_keeps_the_trigger_that_started_it(store: StoreContract) -> None:
    # Given a run started by a trigger's tick
    record = RunRecord("run-t", "nightly", created_at=T0, trigger="nightly/often", scheduled_at=T0)
    await store.create_run(record, {})
    # Then the store gives the trigger and the tick back, every digit kept
    assert await store.get_run("run-t") == record
    assert (await store.list_runs())[0] == record


async def test_a_tick_is_claimed_once(store: StoreContract) -> None:
    # Given two schedulers racing for the same tick
    first = TickRecord("p/often", T0, T0, run_id="run-a")
    second = TickRecord("p/often", T0, T0 + 0.001, run_id="run-b")
    # When both claim it
    results = await asyncio.gather(store.claim_tick(first), store.claim_tick(second))
    # Then exactly one did, and the store names its run
    assert sorted(results) == [False, True]
    last = await store.last_tick("p/often")
    assert last is not None
    assert last.run_id == ("run-a" if results[0] else "run-b")


async def test_a_tick_before_the_last_one_is_never_claimed(store: StoreContract) -> None:
    # Given a trigger whose tick at T0 + 1 was claimed
    assert await store.claim_tick(TickRecord("p/often", T0 + 1, T0, run_id="run-a"))
    # When a late scheduler claims the tick before it
    # Then it is refused, and a later tick (one that starts no run) is claimed
    assert not await store.claim_tick(TickRecord("p/often", T0, T0, run_id="run-b"))
    assert await store.claim_tick(TickRecord("p/often", T0 + 2, T0, note="overlap: skipped"))
    assert await store.last_tick("p/often") == TickRecord(
        "p/often", T0 + 2, T0, None, "overlap: skipped"
    )


async def test_ticks_of_triggers_are_apart(store: StoreContract) -> None:
    # Given a tick of one trigger; Then another trigger has none, and claims the same time
    assert await store.claim_tick(TickRecord("p/a", T0, T0, run_id="run-a"))
    assert await store.last_tick("p/b") is None
    assert await store.claim_tick(TickRecord("p/b", T0, T0, run_id="run-b"))
