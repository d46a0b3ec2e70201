"""`TaskiqQueue`: jobs travel through a Taskiq broker (in-memory here; Redis for workers).

Taskiq's `InMemoryBroker` starts a task per message and ignores ``max_async_tasks``,
so this driver enforces the concurrency limit itself: at most ``concurrency`` jobs
are handed to the broker at a time, the rest wait in a local queue, and delayed jobs
(backoffs, releases, ``later``) wait on timers, holding no slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker

from arvel_flow.queue.drivers.base import BaseQueue
from arvel_flow.queue.envelope import Envelope

logger = logging.getLogger(__name__)

TASK_NAME = "arvel_flow.run_envelope"


class TaskiqQueue(BaseQueue):
    """Runs jobs through a Taskiq broker, at most ``concurrency`` at once in this process."""

    def __init__(
        self, broker: AsyncBroker | None = None, *, concurrency: int = 16, **options: Any
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
        self._ready: deque[Envelope] = deque()
        self._local: dict[str, Envelope] = {}
        self._timers: dict[asyncio.Task[None], Envelope] = {}
        self._working: set[asyncio.Task[Any]] = set()
        self._running = 0
        self._started = False
        self._paused = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def size(self, queue_name: str = "default") -> int:
        """Jobs waiting here for a slot or a timer (not those running)."""
        waiting = [*self._ready, *self._local.values(), *self._timers.values()]
        return sum(1 for e in waiting if e.job.settings.queue_name == queue_name)

    async def join(self) -> None:
        """Wait until nothing is running, ready or scheduled here."""
        while self._running or self._ready or self._timers:
            self._idle.clear()
            await self._idle.wait()

    def pause(self) -> None:
        """Stop handing jobs to the broker; running jobs go on, waiting ones stay put.

        What has not run stays unfinished in the store, so the run can be resumed.
        """
        self._paused = True
        for timer in tuple(self._timers):
            timer.cancel()

    def cancel_running(self) -> None:
        """Cancel the jobs running now (a second Ctrl-C); they count as unfinished."""
        for task in tuple(self._working):
            task.cancel()

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
        await super().close()

    async def _send(self, envelopes: Sequence[Envelope]) -> None:
        now = self.clock.now()
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
        if not timer.cancelled() and timer.exception() is not None:
            logger.error("scheduling a delayed job failed", exc_info=timer.exception())
        self._check_idle()

    async def _pump(self) -> None:
        """Hand ready jobs to the broker while there are free slots."""
        if not self._started:
            self._started = True
            await self.broker.startup()
        while self._ready and self._running < self.concurrency and not self._paused:
            envelope = self._ready.popleft()
            self._running += 1
            self._idle.clear()
            if self._in_process:
                self._local[envelope.id] = envelope
                await self._task.kiq(envelope.id)
            else:
                await self._task.kiq(envelope.to_json())

    async def _receive(self, payload: str) -> None:
        """The Taskiq task: run one envelope, then free the slot."""
        task = asyncio.current_task()
        if task is not None:
            self._working.add(task)
        try:
            envelope = self._local.pop(payload) if self._in_process else Envelope.from_json(payload)
            await self.process(envelope)
        except Exception:
            logger.exception("arvel-flow could not process a delivery")
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
