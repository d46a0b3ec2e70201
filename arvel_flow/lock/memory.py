"""Locks held in this process's memory (tests, the sync driver, single-process runs)."""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryLock:
    """A `LockContract` in a dict; each entry is ``key -> (owner, expires_at)``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}

    def _live_owner(self, key: str) -> str | None:
        entry = self._held.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._held[key]
            return None
        return entry[0]

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``owner`` if free."""
        if self._live_owner(key) is not None:
            return False
        self._held[key] = (owner, self._clock() + ttl)
        return True

    async def release(self, key: str, owner: str) -> bool:
        """Give ``key`` up if ``owner`` holds it."""
        if self._live_owner(key) != owner:
            return False
        del self._held[key]
        return True

    async def extend(self, key: str, owner: str, ttl: float) -> bool:
        """Reset the time to live if ``owner`` holds ``key``."""
        if self._live_owner(key) != owner:
            return False
        self._held[key] = (owner, self._clock() + ttl)
        return True

    async def owner(self, key: str) -> str | None:
        """Who holds ``key`` now."""
        return self._live_owner(key)
