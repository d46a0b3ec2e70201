"""`Consumer`: what a broker provides a worker, and `Host`: what a worker lends its consumer.

A `Worker` holds the delivery rules (at least once, first copy, repair, the delivery
cap, refusals, stopping, outages); a consumer holds one broker's side of them:
reading messages, settling one (sending what its job dispatched, then acknowledging
it), waking a blocked read, leaving. Each broker's consumer lives in its package
(`arvel_flow.brokers.redis.consumer`, ``nats``, ``rabbitmq``); `arvel_flow.worker.stub`
keeps messages in memory, for fast tests of the worker.

A consumer that needs its worker (to start a message taken with an acknowledgement,
to reclaim into free slots, to ride through the worker's outage, to pause until it
stops) gets it as a `Host` in `Consumer.bind`, never by subclassing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from arvel_flow.outage import Outage
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.envelope import Envelope
from arvel_flow.worker.options import WorkerOptions


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a worker, and how often it has been handed out.

    ``data`` is the raw message (a Taskiq message carrying an envelope, or anything a
    stranger sent); ``handle`` is what the broker needs to acknowledge it.
    """

    queue: str
    message_id: str
    data: bytes | None
    deliveries: int
    handle: Any = field(default=None, compare=False, repr=False)


class Host(Protocol):
    """What a consumer may use of the worker it reads for (a `Worker` is one)."""

    @property
    def name(self) -> str:
        """The worker's name, unique per worker: its consumer name at the broker."""
        ...

    @property
    def options(self) -> WorkerOptions:
        """Queues, concurrency and timings."""
        ...

    @property
    def outage(self) -> Outage:
        """The worker's one `Outage`: maintenance and beats ride through it."""
        ...

    @property
    def clock(self) -> Clock:
        """The queue's clock (``now`` decides which messages are due)."""
        ...

    @property
    def stopping(self) -> bool:
        """Whether the worker is stopping: read nothing more."""
        ...

    @property
    def free_slots(self) -> int:
        """Jobs the worker can take on now."""
        ...

    @property
    def held(self) -> list[Delivery]:
        """The messages running or waiting for a slot in the worker."""
        ...

    def start(self, delivery: Delivery) -> None:
        """Run ``delivery`` now, or as soon as a slot is free."""
        ...

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the worker is stopping."""
        ...


class Consumer(Protocol):
    """One broker's side of a worker: read, settle, wake, leave.

    The worker calls `bind` once (when it is made), then `open`; `read` and `settle`
    while it serves; `wake` when it stops; `leave`, then `disconnect`, last (also
    after an `open` that failed).
    """

    @property
    def where(self) -> str:
        """The broker, for people (no password)."""
        ...

    def bind(self, host: Host) -> None:
        """Serve ``host``: the worker this consumer reads for."""
        ...

    async def open(self) -> None:
        """Connect and declare what the queues need; raise `BackendError` if unreachable."""
        ...

    async def read(self, count: int) -> list[Delivery]:
        """New messages, at most ``count``; waits a few seconds for the first."""
        ...

    async def settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """Send ``outbox``, then acknowledge ``delivery`` (together where the broker can)."""
        ...

    async def wake(self) -> None:
        """Make a `read` that is waiting return soon (the worker is stopping)."""
        ...

    async def leave(self, unfinished: Sequence[Delivery]) -> None:
        """Leave after the last job: hand back what is held here and was not run.

        ``unfinished`` are the messages the worker took and did not run to the end:
        those waiting for a slot, and those whose jobs an abort cancelled.
        """
        ...

    async def disconnect(self) -> None:
        """Close the broker's connections."""
        ...

    def maintenance(self) -> list[Coroutine[Any, Any, None]]:
        """Loops to run beside reading until the worker stops (promoting, reclaiming...)."""
        ...


async def every_while_serving(
    host: Host, seconds: float, operation: Callable[[], Awaitable[object]]
) -> None:
    """Call ``operation`` every ``seconds``, through the worker's outage, until it stops.

    The loop of a consumer's periodic upkeep (one of its `Consumer.maintenance` loops):
    the first call comes after one pause, and none once the worker is stopping.
    """
    while not host.stopping:
        await host.pause(seconds)
        if not host.stopping:
            await host.outage.call(operation)
