"""`StubBroker`: a broker in process memory, for fast tests of the worker's delivery rules.

Like Dramatiq's ``StubBroker``: its `StubTransport` sends envelopes into queues held
here, and its `StubConsumer` reads them for a `Worker`, settles them (sends what the
job dispatched, then acknowledges) and hands back what the worker did not run. The
broker counts each message's deliveries, records acknowledgements in order, and, when
told (`StubBroker.redeliver`), hands every unacknowledged message out again, as a real
broker does once it sees that the worker holding it is dead.

It is not the ``memory`` broker of the settings (an asyncio pool in one process, no
worker): nothing in `arvel_flow.wiring` builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.outbox import send_or_collect
from arvel_flow.queue.wire import encode_message
from arvel_flow.worker.consumer import Delivery, Host

WHERE = "stub broker"
"""How the stub broker is named to people (in errors and outage lines)."""


@dataclass(slots=True)
class StubMessage:
    """A message the broker holds, and how often it was handed out."""

    queue: str
    message_id: str
    data: bytes | None
    available_at: float = 0.0
    deliveries: int = 0


class StubBroker:
    """Queues, unacknowledged messages and acknowledgements, in memory.

    Attributes:
        messages: Every message ever put here, by id.
        acked: The ids of acknowledged messages, in the order they were acknowledged.
        sent: Every envelope the transport sent, in order.
        history: What happened to messages, in order: ``("put", id)``, ``("ack", id)``.
        failing_sends: How many of the next sends fail with `BackendError` (the broker
            is away), in the transport and when a message is settled.
    """

    def __init__(self) -> None:
        self.messages: dict[str, StubMessage] = {}
        self.acked: list[str] = []
        self.sent: list[Envelope] = []
        self.history: list[tuple[str, str]] = []
        self.failing_sends = 0
        self.transport = StubTransport(self)
        self._ready: list[str] = []
        self._unacked: set[str] = set()
        self._dying = 0
        self._ids = itertools.count(1)
        self._arrivals: set[asyncio.Event] = set()

    # What a test does -------------------------------------------------------------------

    def put(self, queue: str, data: bytes | None, available_at: float = 0.0) -> str:
        """Add a message to ``queue`` (as a transport, or a stranger, would); its id."""
        message_id = f"m{next(self._ids)}"
        self.messages[message_id] = StubMessage(queue, message_id, data, available_at)
        self._ready.append(message_id)
        self.history.append(("put", message_id))
        self._arrived()
        return message_id

    def consumer(self) -> StubConsumer:
        """A consumer reading this broker, for one worker."""
        return StubConsumer(self)

    def redeliver(self) -> list[str]:
        """Hand every unacknowledged message out again: its worker died. Their ids."""
        again = sorted(self._unacked, key=lambda message_id: int(message_id[1:]))
        self._unacked.clear()
        self._ready.extend(again)
        self._arrived()
        return again

    def die_before_settling(self, count: int = 1) -> None:
        """The next ``count`` settles do nothing, as if their worker was killed first.

        The job ran and its step is recorded in the store; what it dispatched is not
        sent and its message stays unacknowledged.
        """
        self._dying = count

    @property
    def unacked(self) -> list[str]:
        """The messages handed out and neither acknowledged nor handed back."""
        return sorted(self._unacked, key=lambda message_id: int(message_id[1:]))

    def waiting(self, queue: str | None = None) -> list[StubMessage]:
        """The messages not handed out yet (of ``queue``, if given)."""
        found = [self.messages[message_id] for message_id in self._ready]
        return [m for m in found if queue is None or m.queue == queue]

    # What the transport and the consumer do ---------------------------------------------

    def take(self, queues: Sequence[str], count: int, now: float) -> list[Delivery]:
        """Hand out up to ``count`` due messages of ``queues``, oldest first."""
        taken: list[Delivery] = []
        for message_id in tuple(self._ready):
            message = self.messages[message_id]
            if len(taken) >= count:
                break
            if message.queue not in queues or message.available_at > now:
                continue
            self._ready.remove(message_id)
            self._unacked.add(message_id)
            message.deliveries += 1
            taken.append(Delivery(message.queue, message_id, message.data, message.deliveries))
        return taken

    def ack(self, message_id: str) -> None:
        """Acknowledge a message handed out: it is done."""
        self._unacked.discard(message_id)
        self.acked.append(message_id)
        self.history.append(("ack", message_id))

    def hand_back(self, message_id: str) -> None:
        """Put a message handed out back, for any consumer (a negative acknowledgement)."""
        if message_id in self._unacked:
            self._unacked.discard(message_id)
            self._ready.append(message_id)
            self._arrived()

    def dies_now(self) -> bool:
        """Whether the settle being made is one `die_before_settling` asked to lose."""
        if self._dying <= 0:
            return False
        self._dying -= 1
        return True

    def check_send(self) -> None:
        """Raise `BackendError` if this send is one of the `failing_sends`."""
        if self.failing_sends > 0:
            self.failing_sends -= 1
            raise BackendError(WHERE, "sending failed on purpose")

    def listen(self) -> asyncio.Event:
        """An event set whenever a message becomes ready."""
        event = asyncio.Event()
        self._arrivals.add(event)
        return event

    def _arrived(self) -> None:
        for event in self._arrivals:
            event.set()


class StubTransport:
    """Sends envelopes into a `StubBroker`; a worker's job sends with its settle."""

    remote = True
    """Jobs run in workers, not in the process that sends them."""

    def __init__(self, broker: StubBroker) -> None:
        self.broker = broker

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Send ``envelopes``, or collect them for the worker's settle."""
        await send_or_collect(envelopes, now, self.publish)

    async def publish(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Put each envelope in its queue now, to be handed out at its ``available_at``."""
        if not envelopes:
            return
        self.broker.check_send()
        for envelope in envelopes:
            queue = envelope.job.settings.queue_name
            self.broker.put(queue, encode_message(envelope, queue), envelope.available_at)
            self.broker.sent.append(envelope)

    async def size(self, queue: str) -> int:
        """Messages of ``queue`` not handed out yet (delayed ones included)."""
        return len(self.broker.waiting(queue))

    async def close(self) -> None:
        """Nothing to release."""


class StubConsumer:
    """Reads a `StubBroker` for one worker.

    Attributes:
        opened: Whether `open` was called (and `disconnect` not yet).
        left_with: What the worker handed back when it left (None until then).
    """

    where = WHERE

    def __init__(self, broker: StubBroker) -> None:
        self.broker = broker
        self.opened = False
        self.left_with: list[Delivery] | None = None
        self._host: Host | None = None
        self._arrival = broker.listen()
        self._woken = False

    def bind(self, host: Host) -> None:
        """Read for ``host``."""
        self._host = host

    @property
    def host(self) -> Host:
        """The worker this consumer reads for."""
        assert self._host is not None, "bind the consumer to a worker first"
        return self._host

    async def open(self) -> None:
        """Nothing to connect to."""
        self.opened = True

    async def read(self, count: int) -> list[Delivery]:
        """Due messages of the worker's queues, waiting up to ``read_block_seconds``."""
        host = self.host
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(host.options.read_block_seconds):
                while True:
                    self._arrival.clear()
                    taken = self.broker.take(host.options.queues, count, host.clock.now())
                    if taken or self._woken:
                        return taken
                    await self._arrival.wait()
        return []

    async def settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """Send ``outbox``, then acknowledge ``delivery``."""
        if self.broker.dies_now():
            return
        await self.broker.transport.publish(outbox, self.host.clock.now())
        self.broker.ack(delivery.message_id)

    async def wake(self) -> None:
        """Make a waiting read return."""
        self._woken = True
        self._arrival.set()

    async def leave(self, unfinished: Sequence[Delivery]) -> None:
        """Hand ``unfinished`` back to the broker."""
        self.left_with = list(unfinished)
        for delivery in unfinished:
            self.broker.hand_back(delivery.message_id)

    async def disconnect(self) -> None:
        """Nothing to close."""
        self.opened = False

    def maintenance(self) -> list[Coroutine[Any, Any, None]]:
        """None: the stub has no delays to promote and no dead workers to find."""
        return []
