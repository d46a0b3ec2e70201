"""The scheduler loop: start each due tick's run, exactly once among schedulers.

`Scheduler.tick` is one pass (``arvel-flow schedule tick`` is one pass and the wait
for the runs it started); `Scheduler.serve` passes again at each next fire time, at
least once a second (so a tick starts within a second of its time, a changed file is
reloaded within a second, and a tick another scheduler dropped is taken up). Where a
trigger stands comes from the store (its last claimed tick), never from memory: a
scheduler restarted, or a second one, goes on from there, per the ``missed`` policy.

A tick's run has the tick's id (`tick_run_id`), and a run is created only once: every
scheduler notes each last claimed tick it sees, and starts its run if it is still not
in the store `RECOVER_GRACE` after the claim (its claimer died between claim and start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Protocol

from arvel_flow.errors import BackendError, FlowError, RunExistsError, RunOwnedError
from arvel_flow.queue.clock import Clock, SystemClock
from arvel_flow.queue.result import BatchResult
from arvel_flow.scheduler.claim import Claimed, claim, is_running, lost_run, tick_run_id
from arvel_flow.scheduler.triggers import Trigger, compute_due, compute_grace, compute_next
from arvel_flow.store.contracts import StoreContract, TickRecord

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""The longest the loop sleeps: a file change or a dropped tick is seen this soon."""


class StartedRun(Protocol):
    """What starting a tick's run gives back (a `arvel_flow.launch.Run`)."""

    id: str

    async def wait(self) -> BatchResult: ...

    async def close(self) -> None: ...


Starter = Callable[[Trigger, float, str], Awaitable[StartedRun]]
"""Starts the run (id given) of a trigger's tick (time given)."""


class Scheduler:
    """Starts the runs of due ticks, claiming each tick in the store first.

    Args:
        triggers: The triggers to serve (`reload` replaces them).
        store: Where ticks are claimed: the store every scheduler of these triggers shares.
        start: Starts a tick's run (`arvel_flow.scheduler.start.start_tick`, bound to
            the scheduler's settings).
        clock: Time and sleep (a fake one in tests).
        on_start: Told of each run started: trigger, tick, run id.
        on_run: Told of each run that ends, with its result (None: it was interrupted).
    """

    def __init__(
        self,
        triggers: list[Trigger],
        store: StoreContract,
        *,
        start: Starter,
        clock: Clock | None = None,
        on_start: Callable[[Trigger, float, str], None] | None = None,
        on_run: Callable[[Trigger, str, BatchResult | None], None] | None = None,
    ) -> None:
        self.triggers = list(triggers)
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._start = start
        self._on_start = on_start
        self._on_run = on_run
        self.errors = 0
        """Ticks whose run could not start or be followed (each logged)."""
        self._first_seen: dict[str, float] = {}
        self._passed: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unstarted: set[str] = set()
        """Runs this scheduler claimed a tick for and has not started yet."""
        self._seen: dict[str, str] = {}
        """Per trigger key, the run of the last claimed tick noted (see `_note`)."""
        self._watched: dict[str, tuple[Trigger, TickRecord]] = {}
        """Claimed ticks of others, by run id, to start if their run never appears."""
        self.started: list[tuple[str, float, str]] = []
        """(trigger key, tick, run id) of every run this scheduler started, in order."""

    def reload(self, triggers: list[Trigger]) -> None:
        """Serve ``triggers`` from now on (runs going on are not touched)."""
        self.triggers = list(triggers)

    async def tick(self) -> list[Claimed]:
        """One pass: claim and start (or skip, or queue) every tick due now."""
        now = self.clock.now()
        claimed: list[Claimed] = []
        for trigger in self.triggers:
            claimed += await self._tick_trigger(trigger, now)
        await self._recover(now)
        return claimed

    def _note(self, trigger: Trigger, last: TickRecord | None) -> None:
        """Watch the trigger's last claimed tick, if it is another's and its run may be lost."""
        if last is None or last.run_id is None or last.note is not None:
            return
        if self._seen.get(trigger.key) == last.run_id:
            return
        self._seen[trigger.key] = last.run_id
        if last.run_id not in self._unstarted:
            self._watched[last.run_id] = (trigger, last)

    async def _recover(self, now: float) -> None:
        """Start the run of each watched tick claimed `RECOVER_GRACE` ago and not in the store."""
        for run_id, (trigger, tick) in list(self._watched.items()):
            if lost_run(tick, now) is None:
                continue
            # Asked before forgetting it: a store that fails keeps it watched.
            started = run_id in self._unstarted or await self.store.get_run(run_id) is not None
            del self._watched[run_id]
            if started:
                continue
            logger.warning(
                "%s: tick %s was claimed but its run %s never started: starting it",
                trigger.key,
                _iso(tick.at),
                run_id,
            )
            self._unstarted.add(run_id)
            self._spawn(self._run(trigger, tick.at, run_id, None), f"tick {trigger.key}")

    async def _tick_trigger(self, trigger: Trigger, now: float) -> list[Claimed]:
        grace = compute_grace(trigger)
        last = await self.store.last_tick(trigger.key)
        self._note(trigger, last)
        # Never claimed: nothing from before this scheduler first saw it is missed.
        first_seen = self._first_seen.setdefault(trigger.key, now - grace)
        since = first_seen if last is None else last.at
        since = max(since, self._passed.get(trigger.key, since))
        due = compute_due(trigger, since, now)
        if trigger.missed == "skip":
            # Ticks missed stay missed: do not walk past them again on every pass.
            self._passed[trigger.key] = now - grace
        claimed: list[Claimed] = []
        for at in due:
            run_id = tick_run_id(trigger.key, at)
            outcome = await claim(self.store, trigger.key, trigger.overlap, at, run_id, now)
            if outcome is None:
                continue  # another scheduler has this tick
            self._seen[trigger.key] = run_id
            claimed.append(outcome)
            if outcome.action != "skip":
                self._unstarted.add(run_id)
            if outcome.action == "skip":
                logger.info(
                    "%s: tick %s skipped: run %s still running",
                    trigger.key,
                    _iso(at),
                    outcome.tick.run_id,
                )
                continue
            self._spawn(self._run(trigger, at, run_id, outcome.ahead), f"tick {trigger.key}")
        return claimed

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Nothing vanishes: a run that could not start or follow is logged.
                self.errors += 1
                if isinstance(error, FlowError):
                    logger.error("%s failed: %s", name, error)
                else:
                    logger.exception("%s failed", name)

        task = asyncio.create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, trigger: Trigger, at: float, run_id: str, ahead: str | None) -> None:
        if ahead is not None:
            logger.info("%s: tick %s queued behind run %s", trigger.key, _iso(at), ahead)
            while ahead in self._unstarted or await is_running(self.store, ahead, self.clock.now()):
                await self.clock.sleep(POLL_SECONDS)
        try:
            handle = await self._start(trigger, at, run_id)
        except (RunExistsError, RunOwnedError):
            # Started by another scheduler that took this tick for lost: one run.
            logger.info("%s: tick %s: run %s started elsewhere", trigger.key, _iso(at), run_id)
            return
        finally:
            self._unstarted.discard(run_id)
        self.started.append((trigger.key, at, run_id))
        logger.info("%s: tick %s started run %s", trigger.key, _iso(at), run_id)
        if self._on_start is not None:
            self._on_start(trigger, at, run_id)
        result: BatchResult | None = None
        try:
            result = await handle.wait()
        finally:
            await handle.close()
            if self._on_run is not None:
                self._on_run(trigger, run_id, result)

    def next_wake(self, now: float) -> float:
        """When to pass again: the next fire time, at most `POLL_SECONDS` away."""
        wake = now + POLL_SECONDS
        for trigger in self.triggers:
            wake = min(wake, compute_next(trigger, now))
        return wake

    async def serve(
        self, stop: asyncio.Event, *, reload: Callable[[], list[Trigger] | None] | None = None
    ) -> None:
        """Pass at every fire time until ``stop`` is set; then stop following runs.

        ``reload`` is asked before each pass: new triggers when the files changed, else
        None. A store that fails is logged and asked again at the next pass.
        """
        try:
            while not stop.is_set():
                if reload is not None:
                    fresh = reload()
                    if fresh is not None:
                        self.reload(fresh)
                try:
                    await self.tick()
                except BackendError as error:
                    logger.warning("store unavailable, retrying: %s", error)
                now = self.clock.now()
                await _sleep_or_stop(self.clock, self.next_wake(now) - now, stop)
        finally:
            await self.close()

    async def drain(self) -> None:
        """Wait for every run this scheduler started (and queued ticks) to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop: queued ticks are dropped, runs in this process interrupted (resumable)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeping.cancel()
        stopping.cancel()


def _iso(at: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
