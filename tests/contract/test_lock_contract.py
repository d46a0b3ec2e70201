"""One suite for every `LockContract` driver: memory, sqlite and redis behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from arvel_flow.lock.contracts import LockContract
from arvel_flow.lock.memory import MemoryLock
from arvel_flow.lock.redis import RedisLock
from arvel_flow.lock.sqlite import SqliteLock
from arvel_flow.store.sqlite import SqliteStore

SHORT_TTL = 0.2
"""Short enough to wait out in a test, long enough not to expire mid-step."""

BACKENDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
async def lock(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LockContract]:
    """Each driver in turn, with no lock held."""
    if request.param == "memory":
        yield MemoryLock()
    elif request.param == "sqlite":
        sqlite_lock = SqliteLock(tmp_path / "locks.db")
        yield sqlite_lock
        await sqlite_lock.close()
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"))
        yield RedisLock(client, prefix=request.getfixturevalue("redis_prefix"))
        await client.aclose()


async def test_lock_satisfies_the_contract(lock: LockContract) -> None:
    # Given a driver / Then it is a LockContract
    assert isinstance(lock, LockContract)


async def test_acquire_is_exclusive(lock: LockContract) -> None:
    # Given a lock held by A
    assert await lock.acquire("k", "A", ttl=10) is True
    # When B tries to take it / Then B is refused and A still holds it
    assert await lock.acquire("k", "B", ttl=10) is False
    assert await lock.owner("k") == "A"


async def test_concurrent_acquires_have_one_winner(lock: LockContract) -> None:
    # Given 20 owners racing for one key
    results = await asyncio.gather(*(lock.acquire("k", f"o{i}", ttl=10) for i in range(20)))
    # Then exactly one holds it
    assert results.count(True) == 1


async def test_only_the_owner_releases(lock: LockContract) -> None:
    # Given a lock held by A
    await lock.acquire("k", "A", ttl=10)
    # When B releases it, then A
    by_other = await lock.release("k", "B")
    by_owner = await lock.release("k", "A")
    # Then only A's release counts, and the key is free
    assert (by_other, by_owner) == (False, True)
    assert await lock.owner("k") is None
    assert await lock.acquire("k", "B", ttl=10) is True


async def test_only_the_owner_extends(lock: LockContract) -> None:
    # Given a short lock held by A
    await lock.acquire("k", "A", ttl=SHORT_TTL)
    # When B and then A extend it
    by_other = await lock.extend("k", "B", ttl=10)
    by_owner = await lock.extend("k", "A", ttl=10)
    # Then only A's extension counts, and it outlives the first time to live
    assert (by_other, by_owner) == (False, True)
    await asyncio.sleep(SHORT_TTL * 1.5)
    assert await lock.owner("k") == "A"


async def test_lock_expires_after_its_ttl(lock: LockContract) -> None:
    # Given a short lock held by A
    await lock.acquire("k", "A", ttl=SHORT_TTL)
    # When its time to live has passed
    await asyncio.sleep(SHORT_TTL * 1.5)
    # Then nobody holds it and B may take it
    assert await lock.owner("k") is None
    assert await lock.acquire("k", "B", ttl=10) is True


async def test_expired_owner_cannot_release_or_extend_the_next_holder(lock: LockContract) -> None:
    # Given A's lock expired and B took the key
    await lock.acquire("k", "A", ttl=SHORT_TTL)
    await asyncio.sleep(SHORT_TTL * 1.5)
    await lock.acquire("k", "B", ttl=10)
    # When A, unaware, releases and extends / Then neither touches B's lock
    assert await lock.release("k", "A") is False
    assert await lock.extend("k", "A", ttl=10) is False
    assert await lock.owner("k") == "B"


async def test_owner_of_an_unknown_key_is_none(lock: LockContract) -> None:
    # Given nothing locked / Then no owner, and releasing or extending does nothing
    assert await lock.owner("nope") is None
    assert await lock.release("nope", "A") is False
    assert await lock.extend("nope", "A", ttl=10) is False


async def test_locks_are_per_key(lock: LockContract) -> None:
    # Given A holds one key / When B takes another / Then both hold their own
    await lock.acquire("k1", "A", ttl=10)
    assert await lock.acquire("k2", "B", ttl=10) is True
    assert (await lock.owner("k1"), await lock.owner("k2")) == ("A", "B")


# Shared between processes -------------------------------------------------------------


async def test_sqlite_locks_are_shared_through_the_file(tmp_path: Path) -> None:
    # Given two processes' locks on one file (two connections)
    path = tmp_path / "state.db"
    mine, theirs = SqliteLock(path), SqliteLock(path)
    try:
        # When one takes a key / Then the other sees it held
        assert await mine.acquire("k", "A", ttl=10) is True
        assert await theirs.acquire("k", "B", ttl=10) is False
        assert await theirs.owner("k") == "A"
    finally:
        await mine.close()
        await theirs.close()


async def test_sqlite_store_lock_uses_the_store_file(tmp_path: Path) -> None:
    # Given a sqlite store and a separate lock on the same file
    store = SqliteStore(tmp_path / "state.db")
    other = SqliteLock(tmp_path / "state.db")
    try:
        # When the store's lock takes a key / Then the other lock sees it
        assert await store.lock().acquire("k", "A", ttl=10) is True
        assert await other.owner("k") == "A"
    finally:
        await other.close()
        await store.close()


@pytest.mark.redis
async def test_redis_locks_are_shared_by_separate_clients(
    redis_url: str, redis_prefix: str
) -> None:
    # Given two workers with clients of their own on one Redis
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    mine, theirs = (RedisLock(c, prefix=redis_prefix) for c in clients)
    try:
        # When one takes a key / Then the other cannot
        assert await mine.acquire("k", "A", ttl=10) is True
        assert await theirs.acquire("k", "B", ttl=10) is False
        assert await theirs.owner("k") == "A"
    finally:
        for client in clients:
            await client.aclose()
