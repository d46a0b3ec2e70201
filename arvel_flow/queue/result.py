"""`BatchResult`: how a run of a chain or batch ended, step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode, JobNode, Node, Plan, callbacks
from arvel_flow.store.contracts import FINAL_STATES, StepRecord
from arvel_flow.store.step_keys import StepKeys, member_key


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of a run (of a batch, or likewise of a chain).

    Lists hold step keys of jobs (`StepKeys`: a fan-out's members are kept as index
    ranges, so a million-member run does not hold a million strings; they compare
    equal to tuples); ``failed`` maps each failed job to its error, and
    ``allowed_failures`` names those of them a batch's ``allow_failures`` let pass.
    ``progress`` is (finished, total) over the jobs of the flow, callbacks aside: what
    the live bar counts down, known before any callback fires.

    The *jobs* of a run, as its counts tell them, are every job of the pipeline (each
    fan-out member one job; a retried job once, however many attempts it took) and
    every callback (``then`` / ``catch`` / ``finally``) that fired. A callback that did
    not fire (the ``catch`` of a batch that succeeded) is not a job of the run. Each
    job sits in exactly one of the lists above, so the counts add up to ``total``.
    """

    run_id: str
    status: str
    succeeded: Sequence[str] = ()
    failed: Mapping[str, str] = field(default_factory=dict)
    cancelled: Sequence[str] = ()
    skipped: Sequence[str] = ()
    duplicates: Sequence[str] = ()
    pending: Sequence[str] = ()
    progress: tuple[int, int] = (0, 0)
    allowed_failures: Sequence[str] = ()

    @property
    def has_failures(self) -> bool:
        """True when any job failed for good (within the allowance or not)."""
        return bool(self.failed)

    @property
    def ok(self) -> bool:
        """True when the run finished and succeeded."""
        return self.status == "succeeded"

    @property
    def total(self) -> int:
        """How many jobs the run has: those of the pipeline and the callbacks that fired."""
        return sum(
            map(
                len,
                (
                    self.succeeded,
                    self.failed,
                    self.cancelled,
                    self.skipped,
                    self.duplicates,
                    self.pending,
                ),
            )
        )

    @property
    def counts(self) -> dict[str, int]:
        """How many jobs ended each way: ``succeeded``, ``failed`` (of which
        ``failed_allowed`` within an allowance), ``skipped``, ``cancelled``,
        ``duplicates`` and ``pending``, which add up to ``total``; the JSON form of
        `status` and ``run.finished``.
        """
        return {
            "succeeded": len(self.succeeded),
            "failed": len(self.failed),
            "failed_allowed": len(self.allowed_failures),
            "skipped": len(self.skipped),
            "cancelled": len(self.cancelled),
            "duplicates": len(self.duplicates),
            "pending": len(self.pending),
            "total": self.total,
        }


def compute_result(
    run_id: str, status: str, plan: Plan, records: Mapping[str, StepRecord]
) -> BatchResult:
    """Sort every job of ``plan`` by the state ``records`` give it.

    A job without a record takes its group's fate: skipped inside a skipped chain
    step, cancelled inside a batch that finished without starting it. A failed job
    inside a batch that still succeeded was allowed to fail.
    """
    buckets: dict[str, StepKeys] = {
        s: StepKeys()
        for s in ("succeeded", "failed", "cancelled", "skipped", "duplicate", "pending")
    }
    counted = [0, 0]
    allowed = StepKeys()

    def place(key: str, state: str | None, is_callback: bool, tolerated: bool) -> None:
        final = state in FINAL_STATES
        buckets[state if final and state in buckets else "pending"].append(key)
        if state == "failed" and tolerated:
            allowed.append(key)
        if not is_callback:
            counted[0] += final
            counted[1] += 1

    def place_member(
        fan_out: str, index: int, state: str | None, is_callback: bool, tolerated: bool
    ) -> None:
        # `place` for a fan-out member, its key left unmade.
        final = state in FINAL_STATES
        buckets[state if final and state in buckets else "pending"].append_member(fan_out, index)
        if state == "failed" and tolerated:
            allowed.append_member(fan_out, index)
        if not is_callback:
            counted[0] += final
            counted[1] += 1

    def visit(
        node: Node | FanOutNode, inherited: str | None, is_callback: bool, tolerated: bool = False
    ) -> None:
        if isinstance(node, FanOutNode):
            # Member keys only: building 100,000 member nodes just to read keys is waste.
            for i in range(len(node.items)):
                record = records.get(member_key(node.key, i))
                state = record.state if record is not None else inherited
                place_member(node.key, i, state, is_callback, tolerated)
            return
        record = records.get(node.key)
        state = record.state if record is not None else inherited
        if isinstance(node, JobNode):
            place(node.key, state, is_callback, tolerated)
            return
        fate = "skipped" if isinstance(node, ChainNode) else "cancelled"
        if state in ("skipped", "cancelled"):
            fate = state
        children_state = fate if state in FINAL_STATES else None
        tolerates = tolerated or (isinstance(node, BatchNode) and state == "succeeded")
        for child in node.steps if isinstance(node, ChainNode) else node.members:
            visit(child, children_state, is_callback, tolerates)
        for _, callback in callbacks(node):
            if callback.key in records:
                visit(callback, None, True, tolerated)

    visit(plan.root, None, False)
    return BatchResult(
        run_id=run_id,
        status=status,
        succeeded=buckets["succeeded"],
        failed={key: records[key].error or "failed" for key in buckets["failed"] if key in records},
        cancelled=buckets["cancelled"],
        skipped=buckets["skipped"],
        duplicates=buckets["duplicate"],
        pending=buckets["pending"],
        progress=(counted[0], counted[1]),
        allowed_failures=allowed,
    )
