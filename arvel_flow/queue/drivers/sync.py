"""`SyncQueue`: runs every job inline, in the caller, in a deterministic order."""

from __future__ import annotations

from typing import Any

from arvel_flow.queue.front import Queue
from arvel_flow.queue.transports.inline import InlineTransport


class SyncQueue(Queue):
    """A `Queue` on an `InlineTransport`: jobs run in the calling task, one at a time,
    earliest due first (ties: FIFO).

    ``dispatch`` returns once the job and everything it set off have finished; waits
    for backoffs and releases go through the injected clock, so a fake clock makes
    tests instant.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(InlineTransport(), **options)
