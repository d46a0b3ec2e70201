"""`Chain`: steps that run one after another."""

from __future__ import annotations

from typing import Any

from arvel_flow.queue.flow import Flow, build_step
from arvel_flow.queue.plan import ChainNode, Node


class Chain(Flow):
    """Steps in order, each after the previous one succeeded.

    At the first permanent failure the chain stops, the rest are skipped, ``catch``
    runs and the chain has failed; ``finally`` runs once at the end either way::

        await Chain(ImportRows(path="rows.csv"), SendDigest()).catch(Alert()).dispatch(queue)
    """

    def __init__(self, *steps: Any, id: str | None = None) -> None:
        super().__init__(id=id)
        if len(steps) == 1 and isinstance(steps[0], list | tuple):
            steps = tuple(steps[0])
        self.steps = steps

    def node(self, key: str) -> Node:
        """The chain as a plan node."""
        return ChainNode(
            key,
            tuple(build_step(step, f"{key}.{i}") for i, step in enumerate(self.steps)),
            catch=None if self._catch is None else build_step(self._catch, f"{key}.catch"),
            finally_=None if self._finally is None else build_step(self._finally, f"{key}.finally"),
        )
