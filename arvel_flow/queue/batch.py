"""`Batch`: members that run concurrently, with an allowance of failures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from arvel_flow.queue.flow import Flow, build_node, build_step
from arvel_flow.queue.plan import Allowance, Node, make_batch
from arvel_flow.queue.result import BatchResult

__all__ = ["Batch", "BatchResult"]


class Batch(Flow):
    """Members run concurrently, at most ``concurrency`` at a time.

    The batch fails when more members fail than ``allow_failures`` permits (False: 0,
    True: any, an int, or a share such as ``"10%"``). At that first failure beyond the
    allowance ``catch`` runs once and members not yet started are cancelled. When all
    have finished, ``then`` runs if the batch succeeded and ``finally`` either way::

        await Batch([A(), Chain(B(), C())]).then(Notify()).allow_failures(1).dispatch(queue)
    """

    def __init__(
        self,
        members: Iterable[Any],
        *,
        id: str | None = None,
        name: str | None = None,
        concurrency: int | None = None,
        allow_failures: Allowance = False,
    ) -> None:
        super().__init__(id=id)
        self.members = list(members)
        self.name = name
        self.concurrency = concurrency
        self._allowance: Allowance = allow_failures
        self._then: Any = None

    def then(self, step: Any) -> Self:
        """Run ``step`` once after every member finished, if the batch succeeded."""
        self._then = step
        return self

    def allow_failures(self, allowance: Allowance = True) -> Self:
        """Let members fail without failing the batch: any (True), a count or a share."""
        self._allowance = allowance
        return self

    def node(self, key: str) -> Node:
        """The batch as a plan node."""
        return make_batch(
            key,
            [build_node(member, f"{key}.{i}") for i, member in enumerate(self.members)],
            name=self.name,
            allow_failures=self._allowance,
            concurrency=self.concurrency,
            then=None if self._then is None else build_step(self._then, f"{key}.then"),
            catch=None if self._catch is None else build_step(self._catch, f"{key}.catch"),
            finally_=None if self._finally is None else build_step(self._finally, f"{key}.finally"),
        )
