"""arvel-flow: declarative job orchestration for async Python.

The front door: ``await arvel_flow.run("pipeline.yaml")`` runs a pipeline file to its
end; ``await arvel_flow.start(...)`` returns a `Run` to wait on and follow;
``arvel_flow.resume(run_id)`` continues an interrupted run.

Names are imported on first use, so that ``import arvel_flow`` (and the command
line's ``--help``) stays fast. `_EXPORTS` is the one table of public names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arvel_flow.lazy import lazy_exports

if TYPE_CHECKING:
    # ``X as X`` marks a re-export for type checkers; at run time `__getattr__` imports.
    from arvel_flow.compiler import compile_pipeline as compile_pipeline
    from arvel_flow.compiler import load_pipeline as load_pipeline
    from arvel_flow.errors import BackendError as BackendError
    from arvel_flow.errors import ConfigError as ConfigError
    from arvel_flow.errors import ConfigIssue as ConfigIssue
    from arvel_flow.errors import FlowError as FlowError
    from arvel_flow.errors import JobError as JobError
    from arvel_flow.errors import JobFailedError as JobFailedError
    from arvel_flow.errors import JobMaxRetriesError as JobMaxRetriesError
    from arvel_flow.errors import JobTimeoutError as JobTimeoutError
    from arvel_flow.errors import LockError as LockError
    from arvel_flow.launch import Run as Run
    from arvel_flow.launch import resume as resume
    from arvel_flow.launch import run as run
    from arvel_flow.launch import start as start
    from arvel_flow.lock import LockContract as LockContract
    from arvel_flow.lock import MemoryLock as MemoryLock
    from arvel_flow.lock import RedisLock as RedisLock
    from arvel_flow.queue.batch import Batch as Batch
    from arvel_flow.queue.batch import BatchResult as BatchResult
    from arvel_flow.queue.chain import Chain as Chain
    from arvel_flow.queue.contracts import QueueContract as QueueContract
    from arvel_flow.queue.drivers import NullQueue as NullQueue
    from arvel_flow.queue.drivers import SyncQueue as SyncQueue
    from arvel_flow.queue.drivers import TaskiqQueue as TaskiqQueue
    from arvel_flow.queue.events import Event as Event
    from arvel_flow.queue.events import EventBus as EventBus
    from arvel_flow.queue.job import Job as Job
    from arvel_flow.queue.middleware import JobMiddleware as JobMiddleware
    from arvel_flow.queue.middleware import RateLimited as RateLimited
    from arvel_flow.queue.middleware import Release as Release
    from arvel_flow.queue.middleware import UniqueJobGuard as UniqueJobGuard
    from arvel_flow.queue.middleware import WithoutOverlapping as WithoutOverlapping
    from arvel_flow.queue.observers import Observers as Observers
    from arvel_flow.queue.runner import JobRunner as JobRunner
    from arvel_flow.secrets import secret_env as secret_env
    from arvel_flow.settings import QueueSettings as QueueSettings
    from arvel_flow.testing import FakeQueue as FakeQueue
    from arvel_flow.testing import run_pipeline as run_pipeline

_EXPORTS: dict[str, str] = {
    "BackendError": "arvel_flow.errors",
    "Batch": "arvel_flow.queue.batch",
    "BatchResult": "arvel_flow.queue.batch",
    "Chain": "arvel_flow.queue.chain",
    "ConfigError": "arvel_flow.errors",
    "ConfigIssue": "arvel_flow.errors",
    "Event": "arvel_flow.queue.events",
    "FakeQueue": "arvel_flow.testing",
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
    "Observers": "arvel_flow.queue.observers",
    "QueueContract": "arvel_flow.queue.contracts",
    "QueueSettings": "arvel_flow.settings",
    "RateLimited": "arvel_flow.queue.middleware",
    "RedisLock": "arvel_flow.lock",
    "Release": "arvel_flow.queue.middleware",
    "Run": "arvel_flow.launch",
    "SyncQueue": "arvel_flow.queue.drivers",
    "TaskiqQueue": "arvel_flow.queue.drivers",
    "UniqueJobGuard": "arvel_flow.queue.middleware",
    "WithoutOverlapping": "arvel_flow.queue.middleware",
    "compile_pipeline": "arvel_flow.compiler",
    "load_pipeline": "arvel_flow.compiler",
    "resume": "arvel_flow.launch",
    "run": "arvel_flow.launch",
    "run_pipeline": "arvel_flow.testing",
    "secret_env": "arvel_flow.secrets",
    "start": "arvel_flow.launch",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
