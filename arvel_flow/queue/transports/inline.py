"""`InlineTransport`: runs every job in the caller, one at a time, earliest due first."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.transport import Attachment, Executor


class InlineTransport:
    """Runs each envelope in the task that sent it, earliest due first (ties: FIFO).

    ``send`` returns once the job and everything it set off have finished; waits for
    backoffs and releases go through the queue's clock, so a fake clock makes tests
    instant.
    """

    remote = False

    def __init__(self) -> None:
        self._attachment = Attachment()
        self._due: list[tuple[float, int, Envelope]] = []
        self._order = itertools.count()
        self._draining = False

    def attach(self, queue: Executor) -> None:
        """Run envelopes through ``queue``."""
        self._attachment.set(queue)

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Run ``envelopes`` now (after their delays); nested sends join the running drain."""
        for envelope in envelopes:
            heapq.heappush(self._due, (envelope.available_at, next(self._order), envelope))
        if self._draining:
            return
        queue = self._attachment.queue
        self._draining = True
        try:
            while self._due:
                due_at, _, envelope = heapq.heappop(self._due)
                wait = due_at - queue.clock.now()
                if wait > 0:
                    await queue.clock.sleep(wait)
                await queue.process(envelope)
        finally:
            self._draining = False

    async def size(self, queue: str) -> int:
        """Jobs due but not yet run (only while a drain is in progress)."""
        return sum(1 for _, _, e in self._due if e.job.settings.queue_name == queue)

    async def close(self) -> None:
        """Nothing to release."""
