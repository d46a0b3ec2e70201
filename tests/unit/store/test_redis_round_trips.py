"""The Redis store sends the scripts and locks of concurrent callers in shared round trips."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from arvel_flow.store.contracts import RunRecord
from arvel_flow.store.redis import RedisStore

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url, prefix=redis_prefix)
    yield store
    await store.close()


def count_pipelines(store: RedisStore) -> list[int]:
    """The size of every pipeline the store's client sends from now on."""
    client: Any = store._client
    sizes: list[int] = []
    pipeline = client.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: Any, **k: Any) -> Any:
            sizes.append(len(pipe.command_stack))
            return await execute(*a, **k)

        pipe.execute = counted
        return pipe

    client.pipeline = counting
    return sizes


async def test_steps_finished_at_once_share_one_round_trip(store: RedisStore) -> None:
    # Given a run with a batch of 20 members
    await store.create_run(RunRecord("r1", "p", "running", 1.0), {"kind": "job"})
    sizes = count_pipelines(store)
    # When 20 jobs finish at the same time, each taking its lock first
    steps = [f"b.{i}" for i in range(20)]

    async def finish(step: str) -> Any:
        assert await store.lock().acquire(f"mark:{step}", "me", 60)
        return await store.finish_step("r1", step, "succeeded", at=2.0, batch="b")

    results = await asyncio.gather(*(finish(step) for step in steps))
    # Then the 20 locks went in one round trip, the 20 finishes in another
    assert sizes == [20, 20]
    # And each finish was counted once, in order
    assert sorted(counters.done for counters in results) == list(range(1, 21))
    records = await store.get_steps("r1", steps)
    assert {record.state for record in records.values()} == {"succeeded"}


async def test_a_script_redis_forgot_is_loaded_again(store: RedisStore) -> None:
    # Given a run, and a script Redis does not know (restarted, or its scripts flushed)
    await store.create_run(RunRecord("r1", "p", "running", 1.0), {"kind": "job"})
    store._scripts["finish_step"].sha = "0" * 40
    # When a step finishes
    assert await store.finish_step("r1", "a", "succeeded", at=2.0) is True
    # Then the script was loaded and run
    assert (await store.get_steps("r1", ["a"]))["a"].state == "succeeded"


async def test_one_failing_command_fails_only_its_caller(store: RedisStore) -> None:
    # Given a lock key that holds a hash, where a lock's string belongs
    await store._client.hset(store._prefix + "lock:odd", "f", "v")
    lock = store.lock()
    # When it and another lock are read in the same turn
    odd, fine = await asyncio.gather(
        lock.owner("odd"), lock.acquire("fine", "me", 60), return_exceptions=True
    )
    # Then only the reading of the odd one fails
    assert isinstance(odd, Exception)
    assert "WRONGTYPE" in str(odd)
    assert fine is True
