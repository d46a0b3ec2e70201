"""What a queue driver offers: the job API of SPEC §1, and running flows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from arvel_flow.queue.plan import Plan
    from arvel_flow.queue.result import BatchResult


@runtime_checkable
class QueueContract(Protocol):
    """Dispatch jobs to run now, later, or many at once."""

    async def dispatch(self, job: Any) -> str | None:
        """Queue ``job``; returns its message id, or None when refused as a duplicate."""
        ...

    async def later(self, delay: float, job: Any) -> str | None:
        """Queue ``job`` to run after ``delay`` seconds."""
        ...

    async def bulk(self, jobs: Sequence[Any]) -> list[str | None]:
        """Queue several jobs in one go."""
        ...

    async def size(self, queue_name: str = "default") -> int:
        """How many jobs wait in ``queue_name`` (delayed ones included)."""
        ...


@runtime_checkable
class FlowQueue(QueueContract, Protocol):
    """A queue that can also run chains and batches, with their state in its store."""

    async def start(
        self, plan: Plan, *, source: str | None = None, run_id: str | None = None
    ) -> str:
        """Start a run of ``plan``; returns its id once the first jobs are dispatched."""
        ...

    async def wait(self, run_id: str) -> BatchResult:
        """Wait for the run to finish; its result."""
        ...

    async def resume(self, run_id: str) -> str:
        """Continue an interrupted run from its stored plan; returns the run id."""
        ...
