"""`Outage`: riding through a broker or store that is away for a while.

A Redis restarted or paused for a few seconds, a NATS or RabbitMQ server failing over,
a Redis at its ``maxmemory``: each is an *outage*, the time from the first operation
that failed (`BackendError`) to the first retried one that succeeded. An `Outage`
retries an operation with capped exponential backoff for up to ``grace`` seconds
(``outage_grace``, 30 by default), says once that the backend was lost and once that it
is back, and past ``grace`` gives up with `OutageError` (exit 3).

One `Outage` is shared by every loop of a process (a worker's reading, its jobs'
store writes, its maintenance, its heartbeat thread; ``run``'s dispatching and
following), so an outage is one episode, said once, however many operations it
interrupts. An operation that
never failed does not end the episode by succeeding: a Redis out of memory still
answers reads, and only the write that was refused says when it is taken again.

Retry only what is safe to repeat: reads, and writes that are idempotent or whose
repetition the caller handles (a worker handles a message again as a redelivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from arvel_flow.errors import BackendError, OutageError

T = TypeVar("T")

FIRST_DELAY = 0.1
"""Seconds before the first retry; each retry waits twice as long, up to `MAX_DELAY`."""
MAX_DELAY = 2.0


def compute_retry_delay(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1-based): doubling, capped."""
    return min(FIRST_DELAY * 2.0 ** min(retry - 1, 32), MAX_DELAY)


class Outage:
    """Retries operations while their backend is away, for up to ``grace`` seconds.

    Args:
        grace: Seconds an outage may last before operations give up (``inf``: never).
        say: Called with one line when an outage starts and one when it ends.
        until: When set (the process is stopping), retrying stops: the last failure
            is raised as it was.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        grace: float,
        say: Callable[[str], None],
        *,
        until: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace = grace
        self._say = say
        self._until = until
        self._clock = clock
        self._since: float | None = None
        self._backend = ""
        # `failed` and `recovered` are also called from heartbeat threads.
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether an outage is going on (an operation failed and none retried succeeded)."""
        return self._since is not None

    def failed(self, error: BackendError, since: float | None = None) -> float:
        """Record that an operation begun at ``since`` (default now) failed; the outage's age.

        The first failure of an outage says so.
        """
        now = self._clock()
        with self._lock:
            started = self._since is None
            if self._since is None:
                self._since = now if since is None else since
                self._backend = error.backend
            age = now - self._since
        if started:
            limit = "" if math.isinf(self.grace) else f"; retrying for up to {self.grace:g}s"
            self._say(f"{error}{limit}")
        return age

    def recovered(self) -> None:
        """Record that a retried operation succeeded; ends the outage, saying so."""
        with self._lock:
            ended = self._since is not None
            self._since = None
        if ended:
            self._say(f"{self._backend} is back")

    async def call(
        self, operation: Callable[[], Awaitable[T]], *, after: BackendError | None = None
    ) -> T:
        """The result of ``operation``, retried while it raises `BackendError`.

        ``after`` is the failure of a first attempt made elsewhere: ``operation`` is
        then a retry, made after the first backoff.

        Raises:
            OutageError: The outage lasted longer than ``grace``; its cause is the
                last failure.
            BackendError: The last failure, when `until` was set while retrying.
        """
        retry = 0
        began = self._clock()
        error = after
        while True:
            if error is not None:
                retry += 1
                delay = compute_retry_delay(retry)
                if self.failed(error, began) + delay > self.grace:
                    raise OutageError(error, self.grace) from error
                if await self._stopped_within(delay):
                    raise error
            began = self._clock()
            try:
                result = await operation()
            except OutageError:
                raise
            except BackendError as failure:
                error = failure
                continue
            if retry:
                self.recovered()
            return result

    async def _stopped_within(self, seconds: float) -> bool:
        if self._until is None:
            await asyncio.sleep(seconds)
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._until.wait(), seconds)
        return self._until.is_set()


class Beats:
    """What a periodic call (a heartbeat) reports of an outage: once when it starts
    failing, once when it works again; the calls in between add nothing."""

    def __init__(self, outage: Outage) -> None:
        self._outage = outage
        self._failing = False

    def failed(self, error: BackendError) -> None:
        """This beat failed."""
        self._failing = True
        self._outage.failed(error)

    def succeeded(self) -> None:
        """This beat worked: a failing run of beats has ended."""
        if self._failing:
            self._failing = False
            self._outage.recovered()
