"""What chains and batches share: building plan nodes from steps, and dispatching."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from arvel_flow.queue.plan import FanOutNode, JobNode, Node, Plan, make_batch
from arvel_flow.queue.targets import JobRef

if TYPE_CHECKING:
    from arvel_flow.queue.contracts import FlowQueue
    from arvel_flow.queue.result import BatchResult


@dataclass(frozen=True, slots=True)
class JobStep:
    """A job with an explicit step id (``id:`` in the file)."""

    job: Any
    id: str | None = None


@dataclass(frozen=True, slots=True)
class FanOut:
    """One job per item (``each`` / ``matrix``); inside a batch, each is a member."""

    job: Any
    items: Sequence[Mapping[str, Any]]
    id: str | None = None


class Flow:
    """Base of `Chain` and `Batch`: callbacks, an optional id, and dispatch."""

    def __init__(self, *, id: str | None = None) -> None:
        self.id = id
        self._catch: Any = None
        self._finally: Any = None

    def catch(self, step: Any) -> Self:
        """Run ``step`` once when this flow fails."""
        self._catch = step
        return self

    def finally_(self, step: Any) -> Self:
        """Run ``step`` once when this flow has finished, failed or not."""
        self._finally = step
        return self

    def node(self, key: str) -> Node:
        """This flow as a plan node under ``key`` (its id when it has one)."""
        raise NotImplementedError

    def to_plan(self, name: str = "flow") -> Plan:
        """The plan a run of this flow follows."""
        return Plan.of(name, self.node(self.id or "root"))

    async def dispatch(
        self, queue: FlowQueue, *, wait: bool = True, name: str = "flow"
    ) -> BatchResult | str:
        """Run this flow through ``queue``.

        By default waits until it has finished and returns its `BatchResult`; with
        ``wait=False`` returns the run id once the first jobs are dispatched.
        """
        run_id = await queue.start(self.to_plan(name))
        if not wait:
            return run_id
        return await queue.wait(run_id)


def build_node(step: Any, key: str) -> Node | FanOutNode:
    """A plan node for any step: a flow, a `JobStep`, a `FanOut`, a job or a function."""
    if isinstance(step, Flow):
        return step.node(step.id or key)
    if isinstance(step, FanOut):
        return FanOutNode(step.id or key, JobRef.of(step.job), step.items)
    if isinstance(step, JobStep):
        return JobNode(step.id or key, JobRef.of(step.job))
    return JobNode(key, JobRef.of(step))


def build_step(step: Any, key: str) -> Node:
    """Like `build_node`, but a fan-out outside a batch becomes a batch of its own."""
    node = build_node(step, key)
    if isinstance(node, FanOutNode):
        return make_batch(node.key, [FanOutNode(node.key + ".each", node.job, node.items)])
    return node
