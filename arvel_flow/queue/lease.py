"""Keeping a lease alive: a task that renews it every few seconds while its holder works.

A lease (a run's owner lease, a claim on a failed job) is taken for a few times the
renewal interval, so that a holder that dies lets it go soon, and one that lives keeps
it. The first renewal that fails ends the keeper, and its error is raised in the work
the lease guards (`LeaseKeeper.guard`): a lease taken over by another process, or a
store that failed, is never swallowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Renew = Callable[[], Awaitable[bool]]
"""Renews the lease: True to go on, False when it is no longer needed (let go); raises
when it cannot be renewed (lost to another holder, store failure)."""


class LeaseKeeper:
    """Calls ``renew`` every ``interval`` seconds from a task of its own, until stopped.

    Args:
        renew: Renews the lease (see `Renew`).
        interval: Seconds between renewals, in real time.
        on_lost: Called once with the error of the first renewal that failed (to stop
            dispatching, say); the error is also raised by `guard`.
        name: The task's name, for debugging.
    """

    def __init__(
        self,
        renew: Renew,
        interval: float,
        *,
        on_lost: Callable[[BaseException], None] | None = None,
        name: str = "lease keeper",
    ) -> None:
        self._renew = renew
        self.interval = interval
        self._on_lost = on_lost
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        """The error of the renewal that failed, once one has."""
        self._lost = asyncio.Event()

    def start(self) -> None:
        """Start renewing (the caller has taken the lease already)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop renewing; returns once no renewal is in progress."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait({task})

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work``; if the lease is lost first, cancel it and raise the loss instead.

        Work that finished (with its value or its own error) ends as it did, even when
        the lease was lost meanwhile: it did not depend on the lease any more.
        """
        doing = asyncio.ensure_future(work)
        losing = asyncio.create_task(self._lost.wait())
        try:
            await asyncio.wait({doing, losing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            losing.cancel()
            if not doing.done():
                doing.cancel()
                await asyncio.wait({doing})
        if not doing.cancelled():
            return doing.result()
        if self.error is not None:
            raise self.error
        raise asyncio.CancelledError

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                if not await self._renew():
                    return
            except Exception as error:  # raised again by guard(), never swallowed
                self.error = error
                self._lost.set()
                if self._on_lost is not None:
                    self._on_lost(error)
                return
