"""One run, one owner: the lease a process holds while it executes a run in place.

A process that runs a run's jobs itself (``arvel-flow run``, ``run --resume``, the
Python API on an in-process queue) takes the run's owner lease in the store before it
dispatches anything, renews it every third of its length while it lives, and releases
it when the run has finished or the process stops (Ctrl-C included). Another process
that tries to run the same run meanwhile is refused (`RunOwnedError`), naming the
owner. Runs executed by workers are owned by no one: workers may all advance them.

Taking over:

- a lease that expired (its process died ``kill -9``, or hung) is free: a resume takes
  it, saying whose it was;
- ``force`` also takes over a live lease whose owner is gone: on this host, its pid does
  not exist; on another host, the caller vouches for it. ``force`` never takes over
  from a process that is still running on this host;
- the process that lost its lease notices at its next renewal, stops its jobs (they
  run again in the new owner) and raises `RunTakenOverError`. A process that takes a
  live lease over from another host waits out one renewal interval before it starts,
  so that the old owner, should it be alive after all, has stopped by then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from arvel_flow.errors import RunOwnedError, RunTakenOverError
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.lease import LeaseKeeper
from arvel_flow.store.contracts import FINAL_RUN_STATUSES, RunOwner, StoreContract

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_LEASE = 15.0
"""Seconds an owner lease lasts without renewal; it is renewed every third of that."""


def process_is_gone(owner: RunOwner) -> bool | None:
    """Whether ``owner``'s process certainly no longer exists.

    True: on this host, no process has its pid. False: one has (it may, rarely, be
    another process that reused the pid). None: it ran on another host; unknowable.
    """
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def format_owner(owner: RunOwner, now: float) -> str:
    """``pid 4242 on host-a (last seen 3s ago)``."""
    return f"pid {owner.pid} on {owner.host} (last seen {max(now - owner.seen_at, 0):.0f}s ago)"


def format_refusal(run_id: str, owner: RunOwner, now: float, *, forced: bool) -> str:
    """Why a run cannot be taken from ``owner``, and what to do about it."""
    held = f"run {run_id} is being executed by {format_owner(owner, now)}"
    expires = f"its lease expires in {max(owner.expires_at - now, 0):.0f}s unless renewed"
    gone = process_is_gone(owner)
    if gone is False:
        return (
            f"{held}; that process is still running on this host: stop it first, or let it "
            f"finish{' (--force never takes over a live process)' if forced else ''}"
        )
    if gone:
        return f"{held}, but that process no longer exists; take the run over with --force"
    return (
        f"{held}; {expires}. If that process is gone, take the run over with --force "
        "(or resume once the lease has expired)"
    )


class RunLease:
    """This process's owner lease on one run: taken, renewed, released.

    Args:
        store: Where the lease lives (the run's store).
        run_id: The run.
        clock: Times written into the lease.
        seconds: The lease's length; it is renewed every third of it.
        on_lost: Called once if a renewal fails (the lease was taken over, or the
            store failed), with the error `guard` raises.
    """

    def __init__(
        self,
        store: StoreContract,
        run_id: str,
        *,
        clock: Clock,
        seconds: float = DEFAULT_LEASE,
        on_lost: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.clock = clock
        self.seconds = seconds
        now = clock.now()
        self.owner = RunOwner(
            uuid.uuid4().hex, socket.gethostname(), os.getpid(), now, now, now + seconds
        )
        self.previous: RunOwner | None = None
        """The owner this lease took over from, if any (expired, or forced out)."""
        self._keeper = LeaseKeeper(
            self._renew, seconds / 3, on_lost=on_lost, name=f"owner lease of run {run_id}"
        )

    async def take(self, *, force: bool = False) -> None:
        """Take the lease and start renewing it.

        Raises:
            RunOwnedError: Another process holds a live lease (and ``force`` does not
                apply: see the module's docstring).
        """
        now = self.clock.now()
        previous = await self.store.get_run_owner(self.run_id, float("-inf"))
        replacing = None
        if previous is not None and previous.expires_at > now:
            if not force or process_is_gone(previous) is False:
                raise RunOwnedError(
                    self.run_id, previous, format_refusal(self.run_id, previous, now, forced=force)
                )
            replacing = previous.owner_id
        holder = await self.store.take_run_owner(
            self.run_id, self._stamped(now), replacing=replacing
        )
        if holder.owner_id != self.owner.owner_id:
            # Another process took it between the look and the take.
            raise RunOwnedError(
                self.run_id, holder, format_refusal(self.run_id, holder, now, forced=force)
            )
        self.owner = holder
        self.previous = previous
        self._keeper.start()
        if previous is not None and replacing is not None and process_is_gone(previous) is None:
            # Alive after all? It notices at its next renewal and stops: start after that.
            await asyncio.sleep(self._keeper.interval + 1.0)

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work``; `RunTakenOverError` (or the store's error) if the lease is lost."""
        return await self._keeper.guard(work)

    async def release(self) -> None:
        """Stop renewing and give the lease up (if it is still this process's)."""
        await self._keeper.stop()
        if self._keeper.error is None:
            await self.store.release_run_owner(self.run_id, self.owner.owner_id)

    def _stamped(self, now: float) -> RunOwner:
        return RunOwner(
            self.owner.owner_id,
            self.owner.host,
            self.owner.pid,
            self.owner.started_at,
            now,
            now + self.seconds,
        )

    async def _renew(self) -> bool:
        now = self.clock.now()
        holder = await self.store.take_run_owner(self.run_id, self._stamped(now))
        if holder.owner_id != self.owner.owner_id:
            message = (
                f"run {self.run_id} was taken over by {format_owner(holder, now)}; "
                "this process stopped running it"
            )
            raise RunTakenOverError(self.run_id, holder, message)
        self.owner = holder
        run = await self.store.get_run(self.run_id)
        if run is not None and run.status in FINAL_RUN_STATUSES:
            # Finished while nobody waited for it (dispatch(wait=False)): let it go.
            await self.store.release_run_owner(self.run_id, self.owner.owner_id)
            return False
        return True
