"""`RabbitMQConsumer`: a worker's consuming of RabbitMQ quorum queues.

- **Liveness is the connection.** RabbitMQ hands a message back to its queue when the
  consumer's connection closes without acknowledging it: at once when the worker's
  process dies (``kill -9``), after missed heartbeats when its host hangs (heartbeats
  every ``heartbeat_timeout / 2`` seconds). A live worker keeps its jobs however long
  they run, up to RabbitMQ's ``consumer_timeout`` (30 minutes by default in 3.10,
  after which it closes the channel and redelivers): raise it on the server for
  longer jobs. Heartbeats are sent by this event loop: a job that blocks it for about
  ``heartbeat_timeout`` seconds looks like a hung host, and its message goes to
  another worker while it still runs (run CPU-bound code in a thread).
- **Acknowledged after sending.** What a job dispatched is published, and confirmed by
  RabbitMQ, before its message is acknowledged. A worker dying between the two leaves
  the message to be delivered again; that delivery finds the step finished and
  repairs the run (see `Worker`).
- **Delivery cap.** Quorum queues count deliveries in ``x-delivery-count``; the worker
  fails a message delivered more than ``max_deliveries`` times. No ``x-delivery-limit``
  is set, so RabbitMQ never drops one unrecorded.
- **Delays.** A message back from its delay bucket early (see
  `arvel_flow.brokers.rabbitmq.transport`) is sent on for the rest of its delay and
  acknowledged, without taking a slot; one due within `READY_WITHIN` waits here on a
  timer until its time.
- **Nothing kept that is not running.** The channel prefetches at most
  ``concurrency`` messages. Those not started when the worker stops, and those whose
  handling failed before their acknowledgement (the store or the broker went away),
  are handed back (rejected with requeue) for any worker to take, rather than held
  until this channel closes. Each hand-back counts as a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from arvel_flow.brokers.rabbitmq.transport import (
    CONNECT_TIMEOUT,
    QUEUE_ARGUMENTS,
    READY_WITHIN,
    RabbitMQTransport,
    describe_url,
    rabbitmq_errors,
)
from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.wire import AVAILABLE_AT
from arvel_flow.worker.consumer import Delivery, Host, every_while_serving

logger = logging.getLogger(__name__)

_MAX_READ_WAIT = 1.0
"""Longest wait in `_read` for a first message."""
_QUIET = (AMQPError, ChannelInvalidStateError, OSError, TimeoutError)
"""Failures that leaving and closing log, not raise: the server returns the messages."""


@dataclass(frozen=True, slots=True)
class _Received:
    """A message as the consumer of ``queue`` (an arvel-flow queue name) got it."""

    queue: str
    message: AbstractIncomingMessage


class RabbitMQConsumer:
    """Consumes its worker's queues on ``url``; publishes through ``transport``.

    Args:
        transport: The worker's queue's transport: it publishes what jobs dispatch,
            and sends early messages on.
        url: The RabbitMQ server (this consumer opens its own connection to it).
    """

    def __init__(self, transport: RabbitMQTransport, *, url: str) -> None:
        self.transport = transport
        self.url = url
        self._host: Host | None = None
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._consumers: dict[str, tuple[AbstractQueue, str]] = {}
        """Each queue read, by arvel-flow name: its RabbitMQ queue and consumer tag."""
        # None wakes a waiting `_read` (the worker is stopping).
        self._inbox: asyncio.Queue[_Received | None] = asyncio.Queue()
        self._timers: dict[asyncio.TimerHandle, _Received] = {}
        self._taken = itertools.count(1)
        # Handed to the worker, and neither acknowledged nor handed back yet.
        self._unsettled: dict[str, Delivery] = {}

    @property
    def where(self) -> str:
        """The RabbitMQ server (no password)."""
        return describe_url(self.url)

    def bind(self, host: Host) -> None:
        """Consume for ``host``."""
        self._host = host

    @property
    def host(self) -> Host:
        """The worker this consumer reads for."""
        assert self._host is not None, "bind the consumer to a worker first"
        return self._host

    # Connecting -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, declare the queues, and consume them (prefetching ``concurrency``)."""
        options = self.host.options
        heartbeat = max(1, round(options.heartbeat_timeout / 2))
        with rabbitmq_errors(self.where):
            self._connection = await aio_pika.connect_robust(
                self.url,
                timeout=CONNECT_TIMEOUT,
                heartbeat=heartbeat,
                client_properties={"connection_name": f"arvel-flow worker {self.host.name}"},
            )
            self._channel = channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=options.concurrency)
            for name in options.queues:
                await self._consume(name)

    async def _consume(self, name: str) -> None:
        """Declare the queue of ``name`` (unless it exists) and consume from it."""
        assert self._channel is not None
        queue = await self._channel.declare_queue(
            self.transport.queue_name(name), durable=True, arguments=QUEUE_ARGUMENTS
        )
        tag = await queue.consume(self._receiver(name), no_ack=False)
        self._consumers[name] = (queue, tag)

    def _receiver(self, queue: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        """The consumer callback of ``queue``: it only buffers what arrives."""

        async def receive(message: AbstractIncomingMessage) -> None:
            self._inbox.put_nowait(_Received(queue, message))

        return receive

    # Reading ----------------------------------------------------------------------------

    async def read(self, count: int) -> list[Delivery]:
        """Messages consumed since the last read, at most ``count``; due ones only."""
        try:
            async with asyncio.timeout(min(self.host.options.read_block_seconds, _MAX_READ_WAIT)):
                first = await self._inbox.get()
        except TimeoutError:
            return []
        received = [first]
        while len(received) < count and not self._inbox.empty():
            received.append(self._inbox.get_nowait())
        now = self.host.clock.now()
        ready: list[Delivery] = []
        early: list[_Received] = []
        for item in received:
            if item is None:
                continue
            if _channel_closed(item.message):
                # Its channel closed (the connection was lost and made again): RabbitMQ
                # has put it back in its queue, for any worker.
                continue
            remaining = _available_at(item.message) - now
            if remaining >= READY_WITHIN:
                early.append(item)
            elif remaining > 0:
                self._wait_here(item, remaining)
            else:
                ready.append(self._delivery(item))
        if early:
            await asyncio.gather(*(self._send_on(item, now) for item in early))
        # Recorded only now, with no wait before `start`: see `_hand_back_orphans`.
        self._unsettled.update((delivery.message_id, delivery) for delivery in ready)
        return ready

    def _delivery(self, item: _Received) -> Delivery:
        message = item.message
        key = f"{message.message_id or message.delivery_tag}/{next(self._taken)}"
        count = message.headers.get("x-delivery-count")
        deliveries = count + 1 if isinstance(count, int) and not isinstance(count, bool) else 1
        return Delivery(item.queue, key, message.body, deliveries, message)

    def _wait_here(self, item: _Received, remaining: float) -> None:
        """Hold a message due in under `READY_WITHIN` on a timer, then read it again."""

        def due() -> None:
            self._timers.pop(handle, None)
            self._inbox.put_nowait(item)

        handle = asyncio.get_running_loop().call_later(remaining, due)
        self._timers[handle] = item

    async def _send_on(self, item: _Received, now: float) -> None:
        """Send an early message on for the rest of its delay, then acknowledge it."""
        message = item.message
        headers = {k: v for k, v in message.headers.items() if isinstance(v, str)}
        try:
            await self.transport.forward(
                item.queue, message.body, _available_at(message), headers, now
            )
            with rabbitmq_errors(self.where):
                await message.ack()
        except BackendError as error:
            logger.warning("could not delay a message again, handing it back: %s", error)
            await _hand_back(message)

    # Settling ---------------------------------------------------------------------------

    async def settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """Publish ``outbox`` (confirmed by RabbitMQ), then acknowledge ``delivery``."""
        await self.transport.publish(outbox, self.host.clock.now())
        message: AbstractIncomingMessage = delivery.handle
        if _channel_closed(message):
            # The connection was lost (and made again) since it arrived: RabbitMQ has
            # put it back in its queue, and its next delivery finds this step finished.
            self._unsettled.pop(delivery.message_id, None)
            return
        with rabbitmq_errors(self.where):
            await message.ack()
        self._unsettled.pop(delivery.message_id, None)

    def maintenance(self) -> list[Coroutine[Any, Any, None]]:
        """Handing back what failed here, and consuming again from deleted queues."""
        return [self._hand_back_orphans(), self._keep_consuming()]

    async def _keep_consuming(self) -> None:
        """Declare again, and consume again from, a queue deleted under this worker."""
        seconds = max(self.host.options.heartbeat_seconds, 1.0)
        await every_while_serving(self.host, seconds, self._restore_consumers)

    async def _restore_consumers(self) -> None:
        # RabbitMQ cancels the consumers of a deleted queue (aiormq forgets their tags);
        # aio-pika would consume again only after reconnecting, once someone declared it.
        assert self._channel is not None
        with rabbitmq_errors(self.where):
            # Not while aio-pika reconnects: it restores the consumers itself then.
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._channel.ready()
            underlay = cast(aiormq.Channel, await self._channel.get_underlay_channel())
            for name, (queue, tag) in tuple(self._consumers.items()):
                if tag in underlay.consumers or self.host.stopping:
                    continue
                logger.warning(
                    "RabbitMQ lost queue %s (deleted?): declared it again and consuming "
                    "(messages it held are lost)",
                    queue.name,
                )
                # Forgotten first, so that aio-pika's own recovery (on its next
                # reconnection) does not consume with the old tag as well.
                with contextlib.suppress(*_QUIET):
                    await queue.cancel(tag, nowait=True)
                await self._consume(name)

    async def _hand_back_orphans(self) -> None:
        """Hand back messages whose handling failed before they were acknowledged.

        The store or the broker failed mid-way, and the worker left the message
        unacknowledged: RabbitMQ would keep it here until this channel closes. It goes
        back after as long as a dead worker's messages wait elsewhere, so that a store
        that is down does not send it round and round.
        """
        host = self.host
        options = host.options
        idle = max(options.heartbeat_timeout, 5 * options.heartbeat_seconds)
        orphaned_at: dict[str, float] = {}
        while not host.stopping:
            await host.pause(options.heartbeat_seconds)
            now = time.monotonic()
            held = {delivery.message_id for delivery in host.held}
            for key in [key for key in self._unsettled if key not in held]:
                if now - orphaned_at.setdefault(key, now) >= idle:
                    del orphaned_at[key]
                    logger.warning("handing back message %s, left unacknowledged here", key)
                    await _hand_back(self._unsettled.pop(key).handle)

    # Stopping ---------------------------------------------------------------------------

    async def wake(self) -> None:
        """Wake a waiting read."""
        self._inbox.put_nowait(None)

    async def leave(self, unfinished: Sequence[Delivery]) -> None:
        """Cancel the consumers, and hand back every message not acknowledged here.

        That is more than ``unfinished``: also those whose handling failed, those
        waiting on a timer, and those that arrived after the last read.
        """
        for queue, tag in self._consumers.values():
            try:
                await queue.cancel(tag)
            except _QUIET as error:
                logger.debug("could not cancel consumer %s: %s", tag, error)
        self._consumers.clear()
        # Deliveries already on their way when the consumers were cancelled (any still
        # later return when the channel closes).
        await asyncio.sleep(0)
        # Waiting for a slot, cancelled by an abort, or left unacknowledged by a failure.
        returned = [delivery.handle for delivery in self._unsettled.values()]
        self._unsettled.clear()
        for handle, waiting in tuple(self._timers.items()):
            handle.cancel()
            returned.append(waiting.message)
        self._timers.clear()
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if item is not None:
                returned.append(item.message)
        for message in returned:
            await _hand_back(message)

    async def disconnect(self) -> None:
        """Close the channel and the connection."""
        channel, self._channel = self._channel, None
        connection, self._connection = self._connection, None
        if channel is not None:
            with contextlib.suppress(*_QUIET):
                await channel.close()
        if connection is not None:
            with contextlib.suppress(*_QUIET):
                await connection.close()


async def _hand_back(message: AbstractIncomingMessage) -> None:
    """Return ``message`` to its queue for any worker; closing the channel would too."""
    try:
        await message.reject(requeue=True)
    except _QUIET as error:
        logger.debug("could not hand a message back: %s", error)


def _channel_closed(message: AbstractIncomingMessage) -> bool:
    """Whether the channel ``message`` came on is closed (RabbitMQ requeued it then)."""
    try:
        return message.channel.is_closed
    except ChannelInvalidStateError:  # aio-pika's way of saying it is closed
        return True


def _available_at(message: AbstractIncomingMessage) -> float:
    """When ``message`` may run; 0 (now) when it does not say."""
    raw = message.headers.get(AVAILABLE_AT)
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    try:
        return float(raw) if isinstance(raw, str | int | float) else 0.0
    except ValueError:
        return 0.0
