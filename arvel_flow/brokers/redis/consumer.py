"""`RedisWorker`: a worker on Redis streams, with heartbeats, reclaiming and delays.

- A message is acknowledged in the same ``MULTI`` that sends what its job dispatched:
  the next step of a chain is sent if and only if the step that led to it is
  acknowledged.
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

from arvel_flow.brokers.redis.heartbeat import Heartbeat
from arvel_flow.brokers.redis.streams import StreamReader, is_missing_group
from arvel_flow.brokers.redis.transport import Ack, RedisStreamTransport
from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.front import BaseQueue
from arvel_flow.store.urls import mask_url
from arvel_flow.worker.delivery import Delivery
from arvel_flow.worker.worker import Closer, Worker, WorkerOptions

logger = logging.getLogger(__name__)


class RedisWorker(Worker):
    """Reads the streams of its queues on ``url``; sends and acknowledges through ``transport``.

    Args:
        queue: The `TaskiqQueue` whose transport is ``transport``.
        transport: Sends what jobs dispatch, and acknowledges messages with it.
        url: The broker's Redis server.
    """

    def __init__(
        self,
        queue: BaseQueue,
        transport: RedisStreamTransport,
        *,
        url: str,
        options: WorkerOptions,
        name: str | None = None,
        closers: Sequence[Closer] = (),
    ) -> None:
        super().__init__(queue, options=options, name=name, closers=closers)
        self.transport = transport
        self._url = url
        self.streams = StreamReader(
            url,
            transport.keys,
            options.queues,
            self.name,
            block_seconds=options.read_block_seconds,
        )
        self.heartbeat = Heartbeat(
            url,
            [transport.keys.consumers(q) for q in options.queues],
            self.name,
            options.heartbeat_seconds,
            self.outage,
        )
        self._reader_lost = False

    @property
    def where(self) -> str:
        """The Redis server (no password)."""
        return mask_url(self._url)

    async def _open(self) -> None:
        try:
            await self.streams.open()
            self.heartbeat.start()
        except BackendError:
            self.heartbeat.close()
            raise

    async def _read(self, count: int) -> list[Delivery]:
        if self._reader_lost:
            # The reader reconnected: CLIENT UNBLOCK needs its new id.
            await self.streams.refresh_reader_id()
            self._reader_lost = False
        try:
            return await self.streams.read(count)
        except BackendError:
            self._reader_lost = True
            raise

    async def _wake(self) -> None:
        await self.streams.wake()

    def _maintenance(self) -> list[Coroutine[Any, Any, None]]:
        return [self._promote_loop(), self._reclaim_loop()]

    async def _leave(self) -> None:
        # Beats stop first, so that none re-registers this worker after it left.
        await asyncio.to_thread(self.heartbeat.stop)
        left = False
        try:
            left = await self.streams.leave()
        except BackendError as error:
            logger.warning("worker %s could not leave cleanly: %s", self.name, error)
        if not left:
            # Messages are still pending here (an abort): others take them at once.
            await asyncio.to_thread(self.heartbeat.mark_dead)
        self.heartbeat.close()

    async def _disconnect(self) -> None:
        await self.streams.close()

    async def _settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """Send, acknowledge, and take the next message, in one round trip.

        Taking the next message with the acknowledgement saves a chain step the trip
        through the blocked reader: the step just sent is usually the one taken.
        """
        ack = Ack(self.transport.keys.stream(delivery.queue), delivery.message_id)
        fetch = () if self.stopping else (self.streams.read_command(1),)
        try:
            replies = await self.transport.flush(outbox, self.queue.clock.now(), ack, fetch)
        except ResponseError as error:
            # The ack and the sends ran (errors in a MULTI do not undo the rest); only
            # the fetch found no group: Redis lost its data while the job ran.
            if not is_missing_group(error):
                raise
            await self.streams.recreate()
            return
        for reply in replies:
            for taken in self.streams.parse_read(reply):
                self.start(taken)

    # Loops ------------------------------------------------------------------------------

    async def _promote_loop(self) -> None:
        clock = self.queue.clock
        while not self.stopping:
            wait = self.options.promote_seconds
            upcoming = await self.outage.call(lambda: self.streams.promote(clock.now()))
            if upcoming is not None:
                wait = min(wait, max(upcoming - clock.now(), 0.0))
            await self.pause(wait)

    async def _reclaim_loop(self) -> None:
        while not self.stopping:
            await self.pause(self.options.heartbeat_seconds)
            self.heartbeat.check()
            if not self.stopping:
                await self.outage.call(self._reclaim)

    async def _reclaim(self) -> None:
        """Take over the messages of dead workers, and this worker's own orphans."""
        options = self.options
        for delivery in await self.streams.reclaim(
            budget=self.free_slots,
            dead_after=options.heartbeat_timeout,
            foreign_idle=options.foreign_timeout,
        ):
            logger.warning(
                "took over %s from a dead worker (delivery %d)",
                delivery.message_id,
                delivery.deliveries,
            )
            self.start(delivery)
        for delivery in await self.streams.orphans(
            budget=self.free_slots,
            idle=max(options.heartbeat_timeout, 5 * options.heartbeat_seconds),
            running={d.message_id for d in self.held},
        ):
            self.start(delivery)
