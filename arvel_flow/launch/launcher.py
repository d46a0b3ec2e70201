"""`Launcher`: starts or resumes a run on a queue and follows it until it ends or stops.

Interrupting (Ctrl-C when the launcher handles signals, or `Launcher.interrupt`): the
first stops dispatching and lets running jobs finish; a second cancels them. Either
way the run is left ``interrupted`` in the store, ready to be resumed. Each interrupt
is told at once as a ``run.stopping`` event (``action``: wait, cancel or detach).

A distributed run (its jobs go to workers) rides through broker and store outages of
up to ``outage_grace`` seconds (`Outage`): dispatching is retried (as a resume once the
run is recorded, so nothing is sent twice that matters), following waits for the store
to answer again. Past the grace, `OutageError`; the run goes on in the workers. A store
that cannot be reached at all when the run starts fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from arvel_flow.errors import BackendError, OutageError, RunNotFoundError
from arvel_flow.launch.follow import RemoteFollower
from arvel_flow.outage import Outage
from arvel_flow.queue.events import Event
from arvel_flow.queue.front import Queue
from arvel_flow.queue.plan import Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.store.run_events import RunEventSource

T = TypeVar("T")

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How following a run ended: its result, or an interruption."""

    run_id: str
    result: BatchResult | None
    interrupted: bool = False
    remote: bool = False
    """The run goes on in workers: this process only stopped following it."""


class Launcher:
    """Runs a plan (or resumes a run) on a queue until it ends or is interrupted.

    Args:
        queue: Where the run's jobs go.
        outage: Rides a distributed run through broker and store outages (none by
            default: the first failure ends the command).
        handle_signals: Interrupt on SIGINT and SIGTERM while following (the handlers
            there before are put back after). Off by default: an application that
            embeds a run owns its signals.
        say: Where a distributed run's notices go (no worker for its queue): this
            module's log by default.
        heartbeat_timeout: Seconds without a heartbeat after which a worker is gone.
    """

    def __init__(
        self,
        queue: Queue,
        *,
        outage: Outage | None = None,
        handle_signals: bool = False,
        say: Callable[[str], None] | None = None,
        heartbeat_timeout: float = 10.0,
    ) -> None:
        self.queue = queue
        self.handle_signals = handle_signals
        # Jobs sent to workers keep running there: stopping means to stop following.
        self.remote = queue.remote
        self.outage = outage if self.remote else None
        store = queue.store
        self._follower = (
            RemoteFollower(
                queue,
                store.run_events(),
                say or logger.warning,
                heartbeat_timeout=heartbeat_timeout,
                outage=self.outage,
            )
            if self.remote
            and isinstance(store, RunEventSource)
            and getattr(queue.transport, "publishes_events", False)
            else None
        )
        self._interrupts = 0
        self._stop = asyncio.Event()
        self._main: asyncio.Task[Any] | None = None
        self._run_id: str | None = None

    async def run(
        self,
        plan: Plan,
        run_id: str,
        *,
        follow: bool = True,
        announce: Callable[[], None] | None = None,
    ) -> Outcome:
        """Start a run of ``plan`` under ``run_id`` and follow it (or, remote, not).

        ``announce`` is called once the run is recorded and its first jobs dispatched.
        """
        return await self._launch(
            run_id, lambda: self._start(plan, run_id), follow=follow, announce=announce
        )

    async def _start(self, plan: Plan, run_id: str) -> str:
        """Start the run; a retry after an outage resumes it if it was recorded.

        A store that cannot be reached at all is no outage (a wrong URL, a server not
        started): that fails at once.
        """
        if self.outage is not None:
            await self.queue.store.get_run(run_id)
        attempts = 0

        async def attempt() -> str:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and await self.queue.store.get_run(run_id) is not None:
                return await self.queue.resume(run_id)
            return await self.queue.start(plan, run_id=run_id)

        return await self._ride(attempt)

    async def _ride(self, operation: Callable[[], Awaitable[T]]) -> T:
        """``operation``, through outages when this launcher rides them."""
        if self.outage is None:
            return await operation()
        return await self.outage.call(operation)

    async def resume(
        self,
        run_id: str,
        *,
        force: bool = False,
        follow: bool = True,
        announce: Callable[[], None] | None = None,
    ) -> Outcome:
        """Continue a stored run and follow it (or, remote, not).

        ``force`` takes the run over from an owner that is gone; ``announce`` is called
        once the run is this process's (its lease taken) and its jobs are dispatched.
        """
        if await self.queue.store.get_run(run_id) is None:
            raise RunNotFoundError(run_id)
        return await self._launch(
            run_id,
            lambda: self._ride(lambda: self.queue.resume(run_id, force=force)),
            follow=follow,
            announce=announce,
        )

    async def _launch(
        self,
        run_id: str,
        dispatch: Callable[[], Awaitable[object]],
        *,
        follow: bool,
        announce: Callable[[], None] | None,
    ) -> Outcome:
        """``dispatch`` the run, then ``announce`` it; follow it to its end if ``follow``."""

        async def begin() -> None:
            await dispatch()
            if announce is not None:
                announce()

        if not follow:
            await begin()
            return Outcome(run_id, None, remote=True)
        return await self._follow(run_id, begin)

    async def _follow(self, run_id: str, begin: Callable[[], Awaitable[object]]) -> Outcome:
        loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._run_id = run_id
        signals = _SIGNALS if self.handle_signals else ()
        # Put back afterwards what was there (asyncio.run's own SIGINT handler, say).
        previous = {signum: signal.getsignal(signum) for signum in signals}
        for signum in signals:
            loop.add_signal_handler(signum, self.interrupt)
        watchers: set[asyncio.Task[Any]] = set()
        try:
            # The run's events are read from the first one after those there now.
            after = None if self._follower is None else await self._follower.reader.last_id(run_id)
            await begin()
            waiting = asyncio.create_task(self._wait(run_id, after))
            stopping = asyncio.create_task(self._stop.wait())
            watchers = {waiting, stopping}
            await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                return Outcome(run_id, waiting.result())
            return await self._interrupted(run_id)
        except asyncio.CancelledError:
            # A queue that cannot pause (sync) is interrupted by cancelling the run itself.
            return await self._interrupted(run_id)
        except Exception as error:
            # The run cannot go on here (its store failed, say): stop its jobs before
            # the error is reported, rather than wait for them to end.
            self.queue.abandon(error)
            raise
        finally:
            for watcher in watchers:
                watcher.cancel()
            # Awaited, so that what a watcher raised as it stopped (a store closing
            # under its read, say) is heard here, not logged as never retrieved.
            await asyncio.gather(*watchers, return_exceptions=True)
            for signum, handler in previous.items():
                loop.remove_signal_handler(signum)
                signal.signal(signum, handler)

    async def _wait(self, run_id: str, after: str | None) -> BatchResult:
        """The run's result, waiting through outages for the store to answer again.

        A run executed by workers that publish its events is followed through them
        (`RemoteFollower`, from stream entry ``after``); otherwise the store is watched.
        """
        if self._follower is not None and after is not None:
            return await self._follower.wait(run_id, after)
        while True:
            try:
                return await self.queue.wait(run_id)
            except OutageError:
                raise
            except BackendError as error:
                if self.outage is None:
                    raise
                await self.outage.call(lambda: self.queue.store.get_run(run_id), after=error)

    def interrupt(self) -> None:
        """First call: stop dispatching, let running jobs finish. Second: cancel them."""
        self._interrupts += 1
        self._tell_stopping()
        if self.remote:
            self._stop.set()
        elif self.queue.pausable:
            if self._interrupts == 1:
                self.queue.pause()
                self._stop.set()
            else:
                self.queue.cancel_running()
        elif self._main is not None:
            self._main.cancel()

    def _tell_stopping(self) -> None:
        """Emit ``run.stopping``: what this interrupt does, before it is done."""
        if self._run_id is None or not self.queue.events.active:
            return
        if self.remote:
            action = "detach"
        elif self.queue.pausable and self._interrupts == 1:
            action = "wait"
        else:
            action = "cancel"
        event = Event("run.stopping", self.queue.clock.now(), self._run_id, data={"action": action})
        self.queue.events.emit(event)

    async def _interrupted(self, run_id: str) -> Outcome:
        if self.remote:
            return Outcome(run_id, None, interrupted=True, remote=True)
        if self.queue.pausable:
            await self.queue.drain()
        await self.queue.store.set_run_status(run_id, "interrupted", self.queue.clock.now())
        return Outcome(run_id, None, interrupted=True)
