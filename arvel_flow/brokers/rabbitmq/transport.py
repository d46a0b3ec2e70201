"""Sending envelopes through RabbitMQ: the transport of a queue on ``broker: rabbitmq``.

Each arvel-flow queue is a durable quorum queue, ``{prefix}queue.{name}``, fed through
the default exchange. Quorum queues count deliveries (``x-delivery-count``), which the
worker's delivery cap reads (`arvel_flow.brokers.rabbitmq.consumer`). The body is
Taskiq's message (`arvel_flow.queue.wire`), with the headers
``taskiq_aio_pika.AioPikaBroker.kick`` sets.

Delays (a ``later``, a backoff, a release). RabbitMQ has no delayed delivery without
its delayed-message plugin, and a per-message TTL in one queue blocks behind the
queue's head. So a delayed message waits in a *delay bucket*: a classic queue
``{prefix}delay.{name}.{ms}`` whose every message lives ``ms`` milliseconds (one TTL
for the whole queue, so they expire in the order they came) and then dead-letters
into the main queue. A message waits in the largest bucket not longer than the rest
of its delay (`compute_delay_bucket`); a worker that gets it back early sends it on
for what remains (`RabbitMQTransport.forward`). Its time travels in the `AVAILABLE_AT`
header, as text: AMQP tables would carry a Python float as a 32-bit float, minutes off
an epoch time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from arvel_flow.brokers.watched import WatchedElsewhere
from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.outbox import send_or_collect
from arvel_flow.queue.transport import Watched
from arvel_flow.queue.wire import AVAILABLE_AT, TASK_NAME, encode_message
from arvel_flow.store.urls import mask_url

try:
    import aio_pika
    from aio_pika.abc import AbstractChannel, AbstractRobustConnection
    from aio_pika.exceptions import AMQPError, ChannelInvalidStateError, DeliveryError
    from pamqp.common import FieldTable
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the rabbitmq broker needs aio-pika: pip install 'arvel-flow[rabbitmq]'"
    ) from error

DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
"""Seconds a message waits in each delay bucket of a queue."""
READY_WITHIN = DELAY_BUCKETS[0]
"""A message this close to its time (or past it) goes to its main queue."""
QUEUE_ARGUMENTS: FieldTable = {"x-queue-type": "quorum"}
"""How every main queue is declared (durable)."""
CONNECT_TIMEOUT = 5.0
_CHUNK = 500
"""Publishes awaiting their confirmation at once."""


def compute_delay_bucket(remaining: float) -> float | None:
    """The bucket (seconds) for a message due in ``remaining`` seconds; None when it is ready.

    The largest bucket not longer than ``remaining``: a message never comes back late,
    and comes back early only to be sent on for the rest.
    """
    if remaining < READY_WITHIN:
        return None
    return max(bucket for bucket in DELAY_BUCKETS if bucket <= remaining)


@contextlib.contextmanager
def rabbitmq_errors(backend: str) -> Iterator[None]:
    """Turn RabbitMQ failures (no server, closed channels, timeouts) into `BackendError`."""
    try:
        yield
    except (AMQPError, ChannelInvalidStateError, OSError, TimeoutError) as exc:
        raise BackendError(backend, str(exc) or type(exc).__name__) from exc


def describe_url(url: str) -> str:
    """How errors name the server (no password)."""
    return f"RabbitMQ {mask_url(url)}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: its body, headers and the queue it is for."""

    queue: str
    body: bytes
    available_at: float
    headers: Mapping[str, str]


class RabbitMQTransport(WatchedElsewhere):
    """Publishes envelopes to RabbitMQ with publisher confirms, connecting on first use.

    Args:
        url: The server, ``amqp://user:password@host:5672/vhost``.
        prefix: Put before every queue name.
        presence: Where the workers' heartbeats are read, if anywhere (the store's Redis:
            `arvel_flow.brokers.redis.presence`, read by `WatchedElsewhere`).
    """

    def __init__(
        self, url: str, *, prefix: str = "arvel-flow:", presence: Watched | None = None
    ) -> None:
        self.url = url
        self.presence = presence
        self.prefix = prefix
        self.backend = describe_url(url)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._connecting = asyncio.Lock()
        self._declared: set[str] = set()

    # Names ------------------------------------------------------------------------------

    def queue_name(self, queue: str) -> str:
        """The RabbitMQ queue holding the ready messages of ``queue``."""
        return f"{self.prefix}queue.{queue}"

    def bucket_name(self, queue: str, bucket: float) -> str:
        """The RabbitMQ queue where messages of ``queue`` wait ``bucket`` seconds."""
        return f"{self.prefix}delay.{queue}.{round(bucket * 1000)}"

    # Connection and declarations --------------------------------------------------------

    async def channel(self) -> AbstractChannel:
        """The publishing channel (publisher confirms on), connecting on first use."""
        async with self._connecting:
            if self._channel is None:
                with rabbitmq_errors(self.backend):
                    connection = await aio_pika.connect_robust(
                        self.url,
                        timeout=CONNECT_TIMEOUT,
                        client_properties={"connection_name": "arvel-flow transport"},
                    )
                    try:
                        channel = await connection.channel(
                            publisher_confirms=True, on_return_raises=True
                        )
                    except BaseException:
                        await connection.close()
                        raise
                self._connection, self._channel = connection, channel
            return self._channel

    async def declare(self, queue: str) -> str:
        """Make sure the main queue of ``queue`` exists (once per transport); its name."""
        name = self.queue_name(queue)
        if name not in self._declared:
            channel = await self.channel()
            with rabbitmq_errors(self.backend):
                await channel.declare_queue(name, durable=True, arguments=QUEUE_ARGUMENTS)
            self._declared.add(name)
        return name

    async def declare_bucket(self, queue: str, bucket: float) -> str:
        """Make sure the ``bucket`` delay queue of ``queue`` exists; its name."""
        name = self.bucket_name(queue, bucket)
        if name not in self._declared:
            target = await self.declare(queue)
            channel = await self.channel()
            arguments: FieldTable = {
                "x-message-ttl": round(bucket * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": target,
            }
            with rabbitmq_errors(self.backend):
                await channel.declare_queue(name, durable=True, arguments=arguments)
            self._declared.add(name)
        return name

    # Sending ----------------------------------------------------------------------------

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Publish ``envelopes`` now, or into the outbox being collected."""
        await send_or_collect(envelopes, now, self.publish)

    async def publish(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Publish ``envelopes``, each confirmed by RabbitMQ before this returns.

        A ready envelope goes to its main queue, a delayed one to its delay bucket.
        """
        await self._publish_all([_outgoing(envelope) for envelope in envelopes], now)

    async def forward(
        self, queue: str, body: bytes, available_at: float, headers: Mapping[str, str], now: float
    ) -> None:
        """Send on a message of ``queue`` that came back from its delay bucket early."""
        await self._publish_all([Outgoing(queue, body, available_at, headers)], now)

    async def _publish_all(self, messages: Sequence[Outgoing], now: float) -> None:
        if not messages:
            return
        routed = [(message, await self._route(message, now)) for message in messages]
        channel = await self.channel()
        with rabbitmq_errors(self.backend):
            for start in range(0, len(routed), _CHUNK):
                chunk = routed[start : start + _CHUNK]
                await asyncio.gather(*(self._publish(channel, m, route) for m, route in chunk))

    async def _route(self, message: Outgoing, now: float) -> str:
        """The queue ``message`` goes to now (declared)."""
        bucket = compute_delay_bucket(message.available_at - now)
        if bucket is None:
            return await self.declare(message.queue)
        return await self.declare_bucket(message.queue, bucket)

    async def _publish(self, channel: AbstractChannel, message: Outgoing, route: str) -> None:
        outgoing = aio_pika.Message(
            message.body,
            headers=dict(message.headers),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=new_id(),
        )
        try:
            await channel.default_exchange.publish(outgoing, routing_key=route)
        except DeliveryError:
            # Returned: the queue is gone (deleted by hand); declare it again next time.
            self._declared.discard(route)
            raise

    # Looking ----------------------------------------------------------------------------

    async def size(self, queue: str) -> int:
        """Messages of ``queue`` waiting: ready in its main queue, or in its delay buckets.

        Messages delivered to a worker and not acknowledged yet are not counted. Every
        delay bucket of ``queue`` is declared (they are cheap), so that each can be asked.
        """
        names = [await self.declare(queue)]
        names += [await self.declare_bucket(queue, bucket) for bucket in DELAY_BUCKETS]
        channel = await self.channel()
        try:
            with rabbitmq_errors(self.backend):
                # Asked of the underlying channel: a robust channel answers a passive
                # declare of a queue it declared from memory, with the count of back then.
                underlay = await channel.get_underlay_channel()
                replies = [await underlay.queue_declare(name, passive=True) for name in names]
        except BackendError:
            self._declared.difference_update(names)  # one was deleted under us
            raise
        return sum(reply.message_count or 0 for reply in replies)

    async def delete_queues(self, queues: Sequence[str]) -> None:
        """Delete the main queue and every delay bucket of each of ``queues``, messages and all."""
        channel = await self.channel()
        with rabbitmq_errors(self.backend):
            for queue in queues:
                names = [self.queue_name(queue)]
                names += [self.bucket_name(queue, bucket) for bucket in DELAY_BUCKETS]
                for name in names:
                    await channel.queue_delete(name)
                    self._declared.discard(name)

    async def close(self) -> None:
        """Close the connection, if one was made."""
        connection, self._connection, self._channel = self._connection, None, None
        self._declared.clear()
        if connection is not None:
            with contextlib.suppress(AMQPError, ChannelInvalidStateError, OSError, TimeoutError):
                await connection.close()


def _outgoing(envelope: Envelope) -> Outgoing:
    """The message for ``envelope``, with the headers ``AioPikaBroker.kick`` sets too."""
    queue = envelope.job.settings.queue_name
    task_id = new_id()
    headers = {
        AVAILABLE_AT: repr(envelope.available_at),
        "task_id": task_id,
        "task_name": TASK_NAME,
        "queue_name": queue,
    }
    return Outgoing(queue, encode_message(envelope, queue, task_id), envelope.available_at, headers)
