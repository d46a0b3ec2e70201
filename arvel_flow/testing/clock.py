"""`FakeClock`: time that moves only when someone sleeps."""

from __future__ import annotations

import asyncio


class FakeClock:
    """A `Clock` for tests: backoffs, delays and releases cost no real time.

    ``sleep`` yields to the event loop once, then moves time forward; concurrent
    sleepers each wake at their own start plus their wait, and time never goes back.

    Attributes:
        sleeps: Every wait asked for, in order (seconds).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The fake time, in seconds since the epoch."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (after letting other tasks run once)."""
        seconds = max(seconds, 0.0)
        self.sleeps.append(seconds)
        wake_at = self._now + seconds
        await asyncio.sleep(0)
        self._now = max(self._now, wake_at)
