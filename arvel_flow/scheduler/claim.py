"""A tick, decided and claimed: the ``overlap`` policy and the store's atomic claim.

The claim is `StoreContract.claim_tick`: among schedulers sharing a store, the one
whose claim succeeds starts the tick's run, under the run id the claim names; the
others do nothing. That run id is the tick's own (`tick_run_id`), and a run is created
only if its id is new, so starting a tick's run twice makes one run: a claimed tick
whose run is still not in the store after `RECOVER_GRACE` (its scheduler died between
claim and start) is started by any scheduler that sees it. Overlap is decided from
the trigger's last tick: its run (or, when it started none, the run that was still
running then).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from arvel_flow.pipeline.schedule import Overlap
from arvel_flow.store.contracts import StoreContract, TickRecord

Action = Literal["start", "skip", "queue"]

STARTING_GRACE = 60.0
"""A claimed run that is not in the store yet counts as running for this many seconds
(its scheduler is starting it); after that, its scheduler is taken for gone."""

RECOVER_GRACE = 10.0
"""A claimed tick whose run is not in the store this long after the claim (normally a
few milliseconds) is taken for lost, and started by whichever scheduler sees it."""

QUEUED = "queued behind "
SKIPPED = "skipped: still running: "


def tick_run_id(trigger: str, at: float) -> str:
    """The id of the run of ``trigger``'s tick ``at``: the same in every scheduler.

    12 hex digits, as generated run ids are (`arvel_flow.queue.envelope.new_id`).
    """
    return hashlib.sha256(f"{trigger}@{at!r}".encode()).hexdigest()[:12]


def lost_run(tick: TickRecord | None, now: float) -> str | None:
    """The run ``tick`` claimed to start, if it may be lost: claimed `RECOVER_GRACE` ago.

    Only a tick claimed to start at once (no note: not skipped, not queued) counts;
    whether its run is in the store is for the caller to ask.
    """
    if tick is None or tick.run_id is None or tick.note is not None:
        return None
    return tick.run_id if now - tick.claimed_at >= RECOVER_GRACE else None


def decide(overlap: Overlap, running: str | None) -> Action:
    """What a tick does: start a run, or (a run of the trigger still ``running``) per policy."""
    if running is None or overlap == "allow":
        return "start"
    return "skip" if overlap == "skip" else "queue"


async def running_run(store: StoreContract, tick: TickRecord | None, now: float) -> str | None:
    """The run of the trigger still running at ``now``, as its last ``tick`` tells, if any."""
    if tick is None or tick.run_id is None:
        return None
    if await is_running(store, tick.run_id, now):
        return tick.run_id
    if await store.get_run(tick.run_id) is not None:
        return None
    # Claimed, not started: being started, or queued behind a run still running.
    if tick.note is not None and tick.note.startswith(QUEUED):
        ahead = tick.note.removeprefix(QUEUED)
        if await is_running(store, ahead, now):
            return tick.run_id
    return tick.run_id if now - tick.claimed_at < STARTING_GRACE else None


async def is_running(store: StoreContract, run_id: str, now: float) -> bool:
    """Whether ``run_id`` runs: status running, and in workers or in a live process.

    A run executed in place whose process died stays ``running`` in the store; its
    expired lease tells it apart.
    """
    run = await store.get_run(run_id)
    if run is None or run.status != "running":
        return False
    if await store.get_run_owner(run_id, now) is not None:
        return True
    settings = (await store.load_plan(run_id)).get("settings") or {}
    return settings.get("driver", "taskiq") == "taskiq" and settings.get("broker") not in (
        None,
        "memory",
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A tick this scheduler claimed: what to do, and the run it starts (or waits for)."""

    tick: TickRecord
    action: Action
    ahead: str | None = None
    """With ``queue``, the run to wait for."""


async def claim(
    store: StoreContract, key: str, overlap: Overlap, at: float, run_id: str, now: float
) -> Claimed | None:
    """Decide the tick ``at`` of the trigger ``key`` and claim it; None if another did."""
    running = await running_run(store, await store.last_tick(key), now)
    action = decide(overlap, running)
    if action == "skip":
        record = TickRecord(key, at, now, running, f"{SKIPPED}{running}")
    elif action == "queue":
        record = TickRecord(key, at, now, run_id, f"{QUEUED}{running}")
    else:
        record = TickRecord(key, at, now, run_id)
    if not await store.claim_tick(record):
        return None
    return Claimed(record, action, running if action == "queue" else None)
