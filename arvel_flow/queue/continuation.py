"""What continuing a failed run reopens: its failed steps, what they skipped, their groups.

A failed run is continued (``run --resume`` of a failed run) by forgetting the record
of every step that did not succeed, so that it is pending again, while the steps that
succeeded keep theirs and never run again. Callbacks keep their records whatever their
state: each ``then`` / ``catch`` / ``finally`` fires at most once in a run's life.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from arvel_flow.queue.plan import BatchNode, ChainNode, Node, Plan
from arvel_flow.store.contracts import BatchCounters, StepRecord

OK_STATES = frozenset({"succeeded", "duplicate"})
"""Final states that count as success for the enclosing chain or batch."""


@dataclass
class Reopening:
    """The store changes that continue a failed run (see `StoreContract.reopen_run`)."""

    steps: list[str] = field(default_factory=list)
    """Steps whose records are forgotten: they run again."""
    counters: dict[str, BatchCounters] = field(default_factory=dict)
    """New counters of each reopened batch."""


CountersOf = Callable[[str], Awaitable[BatchCounters]]


async def plan_reopening(
    plan: Plan, records: Mapping[str, StepRecord], counters_of: CountersOf
) -> Reopening:
    """What to forget so that ``plan`` continues from the steps that did not succeed.

    ``counters_of`` reads a batch's counters from the store. A reopened batch keeps
    its started members claimed and its succeeded ones done; its failed members wait,
    claimed but with no record, and start again within the batch's ``concurrency``
    (see `members_to_restart`); then the members it cancelled are claimed as a new
    batch's would be.
    """
    reopening = Reopening()
    await _reopen(plan.root, records, counters_of, reopening)
    return reopening


def started_members(batch: BatchNode, counters: BatchCounters) -> int:
    """How many of the batch's members were started: members ``[0, n)``."""
    started = min(counters.claimed, batch.total)
    return started - counters.cancelled if counters.cancel_flag else started


def members_to_restart(batch: BatchNode, counters: BatchCounters) -> int:
    """How many waiting members of a continued batch to start now that one finished.

    ``counters`` are the batch's, just after the finish. A batch's started members
    that are not done are the running ones plus, in a continued batch, those waiting
    to run again. Only waiting ones can take that number past ``concurrency``: then
    the finish freed one slot, for one of them. When it comes down to ``concurrency``
    (which a finish in a batch without waiting members never leaves it at), all that
    still wait fit. Without a ``concurrency`` nothing waits (all restart at once).
    """
    if batch.concurrency is None:
        return 0
    unfinished = started_members(batch, counters) - counters.done
    if unfinished > batch.concurrency:
        return 1
    return batch.concurrency if unfinished == batch.concurrency else 0


async def _reopen(
    node: Node, records: Mapping[str, StepRecord], counters_of: CountersOf, reopening: Reopening
) -> None:
    record = records.get(node.key)
    if record is None or record.state in OK_STATES:
        return
    reopening.steps.append(node.key)
    if isinstance(node, ChainNode):
        for step in node.steps:
            await _reopen(step, records, counters_of, reopening)
    elif isinstance(node, BatchNode):
        started = started_members(node, await counters_of(node.key))
        succeeded = 0
        for index in range(started):
            member = node.member(index)
            member_record = records.get(member.key)
            if member_record is not None and member_record.state in OK_STATES:
                succeeded += 1
            else:
                await _reopen(member, records, counters_of, reopening)
        reopening.counters[node.key] = BatchCounters(claimed=started, done=succeeded)
