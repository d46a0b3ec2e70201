"""Stores: run state, batch counters, failed jobs, locks and rate-limit windows.

`RedisStore` is loaded on first use: importing redis takes about 100 ms, which
commands that never touch Redis should not pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.store.contracts import (
    FINAL_STATES,
    BatchCounters,
    FailedJob,
    RunOwner,
    RunRecord,
    StepRecord,
    StoreContract,
)
from arvel_flow.store.memory import MemoryStore
from arvel_flow.store.sqlite import SqliteStore
from arvel_flow.store.urls import is_redis_url, mask_url

if TYPE_CHECKING:
    from arvel_flow.store.redis import RedisStore

__all__ = [
    "FINAL_STATES",
    "BatchCounters",
    "FailedJob",
    "MemoryStore",
    "RedisStore",
    "RunOwner",
    "RunRecord",
    "SqliteStore",
    "StepRecord",
    "StoreContract",
    "open_store",
]

DEFAULT_PREFIX = "arvel-flow:"
"""What a Redis store puts before its keys unless told otherwise (``QueueSettings.prefix``)."""


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from arvel_flow.store.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    url: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    commit_interval: float = 0.0,
    max_connections: int | None = None,
    create: bool = True,
) -> StoreContract:
    """Open the store a ``--store`` / ``queue.store`` value names: the one store opener.

    Args:
        url: ``memory``, ``sqlite:PATH`` (``~`` is expanded), or a ``redis://``,
            ``rediss://`` or ``unix://`` URL.
        prefix: For Redis, put before every key (``QueueSettings.prefix``).
        commit_interval: For sqlite, seconds to group writes into one transaction.
        max_connections: For Redis, the size of the store's connection pool (redis-py's
            default otherwise). A process that runs many jobs at once sizes it to its
            concurrency: each job holds one store connection at a time.
        create: For sqlite, whether a missing file (and its directory) is created;
            without, a missing file reads as an empty store (commands that only look).

    Raises:
        ConfigError: The value names no known store, or a Redis URL cannot be parsed.
        BackendError: A sqlite file cannot be opened.
    """
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        if not path:
            raise _invalid_store(url, "sqlite needs a file: sqlite:PATH")
        return SqliteStore(Path(path).expanduser(), commit_interval=commit_interval, create=create)
    if is_redis_url(url):
        from arvel_flow.store.redis import RedisStore

        return RedisStore(url, prefix, max_connections=max_connections)
    raise _invalid_store(url, "expected memory, sqlite:PATH, redis://, rediss:// or unix://")


def _invalid_store(url: str, hint: str) -> ConfigError:
    return ConfigError([ConfigIssue(f"invalid store {mask_url(url)!r}: {hint}", path="store")])
