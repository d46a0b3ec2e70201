"""`Worker`: runs the jobs of Redis streams, at most ``concurrency`` at once.

What it promises (SPEC §2 "Distributed runs"):

- **At least once.** A message is acknowledged only after its job has finished and
  what followed it (the next chain step, a retry, a callback) is written, all in one
  ``MULTI``. A worker killed mid-job leaves its messages pending; the others notice
  its heartbeats stopped and take them over (`RECLAIM`), whether or not new work
  arrives. A live worker's jobs are never taken from it, however long they run.
- **Callbacks once.** Finishing a step and advancing its chain or batch are atomic,
  idempotent store operations, so a job run twice is counted once. If a worker died
  after finishing a step but before sending what came next, the next delivery of
  that message finds the step finished and repairs the run instead of running the
  job again: every unfinished job without a message is sent again.
- **Bounded redelivery.** A message delivered ``max_deliveries`` times without
  finishing fails for good (its workers keep dying on it).
- **Safe reading.** A message that is not an envelope, or names code outside the
  allowed modules, is recorded as failed without importing anything.
- **Graceful stop.** `stop` stops reading, lets running jobs finish, leaves the group
  and returns; `abort` cancels running jobs, whose messages the others take at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from arvel_flow.errors import BackendError, DeliveryLimitError, UnreadableMessageError
from arvel_flow.queue.drivers.redis import Ack, RedisStreamTransport
from arvel_flow.queue.drivers.redis_wire import decode_message
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.worker.heartbeat import Heartbeat
from arvel_flow.worker.refusals import compute_refusal, give_up, record_refusal
from arvel_flow.worker.streams import Delivery, StreamReader

logger = logging.getLogger(__name__)

_READ_COUNT = 100
"""Most messages taken in one read."""

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker reads, beats and reclaims (seconds throughout)."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 16
    allowed_modules: tuple[str, ...] = ()
    heartbeat_seconds: float = 1.0
    heartbeat_timeout: float = 10.0
    foreign_timeout: float = 600.0
    """Idle time after which messages of consumers that send no heartbeat are taken."""
    max_deliveries: int = 5
    read_block_seconds: float = 5.0
    promote_seconds: float = 0.1
    """Longest wait between two promotions of delayed messages."""


def consumer_name() -> str:
    """A name for this worker in the consumer group: host, process id, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[:6]}"


class Worker:
    """Reads messages from the streams of its queues and runs them through ``queue``.

    Args:
        queue: A `TaskiqQueue` whose transport is ``transport``: jobs run through its
            runner and orchestrator, on its (shared) store.
        transport: Sends what jobs dispatch, and acknowledges messages with it.
        url: The broker's Redis server.
        options: Queues, concurrency, allowed modules, timings.
        name: The consumer name (unique per worker); a fresh one by default.
        closers: Called when the worker has stopped, after the queue is closed
            (clients the worker's builder made for it).
    """

    def __init__(
        self,
        queue: TaskiqQueue,
        transport: RedisStreamTransport,
        *,
        url: str,
        options: WorkerOptions,
        name: str | None = None,
        closers: Sequence[Closer] = (),
    ) -> None:
        if not options.allowed_modules:
            raise ValueError("a worker needs allowed module prefixes")
        self.queue = queue
        self.transport = transport
        self.options = options
        self.name = name or consumer_name()
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
        )
        self.aborted = False
        self._closers = tuple(closers)
        self._running: dict[str, asyncio.Task[None]] = {}
        # Taken over while every slot was busy: they wait here, pending under this name.
        self._backlog: deque[Delivery] = deque()
        self._waking: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()

    # Lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stop` (or `abort`), then close the queue.

        Raises:
            BackendError: Redis cannot be reached at start.
        """
        try:
            await self.streams.open()
            self.heartbeat.start()
        except BackendError:
            self.heartbeat.close()
            await self._close()
            raise
        loops = [
            asyncio.create_task(self._read_loop(), name="read"),
            asyncio.create_task(self._promote_loop(), name="promote"),
            asyncio.create_task(self._reclaim_loop(), name="reclaim"),
        ]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            failed = [task for task in done if task.exception() is not None]
            if failed:
                self.stop()
                await asyncio.wait(loops)
            await self._drain()
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
        finally:
            await self._leave()

    def stop(self) -> None:
        """Stop reading and let running jobs finish; `run` then returns."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._slot_free.set()
        self._waking = asyncio.get_running_loop().create_task(self.streams.wake())

    def abort(self) -> None:
        """Stop now: cancel running jobs; their messages go to other workers at once."""
        self.aborted = True
        self.stop()
        for task in tuple(self._running.values()):
            task.cancel()

    async def _drain(self) -> None:
        while self._running:
            await asyncio.wait(tuple(self._running.values()))

    async def _leave(self) -> None:
        if self._waking is not None:
            await self._waking
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
        await self._close()

    async def _close(self) -> None:
        await self.streams.close()
        await self.queue.close()
        for close in self._closers:
            await close()

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # Loops ------------------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        """Jobs this worker can take on now."""
        return self.options.concurrency - len(self._running) - len(self._backlog)

    async def _read_loop(self) -> None:
        while not self._stopping.is_set():
            if self.free_slots <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                deliveries = await self.streams.read(min(self.free_slots, _READ_COUNT))
            except BackendError as error:
                logger.warning("reading failed, retrying in 1s: %s", error)
                await self._pause(1.0)
                await self._retry(self.streams.refresh_reader_id())
                continue
            for delivery in deliveries:
                self._start(delivery)

    async def _promote_loop(self) -> None:
        clock = self.queue.clock
        while not self._stopping.is_set():
            wait = self.options.promote_seconds
            try:
                upcoming = await self.streams.promote(clock.now())
            except BackendError as error:
                logger.warning("promoting delayed jobs failed: %s", error)
                upcoming = None
            if upcoming is not None:
                wait = min(wait, max(upcoming - clock.now(), 0.0))
            await self._pause(wait)

    async def _reclaim_loop(self) -> None:
        options = self.options
        while not self._stopping.is_set():
            await self._pause(options.heartbeat_seconds)
            if self._stopping.is_set():
                break
            try:
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
                    self._start(delivery)
                for delivery in await self.streams.orphans(
                    budget=self.free_slots,
                    idle=max(options.heartbeat_timeout, 5 * options.heartbeat_seconds),
                    running={*self._running, *(d.message_id for d in self._backlog)},
                ):
                    self._start(delivery)
            except BackendError as error:
                logger.warning("reclaiming failed: %s", error)

    async def _retry(self, operation: Awaitable[None]) -> None:
        try:
            await operation
        except BackendError as error:
            logger.debug("still failing: %s", error)

    # Handling one message ---------------------------------------------------------------

    def _start(self, delivery: Delivery) -> None:
        if len(self._running) >= self.options.concurrency:
            self._backlog.append(delivery)
            return
        self._running[delivery.message_id] = asyncio.create_task(self._handle(delivery))

    async def _handle(self, delivery: Delivery) -> None:
        try:
            await self._deliver(delivery)
        except BackendError as error:
            # Left pending: taken again later as an orphan (another delivery).
            logger.warning("message %s left pending: %s", delivery.message_id, error)
        except Exception:
            # A bug: left pending as well, so the delivery cap ends it at worst.
            logger.exception("message %s could not be handled", delivery.message_id)
        finally:
            self._running.pop(delivery.message_id, None)
            if self._backlog and not self._stopping.is_set():
                self._start(self._backlog.popleft())
            self._slot_free.set()

    async def _deliver(self, delivery: Delivery) -> None:
        ack = Ack(delivery.stream, delivery.message_id)
        queue_name = self.transport.keys.queue_of(delivery.stream)
        try:
            envelope = decode_message(delivery.data)
        except UnreadableMessageError as error:
            await self._refuse(ack, error, None, queue_name)
            return
        refusal = compute_refusal(envelope, self.options.allowed_modules)
        if refusal is not None:
            await self._refuse(ack, refusal, envelope, queue_name)
        elif delivery.deliveries > self.options.max_deliveries:
            limit = DeliveryLimitError(delivery.deliveries)
            await self._finish_with(ack, give_up(self.queue, envelope, limit))
        elif delivery.deliveries > 1 and await self._finished_already(envelope):
            await self._repair(ack, envelope)
        else:
            await self._process(ack, envelope, queue_name)

    async def _process(self, ack: Ack, envelope: Envelope, queue_name: str) -> None:
        with self.transport.collect() as outbox:
            try:
                await self.queue.process(envelope)
            except BackendError:
                raise
            except Exception as error:
                # An envelope that decoded but cannot be run (a setting of a wrong type).
                logger.exception("job %s could not be processed", envelope.label)
                failure: Exception | None = error
            else:
                failure = None
        if failure is not None:
            await self._refuse(ack, failure, envelope, queue_name)
            return
        await self._flush(outbox, ack)

    async def _refuse(
        self, ack: Ack, error: Exception, envelope: Envelope | None, queue_name: str
    ) -> None:
        await self._finish_with(
            ack, record_refusal(self.queue, error, envelope=envelope, queue_name=queue_name)
        )

    async def _finish_with(self, ack: Ack, operation: Awaitable[None]) -> None:
        """Run ``operation``, then send what it dispatched together with the ack."""
        with self.transport.collect() as outbox:
            await operation
        await self._flush(outbox, ack)

    async def _finished_already(self, envelope: Envelope) -> bool:
        if envelope.run_id is None or envelope.step is None:
            return False
        records = await self.queue.store.get_steps(envelope.run_id, [envelope.step])
        record = records.get(envelope.step)
        return record is not None and record.final

    async def _repair(self, ack: Ack, envelope: Envelope) -> None:
        """Send again what the run lost when a worker died between finishing and sending."""
        assert envelope.run_id is not None
        logger.warning(
            "step %s had finished when its worker died; repairing run %s",
            envelope.step,
            envelope.run_id,
        )
        with self.transport.collect() as outbox, self.transport.repairing():
            await self.queue.resume(envelope.run_id)
        await self._flush(outbox, ack)

    async def _flush(self, outbox: list[Envelope], ack: Ack) -> None:
        """Send what the job dispatched, acknowledge it, and take the next message.

        Taking the next message in the same round trip saves a chain step the trip
        through the blocked reader: the step just sent is usually the one taken.
        """
        fetch = () if self._stopping.is_set() else (self.streams.read_command(1),)
        replies = await self.transport.flush(outbox, self.queue.clock.now(), ack, fetch)
        for reply in replies:
            for delivery in self.streams.parse_read(reply):
                self._start(delivery)
