"""`SyncQueue`: runs every job inline, in the caller, in a deterministic order."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.front import BaseQueue


class SyncQueue(BaseQueue):
    """Runs jobs in the calling task, one at a time, earliest due first (ties: FIFO).

    ``dispatch`` returns once the job and everything it set off have finished; waits
    for backoffs and releases go through the injected clock, so a fake clock makes
    tests instant.
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._due: list[tuple[float, int, Envelope]] = []
        self._order = itertools.count()
        self._draining = False

    async def size(self, queue_name: str = "default") -> int:
        """Jobs due but not yet run (only while a drain is in progress)."""
        return sum(1 for _, _, e in self._due if e.job.settings.queue_name == queue_name)

    async def _send(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            heapq.heappush(self._due, (envelope.available_at, next(self._order), envelope))
        if self._draining:
            return
        self._draining = True
        try:
            while self._due:
                due_at, _, envelope = heapq.heappop(self._due)
                wait = due_at - self.clock.now()
                if wait > 0:
                    await self.clock.sleep(wait)
                await self.process(envelope)
        finally:
            self._draining = False
