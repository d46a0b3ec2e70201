"""Sending envelopes through Redis streams: the transport of a queue on ``broker: redis``.

Ready messages go to the stream of their queue (one ``XADD`` each, pipelined: a batch
of 2,000 members is one round trip per chunk, not one per job); messages with a
future ``available_at`` (a ``later``, a backoff, a release) go to the queue's delayed
sorted set, which workers promote to the stream when due (`arvel_flow.brokers.redis.consumer`).

A worker handling a message collects what the job sends next (`outbox.collect`) and writes
it in the same ``MULTI`` as the message's ``XACK``: the next step of a chain is sent
if and only if the step that led to it is acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ResponseError

from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.brokers.redis.presence import read_last_heartbeats
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.outbox import current_outbox
from arvel_flow.queue.wire import encode_message
from arvel_flow.redis_support import describe_client, redis_errors
from arvel_flow.store.urls import mask_url

if TYPE_CHECKING:
    from taskiq_redis import RedisStreamBroker

CHUNK = 1000
"""Commands per pipeline round trip."""

Command = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Ack:
    """The stream entry to acknowledge (and delete) with what its job sent."""

    stream: str
    message_id: str


class RedisStreamTransport:
    """Writes envelopes to Redis streams (ready) and sorted sets (delayed).

    Args:
        client: A Redis client without ``decode_responses``; closed by `close` when
            ``owns_client``.
        keys: Where the streams and sets are.
        backend: How to name the server in errors (no password).
    """

    remote = True
    """Jobs sent through it run in `arvel-flow worker` processes, not here."""
    publishes_events = True
    """Those workers publish the run's events to a Redis store (`arvel_flow.launch.follow`)."""

    def __init__(
        self, client: Redis, keys: StreamKeys, *, backend: str, owns_client: bool = True
    ) -> None:
        self.client = client
        self.keys = keys
        self.backend = backend
        self._owns_client = owns_client
        self._known_queues: set[str] = set()

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "arvel-flow:", max_connections: int = 200
    ) -> RedisStreamTransport:
        """A transport on its own connection pool to ``url``."""
        client = Redis.from_url(url, max_connections=max_connections, socket_connect_timeout=5)
        return cls(client, StreamKeys(prefix), backend=mask_url(url))

    @classmethod
    def for_broker(
        cls, broker: RedisStreamBroker, *, prefix: str = "arvel-flow:", max_connections: int = 200
    ) -> RedisStreamTransport:
        """A transport to the server of a Taskiq ``RedisStreamBroker``.

        Only the broker's connection settings are used: streams are named per queue
        (see `StreamKeys`), whatever the broker's own ``queue_name``.
        """
        pool = broker.connection_pool
        # A flush holds one connection: size ``max_connections`` above the concurrency.
        client = Redis.from_pool(
            ConnectionPool(
                connection_class=pool.connection_class,
                max_connections=max_connections,
                **pool.connection_kwargs,
            )
        )
        return cls(client, StreamKeys(prefix), backend=describe_client(client))

    # Sending ----------------------------------------------------------------------------

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Send ``envelopes``: now, or into the outbox being collected."""
        outbox = current_outbox()
        if outbox is not None:
            outbox.extend(envelopes)
        elif envelopes:
            await self.flush(envelopes, now)

    async def flush(
        self,
        envelopes: Sequence[Envelope],
        now: float,
        acks: Sequence[Ack] = (),
        extra: Sequence[Command] = (),
    ) -> list[Any]:
        """Write ``envelopes`` and acknowledge ``acks``; the acks and the last chunk are one MULTI.

        ``extra`` commands run last, in the same round trip (a worker fetches its next
        messages there); their replies are returned.
        """
        commands = self._commands(envelopes, now)
        ids: dict[str, list[str]] = {}
        for ack in acks:
            ids.setdefault(ack.stream, []).append(ack.message_id)
        for stream, taken in ids.items():  # one XACK and one XDEL per stream
            commands.append(("XACK", (stream, GROUP, *taken)))
            commands.append(("XDEL", (stream, *taken)))
        commands.extend(extra)
        replies: list[Any] = []
        for start in range(0, len(commands), CHUNK):
            last = start + CHUNK >= len(commands)
            chunk = commands[start : start + CHUNK]
            replies = await self._execute(chunk, atomic=last and bool(acks))
        return replies[len(replies) - len(extra) :] if extra else []

    def _commands(self, envelopes: Sequence[Envelope], now: float) -> list[Command]:
        commands: list[Command] = []
        for envelope in envelopes:
            queue = envelope.job.settings.queue_name
            if queue not in self._known_queues:
                self._known_queues.add(queue)
                commands.append(("SADD", (self.keys.queues, queue)))
            stream = self.keys.stream(queue)
            data = encode_message(envelope, stream)
            if envelope.available_at > now:
                commands.append(("ZADD", (self.keys.delayed(queue), envelope.available_at, data)))
            else:
                commands.append(("XADD", (stream, "*", "data", data)))
        return commands

    async def _execute(self, commands: Sequence[Command], *, atomic: bool) -> list[Any]:
        if not commands:
            return []
        with redis_errors(self.backend):
            async with self.client.pipeline(transaction=atomic) as pipe:
                for name, args in commands:
                    pipe.execute_command(name, *args)
                replies: list[Any] = await pipe.execute()
                return replies

    # Looking ----------------------------------------------------------------------------

    async def size(self, queue: str) -> int:
        """Messages of ``queue`` waiting: in the stream and not delivered, or delayed."""
        stream = self.keys.stream(queue)
        with redis_errors(self.backend):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xlen(stream)
                pipe.zcard(self.keys.delayed(queue))
                pipe.xpending(stream, GROUP)
                length, delayed, pending = await pipe.execute(raise_on_error=False)
        if isinstance(pending, ResponseError):  # no worker has created the group yet
            pending = {"pending": 0}
        # Acknowledged entries are deleted, so the stream holds pending + undelivered.
        return int(length) - int(pending["pending"]) + int(delayed)

    async def last_heartbeats(self, queues: Sequence[str]) -> dict[str, float | None]:
        """Seconds since the newest worker heartbeat of each queue (None: never seen).

        Workers that leave take their beat with them (`arvel_flow.brokers.redis.heartbeat`).
        """
        return await read_last_heartbeats(self.client, self.keys, queues, self.backend)

    async def close(self) -> None:
        """Close the client if this transport made it."""
        if self._owns_client:
            await self.client.aclose()
