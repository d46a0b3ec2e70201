"""The Redis side of a worker: reading its streams, promoting delays, reclaiming messages.

Reading is ``XREADGROUP`` on a connection of its own. To stop, the worker does not
cancel a blocked read (a reply already on its way would be lost and the messages
left pending until another worker reclaims them); it wakes the read with
``CLIENT UNBLOCK``, which makes it return empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from arvel_flow.brokers.redis.keys import GROUP, StreamKeys
from arvel_flow.brokers.redis.scripts import PROMOTE, RECLAIM
from arvel_flow.brokers.redis.transport import Command
from arvel_flow.redis_support import redis_errors
from arvel_flow.store.urls import mask_url
from arvel_flow.worker.consumer import Delivery

logger = logging.getLogger(__name__)

_PROMOTE_LIMIT = 500


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def is_missing_group(error: ResponseError) -> bool:
    """Whether Redis answered that a stream or its consumer group does not exist."""
    return str(error).startswith("NOGROUP")


class StreamReader:
    """The Redis operations of one worker on the streams of its queues.

    Args:
        url: The Redis server.
        keys: Where streams, delayed sets and heartbeats are.
        queues: The queues this worker reads.
        name: This worker's consumer name in the group.
    """

    def __init__(
        self,
        url: str,
        keys: StreamKeys,
        queues: Sequence[str],
        name: str,
        *,
        block_seconds: float = 5.0,
    ) -> None:
        self.keys = keys
        self.queues = tuple(queues)
        self.streams = tuple(keys.stream(q) for q in self.queues)
        self.name = name
        self.backend = mask_url(url)
        self.block_seconds = block_seconds
        # redis-py times reads out after 5 s by default: longer than a blocked read.
        self._reader = Redis.from_url(
            url,
            single_connection_client=True,
            socket_connect_timeout=5,
            socket_timeout=block_seconds + 5,
        )
        self._control = Redis.from_url(url, socket_connect_timeout=5)
        self._promote = self._control.register_script(PROMOTE)
        self._reclaim = self._control.register_script(RECLAIM)
        self._reader_id: int | None = None
        self._reading = False

    async def open(self) -> None:
        """Create the consumer groups (reading from the start of each stream)."""
        with redis_errors(self.backend):
            await self._control.sadd(self.keys.queues, *self.queues)
            for stream in self.streams:
                try:
                    await self._control.xgroup_create(stream, GROUP, id="0", mkstream=True)
                except ResponseError as error:
                    if "BUSYGROUP" not in str(error):
                        raise
            self._reader_id = int(await self._reader.client_id())

    async def close(self) -> None:
        """Close both connections."""
        await self._reader.aclose()
        await self._control.aclose()

    # Reading ----------------------------------------------------------------------------

    async def read(self, count: int) -> list[Delivery]:
        """New messages, at most ``count``; waits up to ``block_seconds`` for the first."""
        streams: dict[Any, Any] = dict.fromkeys(self.streams, ">")
        self._reading = True
        try:
            with redis_errors(self.backend):
                reply = await self._reader.xreadgroup(
                    GROUP, self.name, streams, count=count, block=int(self.block_seconds * 1000)
                )
        except ResponseError as error:
            if not is_missing_group(error):
                raise
            await self.recreate()
            return []
        finally:
            self._reading = False
        return self.parse_read(reply)

    async def recreate(self) -> None:
        """Create the consumer groups again: Redis lost them (restarted empty, or flushed)."""
        logger.warning(
            "redis lost its data: recreated consumer group %s on %s (messages it held are lost)",
            GROUP,
            ", ".join(self.streams),
        )
        await self.open()

    def read_command(self, count: int) -> Command:
        """A non-blocking `read` of ``count`` messages, to send with other commands."""
        streams = (*self.streams, *(">" for _ in self.streams))
        return ("XREADGROUP", ("GROUP", GROUP, self.name, "COUNT", count, "STREAMS", *streams))

    def parse_read(self, reply: Any) -> list[Delivery]:
        """The deliveries in an ``XREADGROUP`` reply."""
        found: list[Delivery] = []
        for stream, entries in cast(list[Any], reply or []):
            queue = self.keys.queue_of(_text(stream))
            found += [Delivery(queue, _text(i), fields.get(b"data"), 1) for i, fields in entries]
        return found

    async def wake(self) -> None:
        """Make a blocked `read` return at once, with nothing."""
        # The read may not have reached the server yet when the first unblock does.
        while self._reading and self._reader_id is not None:
            try:
                await self._control.client_unblock(self._reader_id)
            except RedisError as error:
                logger.debug("could not unblock the reader: %s", error)
                return
            await asyncio.sleep(0.05)

    async def refresh_reader_id(self) -> None:
        """Learn the reader connection's id again (after it reconnected)."""
        with redis_errors(self.backend):
            self._reader_id = int(await self._reader.client_id())

    # Maintenance ------------------------------------------------------------------------

    async def promote(self, now: float) -> float | None:
        """Move every due delayed message to its stream; the next due time, if any."""
        upcoming: list[float] = []
        with redis_errors(self.backend):
            for queue, stream in zip(self.queues, self.streams, strict=True):
                while True:
                    moved, first = await self._promote(
                        keys=[self.keys.delayed(queue), stream], args=[repr(now), _PROMOTE_LIMIT]
                    )
                    if int(moved) < _PROMOTE_LIMIT:
                        break
                if first:
                    upcoming.append(float(first))
        return min(upcoming, default=None)

    async def reclaim(
        self, *, budget: int, dead_after: float, foreign_idle: float
    ) -> list[Delivery]:
        """Take over, up to ``budget``, the pending messages of dead workers (see `RECLAIM`)."""
        found: list[Delivery] = []
        with redis_errors(self.backend):
            for queue, stream in zip(self.queues, self.streams, strict=True):
                args: list[str | int] = [
                    GROUP,
                    self.name,
                    int(dead_after * 1000),
                    int(foreign_idle * 1000),
                    max(budget, 0),
                ]
                entries = await self._reclaim(keys=[stream, self.keys.consumers(queue)], args=args)
                for message_id, flat, deliveries in entries:
                    fields = dict(zip(flat[::2], flat[1::2], strict=True))
                    data = fields.get(b"data")
                    found.append(Delivery(queue, _text(message_id), data, int(deliveries)))
                budget -= len(entries)
        return found

    async def orphans(self, *, budget: int, idle: float, running: set[str]) -> list[Delivery]:
        """This worker's own pending messages that nothing here is running any more.

        They come from a delivery whose handling failed (Redis went away mid-way) and
        are taken again, which counts as another delivery.
        """
        found: list[Delivery] = []
        if budget <= 0:
            return found
        idle_ms = int(idle * 1000)
        with redis_errors(self.backend):
            for queue, stream in zip(self.queues, self.streams, strict=True):
                pending = cast(
                    list[dict[str, Any]],
                    await self._control.xpending_range(
                        stream, GROUP, "-", "+", budget, consumername=self.name, idle=idle_ms
                    ),
                )
                counts = {
                    _text(p["message_id"]): int(p["times_delivered"])
                    for p in pending
                    if _text(p["message_id"]) not in running
                }
                if not counts:
                    continue
                claimed = await self._control.xclaim(
                    stream, GROUP, self.name, idle_ms, list(counts)
                )
                for message_id, fields in cast(list[Any], claimed):
                    if fields is None:
                        continue
                    key = _text(message_id)
                    found.append(Delivery(queue, key, fields.get(b"data"), counts[key] + 1))
        return found

    async def leave(self) -> bool:
        """Leave the group if nothing is pending here; False when messages are left."""
        with redis_errors(self.backend):
            for stream in self.streams:
                summary = await self._control.xpending_range(
                    stream, GROUP, "-", "+", 1, consumername=self.name
                )
                if summary:
                    return False
            for queue, stream in zip(self.queues, self.streams, strict=True):
                await self._control.xgroup_delconsumer(stream, GROUP, self.name)
                await self._control.zrem(self.keys.consumers(queue), self.name)
        return True
