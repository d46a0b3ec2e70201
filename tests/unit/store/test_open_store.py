"""`open_store`: the one opener of every store, and the one table of Redis URL schemes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from arvel_flow.errors import ConfigError
from arvel_flow.store import MemoryStore, SqliteStore, open_store
from arvel_flow.store.contracts import RunRecord
from arvel_flow.store.urls import REDIS_SCHEMES, is_redis_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379/0", True),
        ("rediss://user:pw@cache:6380/1", True),
        ("unix:///run/redis.sock", True),
        ("sqlite:state.db", False),
        ("memory", False),
        ("nats://localhost:4222", False),
        ("amqp://guest:guest@localhost/", False),
    ],
)
def test_a_url_names_redis_by_its_scheme(url: str, expected: bool) -> None:
    assert is_redis_url(url) is expected


def test_the_scheme_table_is_the_one_redis_py_reads() -> None:
    assert REDIS_SCHEMES == ("redis://", "rediss://", "unix://")


async def test_memory_and_sqlite_open_their_stores(tmp_path: Path) -> None:
    memory = open_store("memory")
    sqlite = open_store(f"sqlite:{tmp_path / 'state.db'}", commit_interval=0.5)
    try:
        assert isinstance(memory, MemoryStore)
        assert isinstance(sqlite, SqliteStore)
    finally:
        await memory.close()
        await sqlite.close()


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("sqlite:", "sqlite needs a file"),
        ("postgres://db/0", "expected memory, sqlite:PATH"),
        ("redis://:pw@host:notaport/0", "invalid redis URL"),
    ],
)
def test_a_store_url_that_names_nothing_is_one_issue_with_the_password_masked(
    url: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        open_store(url)
    (issue,) = raised.value.issues
    assert issue.path == "store"
    assert hint in issue.message
    assert ":pw@" not in issue.message


async def test_a_redis_store_keeps_its_keys_under_the_prefix(
    redis_url: str, redis_prefix: str
) -> None:
    # Given a Redis store opened under a prefix of this test's own
    store = open_store(redis_url, prefix=redis_prefix)
    try:
        # When a run is recorded
        record = RunRecord("r1", "prefixed", "running", time.time())
        await store.create_run(record, {"kind": "batch"})
    finally:
        await store.close()
    # Then its keys are under the prefix
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(f"{redis_prefix}run:r1")
    finally:
        client.close()


async def test_a_redis_store_pool_holds_max_connections(redis_url: str) -> None:
    # A worker sizes the pool to its concurrency: redis-py's default fails past 100.
    store = open_store(redis_url, max_connections=240)
    try:
        assert store._client.connection_pool.max_connections == 240  # type: ignore[attr-defined]
    finally:
        await store.close()
