"""`LocalTransport`: an asyncio pool that runs jobs in this process, concurrently.

At most ``concurrency`` jobs run at once, in as many tasks (a task runs one job after
another while jobs are ready); the rest wait in a local queue, and delayed jobs
(backoffs, releases, ``later``) wait on timers, holding no slot. Envelopes go straight
to their task: no broker lies between the queue and the pool.

A delivery whose outcome cannot be recorded (the store fails) or that fails for any
other reason stops the run (`Executor.abandon`): nothing more is started, running
jobs are cancelled, and the queue's ``wait`` raises the error, rather than the run
waiting for ever for a step that will not finish. Every failure of a task or timer is
read in its done-callback and handed on there: none is left in an unread task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from arvel_flow.errors import FlowError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.transport import Attachment, Executor

logger = logging.getLogger(__name__)

JOBS_PER_TURN = 8
"""Jobs a slot runs before it yields to the event loop (those that await yield anyway).

A turn of the loop per job was about a tenth of a no-op job's time; one per 8 jobs keeps
timers, commits and Ctrl-C within a fraction of a millisecond of no-op work.
"""


class LocalTransport:
    """Runs envelopes in this process, at most ``concurrency`` at once.

    Args:
        concurrency: Jobs running at once, at least 1.
    """

    remote = False

    def __init__(self, concurrency: int = 16) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._attachment = Attachment()
        self._ready: deque[Envelope] = deque()
        self._timers: dict[asyncio.Task[None], Envelope] = {}
        self._working: set[asyncio.Task[None]] = set()
        self._paused = False
        self._idle = asyncio.Event()
        self._idle.set()

    def attach(self, queue: Executor) -> None:
        """Run envelopes through ``queue``; its ``abandon`` hears of failed deliveries."""
        self._attachment.set(queue)

    # Transport --------------------------------------------------------------------------

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Start each envelope now if a slot is free, or once one is, or after its delay."""
        for envelope in envelopes:
            if envelope.available_at > now:
                timer = asyncio.create_task(self._after(envelope.available_at - now, envelope))
                self._timers[timer] = envelope
                timer.add_done_callback(self._timer_done)
            else:
                self._ready.append(envelope)
        self._pump()

    async def size(self, queue: str) -> int:
        """Jobs waiting here for a slot or a timer (not those running)."""
        waiting = [*self._ready, *self._timers.values()]
        return sum(1 for e in waiting if e.job.settings.queue_name == queue)

    async def close(self) -> None:
        """Start nothing more and let running jobs finish."""
        self.pause()
        await self.drain()

    # Pausable ---------------------------------------------------------------------------

    def pause(self) -> None:
        """Start nothing more; running jobs go on, waiting ones stay put (timers stop)."""
        self._paused = True
        for timer in tuple(self._timers):
            timer.cancel()

    def cancel_running(self) -> None:
        """Cancel the jobs running now (and those given a slot but not yet started)."""
        for task in tuple(self._working):
            task.cancel()

    async def drain(self) -> None:
        """Wait until no job runs here."""
        while self._working:
            self._idle.clear()
            await self._idle.wait()

    async def join(self) -> None:
        """Wait until nothing is running, ready or scheduled here (paused: nothing running)."""
        while self._working or ((self._ready or self._timers) and not self._paused):
            self._idle.clear()
            await self._idle.wait()

    # The pool ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Give ready envelopes a task each while there are free slots."""
        while self._ready and len(self._working) < self.concurrency and not self._paused:
            task = asyncio.create_task(self._run(self._ready.popleft()))
            self._working.add(task)
            self._idle.clear()
            task.add_done_callback(self._task_done)

    async def _run(self, envelope: Envelope) -> None:
        """Run ``envelope``, then the next ready ones while this slot stays needed.

        A task carries on with the next ready envelope rather than ending and another
        starting: one task per slot, not per job, on the hot path of every job. It
        yields to the loop after every `JOBS_PER_TURN` jobs (timers, grouped commits and
        signals run then), and takes the next envelope only after that, so a task
        cancelled there leaves it ready. Between those turns nothing can interrupt
        it: a job that awaits something yields by itself, and one that does not gives
        the loop nothing to do meanwhile.
        """
        ran = 0
        try:
            while True:
                await self._attachment.queue.process(envelope)
                ran += 1
                if ran % JOBS_PER_TURN == 0:
                    await asyncio.sleep(0)
                if not self._ready or self._paused or len(self._working) > self.concurrency:
                    break
                envelope = self._ready.popleft()
        except Exception as error:
            self._fault(error)
        finally:
            # The next job starts now, not a loop turn later in the done-callback.
            self._free(asyncio.current_task())

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Free the slot of a task cancelled before it started; hand on what it raised.

        A cancelled job stays unfinished in the store, to run again on resume.
        """
        if not task.cancelled():
            error = task.exception()  # only what is no Exception gets this far
            if error is not None:
                self._fault(error)
        self._free(task)

    def _free(self, task: asyncio.Task[Any] | None) -> None:
        if task in self._working:
            self._working.discard(task)
            self._pump()
            self._check_idle()

    async def _after(self, delay: float, envelope: Envelope) -> None:
        await self._attachment.queue.clock.sleep(delay)
        self._ready.append(envelope)
        self._pump()

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
        self._attachment.queue.abandon(error)

    def _check_idle(self) -> None:
        # Idle: nothing left at all, or nothing running while paused.
        if not self._working and (self._paused or not (self._ready or self._timers)):
            self._idle.set()
