"""`NullTransport`: records envelopes and runs none (dry runs)."""

from __future__ import annotations

from collections.abc import Sequence

from arvel_flow.queue.envelope import Envelope


class NullTransport:
    """Keeps every envelope sent, in order, in ``sent``; runs nothing."""

    remote = False

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Record ``envelopes``."""
        self.sent.extend(envelopes)

    async def size(self, queue: str) -> int:
        """Envelopes recorded for ``queue``."""
        return sum(1 for e in self.sent if e.job.settings.queue_name == queue)

    async def close(self) -> None:
        """Nothing to release."""
