"""`RedisConsumer`: a worker's reading of Redis streams, with heartbeats, reclaiming and delays.

- A message is acknowledged in the same ``MULTI`` that sends what its job dispatched:
  the next step of a chain is sent if and only if the step that led to it is
  acknowledged. Jobs that settle at once share one such ``MULTI``, and fetch their
  next messages in it.
- Heartbeats come from a thread (`Heartbeat`). A worker whose heartbeats stopped is
  dead, and the others take over its pending messages (`RECLAIM`), whether or not new
  work arrives. A live worker's jobs are never taken from it, however long they run.
- Delayed messages (backoffs, releases, ``later``) wait in a sorted set per queue,
  which every worker promotes to the stream when due, atomically (`PROMOTE`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from redis.exceptions import ResponseError

from arvel_flow.batching import TurnBatcher
from arvel_flow.brokers.redis.heartbeat import Heartbeat
from arvel_flow.brokers.redis.presence import Settled, host_load
from arvel_flow.brokers.redis.streams import StreamReader, is_missing_group
from arvel_flow.brokers.redis.transport import CHUNK, Ack, Command, RedisStreamTransport
from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.store.urls import mask_url
from arvel_flow.worker.consumer import Delivery, Host

logger = logging.getLogger(__name__)

Settle = tuple[Delivery, list[Envelope]]
"""A message to acknowledge, and what its job sent."""
_ACK_COMMANDS = 2
"""At most an ``XACK`` and an ``XDEL`` (those of one stream are merged)."""
_MARGIN = 16
"""Room in a ``MULTI`` for the fetch and the ``SADD`` of queues seen the first time."""


class RedisConsumer:
    """Reads the streams of its worker's queues on ``url``; acknowledges through ``transport``.

    Args:
        transport: The worker's queue's transport: it sends what jobs dispatch, and
            acknowledges messages in the same round trip.
        url: The broker's Redis server.
    """

    def __init__(self, transport: RedisStreamTransport, *, url: str) -> None:
        self.transport = transport
        self._url = url
        self._host: Host | None = None
        self._streams: StreamReader | None = None
        self._heartbeat: Heartbeat | None = None
        self._reader_lost = False
        self.settled = Settled()
        self._settling: TurnBatcher[Settle, None] = TurnBatcher(self._settle_together)

    @property
    def where(self) -> str:
        """The Redis server (no password)."""
        return mask_url(self._url)

    def bind(self, host: Host) -> None:
        """Read for ``host``: its name is this consumer's name in the group."""
        options = host.options
        self._host = host
        self._streams = StreamReader(
            self._url,
            self.transport.keys,
            options.queues,
            host.name,
            block_seconds=options.read_block_seconds,
        )
        self._heartbeat = Heartbeat(
            self._url,
            [self.transport.keys.consumers(q) for q in options.queues],
            host.name,
            options.heartbeat_seconds,
            host.outage,
            load=(self.transport.keys.worker(host.name), lambda: host_load(host, self.settled)),
        )

    @property
    def host(self) -> Host:
        """The worker this consumer reads for."""
        assert self._host is not None, "bind the consumer to a worker first"
        return self._host

    @property
    def streams(self) -> StreamReader:
        """The Redis operations on the worker's streams."""
        assert self._streams is not None, "bind the consumer to a worker first"
        return self._streams

    @property
    def heartbeat(self) -> Heartbeat:
        """The thread that proves the worker alive."""
        assert self._heartbeat is not None, "bind the consumer to a worker first"
        return self._heartbeat

    async def open(self) -> None:
        """Create the consumer groups and start beating."""
        try:
            await self.streams.open()
            self.heartbeat.start()
        except BackendError:
            self.heartbeat.close()
            raise

    async def read(self, count: int) -> list[Delivery]:
        """New messages of the worker's streams, at most ``count``."""
        if self._reader_lost:
            # The reader reconnected: CLIENT UNBLOCK needs its new id.
            await self.streams.refresh_reader_id()
            self._reader_lost = False
        try:
            return await self.streams.read(count)
        except BackendError:
            self._reader_lost = True
            raise

    async def wake(self) -> None:
        """Unblock a blocked read."""
        await self.streams.wake()

    def maintenance(self) -> list[Coroutine[Any, Any, None]]:
        """Promoting due delayed messages, and reclaiming those of dead workers."""
        return [self._promote_loop(), self._reclaim_loop()]

    async def leave(self, unfinished: Sequence[Delivery]) -> None:
        """Leave the group; if messages are still pending here, be marked dead at once.

        ``unfinished`` stay pending in the group: other workers take them over.
        """
        # Beats stop first, so that none re-registers this worker after it left.
        await asyncio.to_thread(self.heartbeat.stop)
        left = False
        try:
            left = await self.streams.leave()
        except BackendError as error:
            logger.warning("worker %s could not leave cleanly: %s", self.host.name, error)
        if not left:
            # Messages are still pending here (an abort): others take them at once.
            await asyncio.to_thread(self.heartbeat.mark_dead)
        self.heartbeat.close()

    async def disconnect(self) -> None:
        """Close the reading connections."""
        await self.streams.close()

    async def settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """Send, acknowledge, and take the next message, in one round trip.

        Jobs that settle in the same turn of the event loop share that round trip
        (`TurnBatcher`): one ``MULTI`` acknowledges them all after what they sent, and
        takes as many next messages as they free slots. Taking the next message with
        the acknowledgement saves a chain step the trip through the blocked reader:
        the step just sent is usually the one taken.
        """
        await self._settling.submit((delivery, outbox))

    async def _settle_together(self, settles: list[Settle]) -> list[Exception | None]:
        """Settle ``settles`` in as few ``MULTI`` as fit; a failing one fails its jobs only."""
        host = self.host
        *firsts, last = _one_multi_each(settles)
        answers: list[Exception | None] = []
        for group in firsts:
            try:
                await self._flush(group, ())
            except Exception as error:  # raised by each of these jobs' settle
                answers += [error] * len(group)
            else:
                self._count_settled(group)
                answers += [None] * len(group)
        fetch = () if host.stopping else (self.streams.read_command(len(settles)),)
        try:
            replies = await self._flush(last, fetch)
        except ResponseError as error:
            # The acks and the sends ran (errors in a MULTI do not undo the rest); only
            # the fetch found no group: Redis lost its data while the jobs ran.
            if not is_missing_group(error):
                return [*answers, *[error] * len(last)]
            self._count_settled(last)
            try:
                await self.streams.recreate()
            except Exception as failure:
                return [*answers, *[failure] * len(last)]
            return [*answers, *[None] * len(last)]
        except Exception as error:
            return [*answers, *[error] * len(last)]
        self._count_settled(last)
        for reply in replies:
            for taken in self.streams.parse_read(reply):
                host.start(taken)
        return [*answers, *[None] * len(last)]

    def _count_settled(self, settles: list[Settle]) -> None:
        for delivery, _ in settles:
            self.settled.add(delivery.queue)

    async def _flush(self, settles: list[Settle], fetch: Sequence[Command]) -> list[Any]:
        stream = self.transport.keys.stream
        acks = [Ack(stream(delivery.queue), delivery.message_id) for delivery, _ in settles]
        envelopes = [envelope for _, outbox in settles for envelope in outbox]
        return await self.transport.flush(envelopes, self.host.clock.now(), acks, fetch)

    # Loops ------------------------------------------------------------------------------

    async def _promote_loop(self) -> None:
        host = self.host
        clock = host.clock
        while not host.stopping:
            wait = host.options.promote_seconds
            upcoming = await host.outage.call(lambda: self.streams.promote(clock.now()))
            if upcoming is not None:
                wait = min(wait, max(upcoming - clock.now(), 0.0))
            await host.pause(wait)

    async def _reclaim_loop(self) -> None:
        host = self.host
        while not host.stopping:
            await host.pause(host.options.heartbeat_seconds)
            self.heartbeat.check()
            if not host.stopping:
                await host.outage.call(self._reclaim)

    async def _reclaim(self) -> None:
        """Take over the messages of dead workers, and this worker's own orphans."""
        host = self.host
        options = host.options
        for delivery in await self.streams.reclaim(
            budget=host.free_slots,
            dead_after=options.heartbeat_timeout,
            foreign_idle=options.foreign_timeout,
        ):
            logger.warning(
                "took over %s from a dead worker (delivery %d)",
                delivery.message_id,
                delivery.deliveries,
            )
            host.start(delivery)
        for delivery in await self.streams.orphans(
            budget=host.free_slots,
            idle=max(options.heartbeat_timeout, 5 * options.heartbeat_seconds),
            running={d.message_id for d in host.held},
        ):
            host.start(delivery)


def _one_multi_each(settles: list[Settle]) -> list[list[Settle]]:
    """``settles`` in groups whose commands fit one ``MULTI`` (a job's own never split).

    What one job sends is acknowledged in the same ``MULTI`` as today, however many
    jobs settle with it.
    """
    groups: list[list[Settle]] = [[]]
    size = 0
    for settle in settles:
        cost = len(settle[1]) + _ACK_COMMANDS
        if groups[-1] and size + cost > CHUNK - _MARGIN:
            groups.append([])
            size = 0
        groups[-1].append(settle)
        size += cost
    return groups
