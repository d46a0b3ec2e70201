"""Locks used by middleware and unique-job guards."""

from arvel_flow.lock.contracts import LockContract
from arvel_flow.lock.memory import MemoryLock
from arvel_flow.lock.redis import RedisLock
from arvel_flow.lock.sqlite import SqliteLock

__all__ = ["LockContract", "MemoryLock", "RedisLock", "SqliteLock"]
