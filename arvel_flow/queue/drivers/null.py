"""`NullQueue`: runs nothing, records what would run (dry runs)."""

from __future__ import annotations

from typing import Any

from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.front import Queue
from arvel_flow.queue.plan import JobNode, Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.transports.null import NullTransport


class NullQueue(Queue):
    """A `Queue` on a `NullTransport`: accepts jobs and flows and runs none of them.

    ``dispatched`` lists every job dispatched; ``planned[run_id]`` every job a flow
    would run, in tree order (fan-outs expanded, callbacks included).
    """

    def __init__(self, **options: Any) -> None:
        transport = NullTransport()
        super().__init__(transport, **options)
        self.dispatched: list[Envelope] = transport.sent
        self.planned: dict[str, list[JobNode]] = {}

    async def start(
        self, plan: Plan, *, source: str | None = None, run_id: str | None = None
    ) -> str:
        """Record what the plan would run; nothing is stored or executed."""
        run_id = run_id or new_id()[:12]
        self.planned[run_id] = list(plan.jobs())
        return run_id

    async def wait(self, run_id: str) -> BatchResult:
        """A dry run's result: every job pending."""
        jobs = self.planned.get(run_id, [])
        return BatchResult(
            run_id, "dry-run", pending=tuple(j.key for j in jobs), progress=(0, len(jobs))
        )

    async def resume(self, run_id: str, *, force: bool = False) -> str:
        """Nothing to resume in a dry run."""
        return run_id
