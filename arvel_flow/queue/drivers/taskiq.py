"""`TaskiqQueue`: jobs travel through a Taskiq broker (in-memory here; Redis for workers).

In process (``InMemoryBroker``): Taskiq's `InMemoryBroker` starts a task per message
and ignores ``max_async_tasks``, so this driver enforces the concurrency limit itself:
at most ``concurrency`` jobs are handed to the broker at a time, the rest wait in a
local queue, and delayed jobs (backoffs, releases, ``later``) wait on timers, holding
no slot. A delivery whose outcome cannot be recorded (the store fails) or that fails
for any other reason stops the run (`abandon`): nothing more is dispatched, running
jobs are cancelled, and `wait` raises the error, rather than the run waiting for ever
for a step that will not finish.

Across processes (any other broker): envelopes go to a `Transport` and are run by
``arvel-flow worker`` processes, whose concurrency is theirs. On a
``RedisStreamBroker`` that is `RedisStreamTransport`: streams per queue, and delayed
jobs in Redis, promoted by the workers. Other brokers get `KickTransport`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, InMemoryBroker

from arvel_flow.errors import FlowError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.front import BaseQueue
from arvel_flow.queue.wire import TASK_NAME

logger = logging.getLogger(__name__)


class Transport(Protocol):
    """How envelopes leave this process for workers elsewhere."""

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Send each envelope, to run at its ``available_at``."""
        ...

    async def size(self, queue: str) -> int:
        """Messages of ``queue`` waiting to run (delayed ones included)."""
        ...

    async def close(self) -> None:
        """Release connections and timers."""
        ...


class TaskiqQueue(BaseQueue):
    """Runs jobs through a Taskiq broker: here, or in ``arvel-flow worker`` processes.

    Args:
        broker: ``InMemoryBroker`` (the default) runs jobs in this process, at most
            ``concurrency`` at once. Any other broker sends them to workers.
        concurrency: The in-process limit (workers have their own).
        transport: How envelopes reach workers; by default `RedisStreamTransport` for
            a ``RedisStreamBroker`` and `KickTransport` for other brokers.
    """

    def __init__(
        self,
        broker: AsyncBroker | None = None,
        *,
        concurrency: int = 16,
        transport: Transport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.broker = broker if broker is not None else InMemoryBroker(max_stored_results=1)
        self.concurrency = concurrency
        self._in_process = isinstance(self.broker, InMemoryBroker)

        async def run_envelope(payload: str) -> None:
            await self._receive(payload)

        self._task = self.broker.register_task(run_envelope, task_name=TASK_NAME)
        self.transport = transport
        if transport is None and not self._in_process:
            self.transport = _transport_for(self.broker, self._task, self._fault)
        self._ready: deque[Envelope] = deque()
        self._local: dict[str, Envelope] = {}
        self._timers: dict[asyncio.Task[None], Envelope] = {}
        self._working: set[asyncio.Task[Any]] = set()
        self._running = 0
        self._started = False
        self._paused = False
        self._cancelled = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def sends_remotely(self) -> bool:
        """Whether jobs go to workers through a broker rather than run here."""
        return self.transport is not None

    async def size(self, queue_name: str = "default") -> int:
        """Jobs waiting here for a slot or a timer (not those running), or in the broker."""
        if self.transport is not None:
            return await self.transport.size(queue_name)
        waiting = [*self._ready, *self._local.values(), *self._timers.values()]
        return sum(1 for e in waiting if e.job.settings.queue_name == queue_name)

    async def join(self) -> None:
        """Wait until nothing is running, ready or scheduled here (paused: nothing running).

        Raises:
            BaseException: The error the queue stopped for (see `abandon`): what is
                left here will not run.
        """
        while self._running or ((self._ready or self._timers) and not self._paused):
            self._idle.clear()
            await self._idle.wait()
        if self.orchestrator.abandoned is not None:
            raise self.orchestrator.abandoned

    @property
    def executes_in_place(self) -> bool:
        """True for the in-process broker; with a transport, workers run the jobs."""
        return self.transport is None

    def stop_dispatching(self) -> None:
        """Start nothing more and cancel the jobs running here: the run was taken over.

        Cancelled jobs stay unfinished in the store (the new owner runs them); letting
        them finish would advance the run here, into a queue that sends nothing more.
        """
        self.pause()
        self.cancel_running()

    def pause(self) -> None:
        """Stop handing jobs to the broker; running jobs go on, waiting ones stay put.

        What has not run stays unfinished in the store, so the run can be resumed.
        """
        self._paused = True
        for timer in tuple(self._timers):
            timer.cancel()

    def cancel_running(self) -> None:
        """Cancel the jobs running now (a second Ctrl-C); they count as unfinished."""
        self._cancelled = True
        for task in tuple(self._working):
            task.cancel()

    def abandon(self, error: BaseException) -> None:
        """Stop the runs here because of ``error``: dispatch nothing more, cancel running jobs.

        What they would record could not be: they stay unfinished in the store, to run
        again on resume.
        """
        self.pause()
        self.cancel_running()
        super().abandon(error)

    async def drain(self) -> None:
        """Wait until no job runs here."""
        while self._running:
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        """Stop dispatching, let running jobs finish, shut the broker down, close the store."""
        self.pause()
        await self.drain()
        if self._started:
            await self.broker.shutdown()
        if self.transport is not None:
            await self.transport.close()
        await super().close()

    async def _send(self, envelopes: Sequence[Envelope]) -> None:
        now = self.clock.now()
        if self.transport is not None:
            await self.transport.send(envelopes, now)
            return
        for envelope in envelopes:
            if envelope.available_at > now:
                timer = asyncio.create_task(self._after(envelope.available_at - now, envelope))
                self._timers[timer] = envelope
                timer.add_done_callback(self._timer_done)
            else:
                self._ready.append(envelope)
        await self._pump()

    async def _after(self, delay: float, envelope: Envelope) -> None:
        await self.clock.sleep(delay)
        self._ready.append(envelope)
        await self._pump()

    def _timer_done(self, timer: asyncio.Task[None]) -> None:
        self._timers.pop(timer, None)
        if not timer.cancelled():
            error = timer.exception()
            if error is not None:
                self._fault(error)
        self._check_idle()

    def _fault(self, error: BaseException) -> None:
        """A delivery failed outside any caller: stop the run, so that its owner hears of it.

        A `FlowError` (a store that cannot be written) is the owner's to show, once;
        anything else is a bug, logged here with its traceback.
        """
        if not isinstance(error, FlowError):
            logger.error("arvel-flow could not process a delivery", exc_info=error)
        self.abandon(error)

    async def _pump(self) -> None:
        """Hand ready jobs to the broker while there are free slots."""
        if not self._started:
            self._started = True
            await self.broker.startup()
        while self._ready and self._running < self.concurrency and not self._paused:
            envelope = self._ready.popleft()
            self._running += 1
            self._idle.clear()
            self._local[envelope.id] = envelope
            await self._task.kiq(envelope.id)

    async def _receive(self, payload: str) -> None:
        """The Taskiq task: run one envelope, then free the slot."""
        if not self._in_process:
            # A Taskiq worker of another broker: its concurrency is its own.
            await self.process(Envelope.from_json(payload))
            return
        task = asyncio.current_task()
        if task is not None:
            self._working.add(task)
        try:
            envelope = self._local.pop(payload)
            if self._cancelled:
                # Handed to the broker before running jobs were cancelled: it stays
                # unfinished in the store, like them.
                return
            await self.process(envelope)
        except asyncio.CancelledError:
            # Cancelled on purpose (a second Ctrl-C): the job stays unfinished in the
            # store, to run again on resume. Ending quietly keeps Taskiq from logging
            # each one as a crash.
            if not self._cancelled:
                raise
        except Exception as error:
            self._fault(error)
        finally:
            if task is not None:
                self._working.discard(task)
            self._running -= 1
            await self._pump()
            self._check_idle()

    def _check_idle(self) -> None:
        # Idle: nothing left at all, or nothing running while paused.
        if not self._running and (self._paused or not (self._ready or self._timers)):
            self._idle.set()


def _transport_for(
    broker: AsyncBroker,
    task: AsyncTaskiqDecoratedTask[Any, Any],
    on_error: Callable[[BaseException], None],
) -> Transport:
    from taskiq_redis import RedisStreamBroker

    if isinstance(broker, RedisStreamBroker):
        from arvel_flow.brokers.redis.transport import RedisStreamTransport

        return RedisStreamTransport.for_broker(broker)
    return KickTransport(broker, task, on_error=on_error)


class KickTransport:
    """Sends through any Taskiq broker with ``kiq``.

    No Taskiq broker delays delivery, so delayed envelopes wait on timers in this
    process: they are lost if it exits first. Use Redis for durable delays.

    Args:
        on_error: Told when a delayed envelope could not be sent (the queue stops its
            run); by default the failure is logged.
    """

    def __init__(
        self,
        broker: AsyncBroker,
        task: AsyncTaskiqDecoratedTask[Any, Any],
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.broker = broker
        self._task = task
        self._on_error = on_error
        self._started = False
        self._timers: set[asyncio.Task[None]] = set()

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """``kiq`` each envelope now, or after its delay."""
        for envelope in envelopes:
            if envelope.available_at > now:
                timer = asyncio.create_task(self._later(envelope.available_at - now, envelope))
                self._timers.add(timer)
                timer.add_done_callback(self._timer_done)
            else:
                await self._kick(envelope)

    def _timer_done(self, timer: asyncio.Task[None]) -> None:
        self._timers.discard(timer)
        if timer.cancelled():
            return
        error = timer.exception()
        if error is None:
            return
        if self._on_error is not None:
            self._on_error(error)
        else:
            logger.error("a delayed job could not be sent; it is lost", exc_info=error)

    async def _later(self, delay: float, envelope: Envelope) -> None:
        await asyncio.sleep(delay)
        await self._kick(envelope)

    async def _kick(self, envelope: Envelope) -> None:
        if not self._started:
            self._started = True
            await self.broker.startup()
        labels = {"queue_name": envelope.job.settings.queue_name}
        await self._task.kicker().with_labels(**labels).kiq(envelope.to_json())

    async def size(self, queue: str) -> int:
        """Only the delayed envelopes waiting here are known."""
        return len(self._timers)

    async def close(self) -> None:
        """Cancel the timers (their envelopes are lost) and stop the broker."""
        for timer in tuple(self._timers):
            timer.cancel()
        if self._started:
            await self.broker.shutdown()
