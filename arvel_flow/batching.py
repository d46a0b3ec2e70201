"""`TurnBatcher`: what many tasks submit in one turn of the event loop, handled together.

A worker runs many jobs at once on one event loop, and their calls to Redis come in
waves: each job marks its step, finishes it, acknowledges its message. Sent one by
one, each is a round trip of its own (a connection from the pool, a send, a wait);
handed to a `TurnBatcher`, every call made before the loop turns again goes out as
one, and each caller gets its own answer or its own error. A lone caller waits one
loop turn more, nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Handler = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]
"""Handles a batch: one answer per item, in order; an answer that is an exception is
raised to that item's caller. An exception the handler raises goes to every caller."""


class TurnBatcher(Generic[T, R]):
    """Hands ``handle`` the items submitted in one turn of the event loop, as one batch.

    Args:
        handle: Called once per batch, in a task of its own; batches may overlap.
    """

    def __init__(self, handle: Handler[T, R]) -> None:
        self._handle = handle
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handling: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """``item``'s answer, once the batch it joined is handled (its error raised)."""
        loop = asyncio.get_running_loop()
        if self._pending and loop is not self._loop:
            # Another event loop has a batch waiting: this item goes alone.
            (answer,) = await self._handle([item])
            if isinstance(answer, Exception):
                raise answer
            return answer
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            self._loop = loop
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        batch, self._pending = self._pending, []
        assert self._loop is not None
        task = self._loop.create_task(self._run(batch))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        futures = [future for _, future in batch]
        try:
            answers = await self._handle([item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to a batch of {len(batch)}")
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as error:  # every caller raises it
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            return
        for future, answer in zip(futures, answers, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
