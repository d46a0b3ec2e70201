"""arvel-flow: declarative job orchestration for async Python.

Names are imported on first use, so that ``import arvel_flow`` (and the command
line's ``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arvel_flow.compiler import compile_pipeline, load_pipeline
    from arvel_flow.errors import (
        BackendError,
        ConfigError,
        ConfigIssue,
        FlowError,
        JobError,
        JobFailedError,
        JobMaxRetriesError,
        JobTimeoutError,
        LockError,
    )
    from arvel_flow.lock import LockContract, MemoryLock, RedisLock
    from arvel_flow.queue.batch import Batch, BatchResult
    from arvel_flow.queue.chain import Chain
    from arvel_flow.queue.contracts import QueueContract
    from arvel_flow.queue.drivers import NullQueue, SyncQueue, TaskiqQueue
    from arvel_flow.queue.events import Event, EventBus
    from arvel_flow.queue.job import Job
    from arvel_flow.queue.middleware import (
        JobMiddleware,
        RateLimited,
        Release,
        UniqueJobGuard,
        WithoutOverlapping,
    )
    from arvel_flow.queue.runner import JobRunner
    from arvel_flow.secrets import secret_env
    from arvel_flow.settings import QueueSettings

_EXPORTS: dict[str, str] = {
    "BackendError": "arvel_flow.errors",
    "Batch": "arvel_flow.queue.batch",
    "BatchResult": "arvel_flow.queue.batch",
    "Chain": "arvel_flow.queue.chain",
    "ConfigError": "arvel_flow.errors",
    "ConfigIssue": "arvel_flow.errors",
    "Event": "arvel_flow.queue.events",
    "EventBus": "arvel_flow.queue.events",
    "FlowError": "arvel_flow.errors",
    "Job": "arvel_flow.queue.job",
    "JobError": "arvel_flow.errors",
    "JobFailedError": "arvel_flow.errors",
    "JobMaxRetriesError": "arvel_flow.errors",
    "JobMiddleware": "arvel_flow.queue.middleware",
    "JobRunner": "arvel_flow.queue.runner",
    "JobTimeoutError": "arvel_flow.errors",
    "LockContract": "arvel_flow.lock",
    "LockError": "arvel_flow.errors",
    "MemoryLock": "arvel_flow.lock",
    "NullQueue": "arvel_flow.queue.drivers",
    "QueueContract": "arvel_flow.queue.contracts",
    "QueueSettings": "arvel_flow.settings",
    "RateLimited": "arvel_flow.queue.middleware",
    "RedisLock": "arvel_flow.lock",
    "Release": "arvel_flow.queue.middleware",
    "SyncQueue": "arvel_flow.queue.drivers",
    "TaskiqQueue": "arvel_flow.queue.drivers",
    "UniqueJobGuard": "arvel_flow.queue.middleware",
    "WithoutOverlapping": "arvel_flow.queue.middleware",
    "compile_pipeline": "arvel_flow.compiler",
    "load_pipeline": "arvel_flow.compiler",
    "secret_env": "arvel_flow.secrets",
}

__all__ = [
    "BackendError",
    "Batch",
    "BatchResult",
    "Chain",
    "ConfigError",
    "ConfigIssue",
    "Event",
    "EventBus",
    "FlowError",
    "Job",
    "JobError",
    "JobFailedError",
    "JobMaxRetriesError",
    "JobMiddleware",
    "JobRunner",
    "JobTimeoutError",
    "LockContract",
    "LockError",
    "MemoryLock",
    "NullQueue",
    "QueueContract",
    "QueueSettings",
    "RateLimited",
    "RedisLock",
    "Release",
    "SyncQueue",
    "TaskiqQueue",
    "UniqueJobGuard",
    "WithoutOverlapping",
    "compile_pipeline",
    "load_pipeline",
    "secret_env",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arvel_flow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
