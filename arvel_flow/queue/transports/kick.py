"""`KickTransport`: envelopes travel through any Taskiq broker, by ``kiq``.

For Taskiq interop: a producer that has only a Taskiq broker sends through it, and
Taskiq's own workers (``taskiq worker module:broker``) run the envelopes through the
queue made with this transport, whose task the transport registers on the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.transport import Attachment, Executor
from arvel_flow.queue.wire import TASK_NAME

logger = logging.getLogger(__name__)


class KickTransport:
    """Sends through any Taskiq broker with ``kiq``; its workers run the jobs.

    No Taskiq broker delays delivery, so delayed envelopes wait on timers in this
    process: they are lost if it exits first. Use Redis for durable delays.

    Args:
        broker: The Taskiq broker; started on the first send, shut down by `close`.
        task: The task to kick; by default the one this transport registers on
            ``broker``, which runs each envelope through the attached queue.
        on_error: Told when a delayed envelope could not be sent; by default the
            failure is logged and the attached queue abandons its runs.
    """

    remote = True

    def __init__(
        self,
        broker: AsyncBroker,
        task: AsyncTaskiqDecoratedTask[Any, Any] | None = None,
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.broker = broker
        self._attachment = Attachment()
        if task is None:

            async def run_envelope(payload: str) -> None:
                await self._receive(payload)

            task = broker.register_task(run_envelope, task_name=TASK_NAME)
        self._task = task
        self._on_error = on_error
        self._started = False
        self._timers: set[asyncio.Task[None]] = set()

    def attach(self, queue: Executor) -> None:
        """Run the envelopes the broker's workers receive through ``queue``."""
        self._attachment.set(queue)

    async def _receive(self, payload: str) -> None:
        """The Taskiq task, in a Taskiq worker: run one envelope (its concurrency is its own)."""
        await self._attachment.queue.process(Envelope.from_json(payload))

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
            return
        logger.error("a delayed job could not be sent; it is lost", exc_info=error)
        if self._attachment.is_set:
            self._attachment.queue.abandon(error)

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
