"""The tracing seam: where the runner and the orchestrator tell a tracer what happened.

Tracing is process-wide, as OpenTelemetry's tracer provider is: `install` puts one
`SpanHooks` in place (`arvel_flow.tracing.setup` does, when tracing is on) and `hooks`
stays None otherwise, which is all the job's path checks. Nothing here imports
OpenTelemetry, and nothing here knows how spans are made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from arvel_flow.queue.envelope import Envelope
    from arvel_flow.queue.plan import BatchNode, ChainNode, Plan
    from arvel_flow.queue.runner import Outcome
    from arvel_flow.store.contracts import RunStatus, StepState

__all__ = ["SpanHooks", "hooks", "install", "uninstall"]


class SpanHooks(Protocol):
    """What a tracer is told: each attempt as it runs, each group and run as it ends."""

    async def attempt(
        self, envelope: Envelope, run: Callable[[Envelope], Awaitable[Outcome]]
    ) -> Outcome:
        """Run one attempt (``run(envelope)``) inside its span; return its outcome."""
        ...

    def traceparent(self, run_id: str, plan: Plan | None, step: str) -> str:
        """The ``traceparent`` a job of step ``step`` is dispatched with."""
        ...

    def run_started(self, run_id: str, name: str) -> None:
        """A run was started here (the caller's own span, if any, is current)."""
        ...

    def group_finished(
        self,
        run_id: str,
        group: ChainNode | BatchNode,
        state: StepState,
        *,
        parent: str | None,
        started_at: float | None,
        ended_at: float,
    ) -> None:
        """A chain or batch ended (in this process); ``parent`` is its group's key."""
        ...

    def run_finished(
        self, run_id: str, name: str, status: RunStatus, *, started_at: float, ended_at: float
    ) -> None:
        """A run ended (in this process)."""
        ...


hooks: SpanHooks | None = None
"""The tracer of this process, or None when it does not trace."""


def install(tracer: SpanHooks) -> None:
    """Make ``tracer`` this process's tracer."""
    global hooks
    hooks = tracer


def uninstall() -> None:
    """Stop tracing in this process."""
    global hooks
    hooks = None
