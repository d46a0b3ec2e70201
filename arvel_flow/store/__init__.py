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
from arvel_flow.store.urls import mask_url

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

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from arvel_flow.store.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str, *, commit_interval: float = 0.0) -> StoreContract:
    """Open the store a ``--store`` / ``queue.store`` value names.

    Args:
        url: ``memory``, ``sqlite:PATH`` (``~`` is expanded), or a ``redis://``,
            ``rediss://`` or ``unix://`` URL.
        commit_interval: For sqlite, seconds to group writes into one transaction.

    Raises:
        ConfigError: The value names no known store.
        BackendError: A sqlite file cannot be opened.
    """
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        if not path:
            raise _invalid_store(url, "sqlite needs a file: sqlite:PATH")
        return SqliteStore(Path(path).expanduser(), commit_interval=commit_interval)
    if url.startswith(_REDIS_SCHEMES):
        from arvel_flow.store.redis import RedisStore

        return RedisStore(url)
    raise _invalid_store(url, "expected memory, sqlite:PATH, redis://, rediss:// or unix://")


def _invalid_store(url: str, hint: str) -> ConfigError:
    return ConfigError([ConfigIssue(f"invalid store {mask_url(url)!r}: {hint}", path="store")])
