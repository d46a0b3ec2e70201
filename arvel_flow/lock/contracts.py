"""The lock contract shared by middleware and unique-job guards."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class LockContract(Protocol):
    """Named locks with an owner and a time to live.

    Every lock expires after ``ttl`` seconds unless extended, so a holder that dies
    never blocks others for good. ``release`` and ``extend`` act only for the owner
    that holds the lock, atomically (check and change in one step).
    """

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``owner`` if nobody holds it; True when taken."""
        ...

    async def release(self, key: str, owner: str) -> bool:
        """Give ``key`` up if ``owner`` holds it; True when it was released."""
        ...

    async def extend(self, key: str, owner: str, ttl: float) -> bool:
        """Reset the time to live of ``key`` if ``owner`` holds it; True when extended."""
        ...

    async def owner(self, key: str) -> str | None:
        """Who holds ``key`` now, or None."""
        ...
