"""`Worker`: runs the jobs its consumer delivers, at most ``concurrency`` at once.

What every worker promises (SPEC §2 "Distributed runs"), whatever its broker:

- **At least once.** A message is acknowledged only after its job has finished and
  what followed it (the next chain step, a retry, a callback) has been sent. A worker
  killed mid-job leaves its messages unacknowledged, and the broker hands them to
  another worker once it sees this one is gone (how it sees that is the broker's:
  `arvel_flow.brokers.redis.consumer`, `arvel_flow.brokers.nats.consumer`,
  `arvel_flow.brokers.rabbitmq.consumer`).
- **Callbacks once.** Finishing a step and advancing its chain or batch are atomic,
  idempotent store operations, so a job run twice is counted once. If a worker died
  after finishing a step but before sending what came next, the next delivery of
  that message finds the step finished and repairs the run instead of running the
  job again: unfinished jobs are sent again, and a step runs only from the first of
  its messages to arrive (`_first_copy`).
- **Bounded redelivery.** A message delivered ``max_deliveries`` times without
  finishing fails for good (its workers keep dying on it).
- **Safe reading.** A message that is not an envelope, or names anything the
  allowlist refuses (`arvel_flow.queue.allowlist`), is recorded as failed without
  importing anything outside the allowed modules.
- **Graceful stop.** `stop` stops reading, lets running jobs finish, leaves and
  returns; `abort` cancels running jobs, whose messages go to other workers.
- **Outages ridden through.** Reading, maintenance, and handling a message all retry
  through one `Outage` (said once, and once when the broker or store is back). A
  message whose handling an outage interrupted is handled again once it is over, as a
  redelivery (a step it finished is not run again). Past ``outage_grace`` seconds the
  worker stops, and `run` raises `OutageError` (exit 3).

`Worker` holds all of that, for any broker: it is composed with a `Consumer`
(`arvel_flow.worker.consumer`) that reads, acknowledges and leaves, the way Dramatiq's
worker consumes from any broker. `arvel_flow.worker.stub` is a consumer in memory,
for tests of these rules without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from arvel_flow.errors import (
    BackendError,
    DeliveryLimitError,
    OutageError,
    UnreadableMessageError,
)
from arvel_flow.outage import Outage
from arvel_flow.queue import outbox as outboxes
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.envelope import Envelope, delivery_mark, new_id
from arvel_flow.queue.front import Queue
from arvel_flow.queue.wire import decode_message
from arvel_flow.worker.consumer import Consumer, Delivery
from arvel_flow.worker.options import WorkerOptions
from arvel_flow.worker.refusals import compute_refusal, give_up, record_refusal

logger = logging.getLogger(__name__)

READ_COUNT = 100
"""Most messages taken in one read."""
COPY_MARK_SECONDS = 86_400.0
"""How long the mark of a step's first message is kept (see `Worker._first_copy`)."""

Closer = Callable[[], Awaitable[None]]


def consumer_name() -> str:
    """A name for this worker: host, process id, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[:6]}"


class Worker:
    """Runs the messages ``consumer`` delivers through ``queue``.

    Args:
        queue: A queue sending through the consumer's broker: jobs run through its
            runner and orchestrator, on its (shared) store.
        consumer: The broker's side: reads, settles, wakes, leaves (it is bound to
            this worker here).
        options: Queues, concurrency, allowed modules, timings.
        name: The worker's name (unique per worker); a fresh one by default.
        closers: Called when the worker has stopped, after the queue is closed
            (clients the worker's builder made for it).
    """

    def __init__(
        self,
        queue: Queue,
        consumer: Consumer,
        *,
        options: WorkerOptions,
        name: str | None = None,
        closers: Sequence[Closer] = (),
    ) -> None:
        if not options.allowed_modules:
            raise ValueError("a worker needs allowed module prefixes")
        self.queue = queue
        self.consumer = consumer
        self.options = options
        self.name = name or consumer_name()
        self.aborted = False
        self.ready = asyncio.Event()
        """Set once the worker is connected and reading."""
        self._closers = tuple(closers)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._current: dict[str, Delivery] = {}
        # Taken over while every slot was busy: they wait here, held by this worker.
        self._backlog: deque[Delivery] = deque()
        # Running when an abort cancelled them: handed back when the worker leaves.
        self._cancelled: list[Delivery] = []
        self._waking: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self.outage = Outage(options.outage_grace, logger.warning, until=self._stopping)
        """Every broker and store call of this worker rides through outages with it."""
        self._gave_up: OutageError | None = None
        consumer.bind(self)

    @property
    def where(self) -> str:
        """The broker, for people (no password)."""
        return self.consumer.where

    @property
    def clock(self) -> Clock:
        """The queue's clock."""
        return self.queue.clock

    # Lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `stop` (or `abort`), then close the queue.

        Raises:
            BackendError: The broker cannot be reached at start.
            OutageError: The broker or the store was away longer than ``outage_grace``.
        """
        try:
            await self.consumer.open()
        except BackendError:
            await self._close()
            raise
        self.ready.set()
        loops = [asyncio.create_task(self._read_loop(), name="read")]
        loops += [asyncio.create_task(loop) for loop in self.consumer.maintenance()]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            if any(self._failure_of(task) for task in done):
                self.stop()
            await asyncio.wait(loops)
            await self._drain()
            # Every loop's failure is retrieved, the first raised: none goes unseen.
            failures = [error for task in loops if (error := self._failure_of(task))]
            if failures:
                raise failures[0]
            if self._gave_up is not None:
                raise self._gave_up
        finally:
            if self._waking is not None:
                await self._waking
            await self.consumer.leave(self._unfinished())
            await self._close()

    def _failure_of(self, loop: asyncio.Task[None]) -> BaseException | None:
        """Why ``loop`` ended, if it failed; a backend failing while stopping is no failure."""
        error = loop.exception()
        stopped = isinstance(error, BackendError) and not isinstance(error, OutageError)
        return None if stopped and self.stopping else error

    def give_up(self, error: OutageError) -> None:
        """Stop because an outage lasted too long; `run` raises ``error`` once stopped."""
        if self._gave_up is None:
            self._gave_up = error
        self.stop()

    def stop(self) -> None:
        """Stop reading and let running jobs finish; `run` then returns."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._slot_free.set()
        self._waking = asyncio.get_running_loop().create_task(self.consumer.wake())

    def abort(self) -> None:
        """Stop now: cancel running jobs; their messages go to other workers."""
        self.aborted = True
        self._cancelled = list(self._current.values())
        self.stop()
        for task in tuple(self._running.values()):
            task.cancel()

    @property
    def stopping(self) -> bool:
        """Whether `stop` (or `abort`) was called."""
        return self._stopping.is_set()

    async def _drain(self) -> None:
        while self._running:
            await asyncio.wait(tuple(self._running.values()))

    def _unfinished(self) -> list[Delivery]:
        """What was taken here and not run to the end: cancelled, or waiting for a slot."""
        unfinished = {d.message_id: d for d in (*self._cancelled, *self.held)}
        return list(unfinished.values())

    async def _close(self) -> None:
        await self.consumer.disconnect()
        await self.queue.close()
        for close in self._closers:
            await close()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # Slots ------------------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        """Jobs this worker can take on now."""
        return self.options.concurrency - len(self._running) - len(self._backlog)

    @property
    def held(self) -> list[Delivery]:
        """The messages running or waiting for a slot here."""
        return [*self._current.values(), *self._backlog]

    def start(self, delivery: Delivery) -> None:
        """Run ``delivery`` now, or as soon as a slot is free."""
        if len(self._running) >= self.options.concurrency:
            self._backlog.append(delivery)
            return
        self._current[delivery.message_id] = delivery
        task = asyncio.create_task(self._handle(delivery))
        self._running[delivery.message_id] = task
        # A callback, not a `finally`: a task cancelled before its first step (an
        # abort) never runs its body, and would stay in `_running` for ever.
        task.add_done_callback(lambda _: self._finished(delivery))

    async def _read_loop(self) -> None:
        while not self._stopping.is_set():
            if self.free_slots <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            count = min(self.free_slots, READ_COUNT)
            deliveries = await self.outage.call(functools.partial(self.consumer.read, count))
            if self._stopping.is_set():
                # Read while stopping: not run here, handed back on leaving.
                self._backlog.extend(deliveries)
                continue
            for delivery in deliveries:
                self.start(delivery)

    # Handling one message ---------------------------------------------------------------

    async def _handle(self, delivery: Delivery) -> None:
        try:
            try:
                await self._deliver(delivery)
            except OutageError:
                raise
            except BackendError as error:
                # An outage: handled again once it is over, as a redelivery.
                await self.outage.call(lambda: self._deliver(delivery, again=True), after=error)
        except OutageError as error:
            logger.warning("message %s left unacknowledged: %s", delivery.message_id, error)
            self.give_up(error)
        except BackendError as error:
            # Stopping during an outage: the broker delivers it again (another delivery).
            logger.warning("message %s left unacknowledged: %s", delivery.message_id, error)
        except Exception:
            # A bug: left unacknowledged as well, so the delivery cap ends it at worst.
            logger.exception("message %s could not be handled", delivery.message_id)

    def _finished(self, delivery: Delivery) -> None:
        """Free the slot of ``delivery``, and give it to a message waiting for one."""
        self._running.pop(delivery.message_id, None)
        self._current.pop(delivery.message_id, None)
        if self._backlog and not self._stopping.is_set():
            self.start(self._backlog.popleft())
        self._slot_free.set()

    async def _deliver(self, delivery: Delivery, *, again: bool = False) -> None:
        """Handle ``delivery``; ``again`` after an outage interrupted it (like a redelivery)."""
        try:
            envelope = decode_message(delivery.data)
        except UnreadableMessageError as error:
            await self._refuse(delivery, error, None)
            return
        refusal = compute_refusal(envelope, self.options.allowed_modules)
        if refusal is not None:
            await self._refuse(delivery, refusal, envelope)
        elif delivery.deliveries > self.options.max_deliveries:
            limit = DeliveryLimitError(delivery.deliveries)
            await self._finish_with(delivery, give_up(self.queue, envelope, limit))
        elif (again or delivery.deliveries > 1) and await self._finished_already(envelope):
            await self._repair(delivery, envelope)
        elif not await self._first_copy(envelope):
            logger.info("dropped a copy of %s: another message of it ran", envelope.label)
            await self.consumer.settle(delivery, [])
        else:
            await self._process(delivery, envelope)

    async def _first_copy(self, envelope: Envelope) -> bool:
        """Whether ``envelope`` is the message its step runs from.

        A repair, or ``run --resume`` of a run that is still going, sends every
        unfinished step again, some of which still have a message on its way: no broker
        can be searched for it cheaply. So the first envelope of a step to arrive takes
        the step's mark (a lock in the shared store, kept `COPY_MARK_SECONDS`); later
        deliveries of that envelope (retries, releases, redeliveries) run, other copies
        of the step are acknowledged without running.
        """
        if envelope.run_id is None or envelope.step is None:
            return True
        key = delivery_mark(envelope.run_id, envelope.step)
        lock = self.queue.lock
        if await lock.acquire(key, envelope.id, COPY_MARK_SECONDS):
            return True
        return await lock.owner(key) in (envelope.id, None)

    async def _process(self, delivery: Delivery, envelope: Envelope) -> None:
        with outboxes.collect() as outbox:
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
            await self._refuse(delivery, failure, envelope)
            return
        await self.consumer.settle(delivery, outbox)

    async def _refuse(
        self, delivery: Delivery, error: Exception, envelope: Envelope | None
    ) -> None:
        refused = record_refusal(self.queue, error, envelope=envelope, queue_name=delivery.queue)
        await self._finish_with(delivery, refused)

    async def _finish_with(self, delivery: Delivery, operation: Awaitable[None]) -> None:
        """Run ``operation``, then send what it dispatched and acknowledge."""
        with outboxes.collect() as outbox:
            await operation
        await self.consumer.settle(delivery, outbox)

    async def _finished_already(self, envelope: Envelope) -> bool:
        if envelope.run_id is None or envelope.step is None:
            return False
        records = await self.queue.store.get_steps(envelope.run_id, [envelope.step])
        record = records.get(envelope.step)
        return record is not None and record.final

    async def _repair(self, delivery: Delivery, envelope: Envelope) -> None:
        """Send again what the run lost when a worker died between finishing and sending."""
        assert envelope.run_id is not None
        logger.warning(
            "step %s had finished, its message was not acknowledged; repairing run %s",
            envelope.step,
            envelope.run_id,
        )
        with outboxes.collect() as outbox:
            await self.queue.resume(envelope.run_id)
        await self.consumer.settle(delivery, outbox)
