"""The compiled plan of a run: a tree of job, chain and batch nodes with stable keys.

A plan is what a run follows, stored once in the store when the run starts so that
any worker (or a resume) can advance it. Node keys are the step ids from the file, or
paths such as ``root.1.0``; callbacks are ``<group>.then`` / ``.catch`` / ``.finally``
and fan-out members ``<key>[i]``. Fan-outs stay lazy: a 100,000-item ``each`` is one
node whose members are made when they are started.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from arvel_flow.queue.targets import JobRef

Allowance = bool | int | str
Role = Literal["step", "member", "then", "catch", "finally"]
CALLBACK_ROLES: tuple[Role, ...] = ("then", "catch", "finally")


class Matrix(Sequence[dict[str, Any]]):
    """The cartesian product of named value lists, computed item by item."""

    def __init__(self, axes: Mapping[str, Sequence[Any]]) -> None:
        # A list is kept, not copied (nothing changes it): an axis may be 1,000,000 long.
        self.axes = {
            name: values if isinstance(values, list) else list(values)
            for name, values in axes.items()
        }
        self._size = math.prod(len(values) for values in self.axes.values()) if self.axes else 0

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        index %= self._size
        item: dict[str, Any] = {}
        for name, values in reversed(self.axes.items()):
            index, position = divmod(index, len(values))
            item[name] = values[position]
        return dict(reversed(item.items()))


class ItemColumns(Sequence[dict[str, Any]]):
    """``each`` items that share their keys, kept as one column of values per key.

    A parsed item is a dict of its own (about 200 bytes for one key); a column holds
    one reference per value. Items are made again, one at a time, when read.
    """

    def __init__(self, columns: Mapping[str, Sequence[Any]]) -> None:
        self.columns = {
            name: values if isinstance(values, list) else list(values)
            for name, values in columns.items()
        }
        sizes = {len(values) for values in self.columns.values()}
        if len(sizes) > 1:
            raise ValueError("item columns differ in length")
        self._size = sizes.pop() if sizes else 0

    @classmethod
    def of(cls, items: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        """``items`` as columns when every item has the same keys in the same order;
        otherwise (or when there are none) ``items`` themselves."""
        if not items:
            return items
        names = tuple(items[0])
        if not names or any(tuple(item) != names for item in items):
            return items
        return cls({name: [item[name] for item in items] for name in names})

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return {name: values[index] for name, values in self.columns.items()}


@dataclass(frozen=True, slots=True)
class JobNode:
    """One job to run."""

    key: str
    job: JobRef


@dataclass(frozen=True, slots=True)
class FanOutNode:
    """One job template run once per item (``each`` or ``matrix``): members of a batch."""

    key: str
    job: JobRef
    items: Sequence[Mapping[str, Any]]

    def member(self, index: int) -> JobNode:
        """The job node for item ``index``."""
        return JobNode(f"{self.key}[{index}]", self.job.with_params(self.items[index]))


@dataclass(frozen=True, slots=True)
class ChainNode:
    """Steps in order; ``catch`` on the first permanent failure, ``finally`` either way."""

    key: str
    steps: tuple[Node, ...]
    catch: Node | None = None
    finally_: Node | None = None


@dataclass(frozen=True, slots=True)
class BatchNode:
    """Members run concurrently, with an allowance of failures and three callbacks."""

    key: str
    members: tuple[Node | FanOutNode, ...]
    name: str | None = None
    allow_failures: Allowance = False
    concurrency: int | None = None
    then: Node | None = None
    catch: Node | None = None
    finally_: Node | None = None
    offsets: tuple[int, ...] = field(default=(), repr=False)
    """Index of each entry's first member; filled by `make_batch`."""

    @property
    def total(self) -> int:
        """The number of members, fan-outs expanded."""
        if not self.members:
            return 0
        last = self.members[-1]
        return self.offsets[-1] + (len(last.items) if isinstance(last, FanOutNode) else 1)

    def member(self, index: int) -> Node:
        """Member ``index`` (0-based, fan-outs expanded)."""
        entry = bisect.bisect_right(self.offsets, index) - 1
        found = self.members[entry]
        if isinstance(found, FanOutNode):
            return found.member(index - self.offsets[entry])
        return found


Node = JobNode | ChainNode | BatchNode


def make_batch(key: str, members: Sequence[Node | FanOutNode], **options: Any) -> BatchNode:
    """A `BatchNode` with its member offsets computed."""
    offsets = [
        0,
        *itertools.accumulate(len(m.items) if isinstance(m, FanOutNode) else 1 for m in members),
    ]
    return BatchNode(key, tuple(members), offsets=tuple(offsets[: len(members)]), **options)


def compute_allowance(allow: Allowance, total: int) -> int | None:
    """``false`` → 0, ``true`` → unlimited (None), an int, or ``"10%"`` of ``total`` (floor)."""
    if allow is True:
        return None
    if allow is False:
        return 0
    if isinstance(allow, str):
        return math.floor(total * float(allow.rstrip("%")) / 100)
    return int(allow)


def callbacks(node: ChainNode | BatchNode) -> Iterator[tuple[Role, Node]]:
    """The callbacks a group has, as (role, node)."""
    for role in CALLBACK_ROLES:
        callback = getattr(node, "finally_" if role == "finally" else role, None)
        if callback is not None:
            yield role, callback


@dataclass(frozen=True, slots=True)
class Plan:
    """A named tree of nodes, indexed by key, with each node's parent."""

    name: str
    root: Node
    nodes: dict[str, Node | FanOutNode]
    parents: dict[str, tuple[ChainNode | BatchNode, Role]]
    origin: str | None = None
    """The pipeline file the plan was compiled from, if any."""
    digest: str | None = None
    """SHA-256 of that file's text when compiled (a resume says when it changed)."""
    settings: Mapping[str, Any] | None = None
    """The run settings the run was started with, secrets left out (`launch.pinned`):
    a resume reuses them. None for a plan not started yet, or stored before they were."""
    trigger: str | None = None
    """The schedule trigger (``pipeline/trigger``) starting a run of it, if one does; the
    run's record keeps it (not the stored plan)."""
    scheduled_at: float | None = None
    """The tick of ``trigger`` the run is started for."""

    @classmethod
    def of(
        cls,
        name: str,
        root: Node,
        *,
        origin: str | None = None,
        digest: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Plan:
        """Index a tree."""
        nodes: dict[str, Node | FanOutNode] = {}
        parents: dict[str, tuple[ChainNode | BatchNode, Role]] = {}
        _index(root, nodes, parents)
        return cls(name, root, nodes, parents, origin, digest, settings)

    def node(self, key: str) -> Node:
        """The node with ``key`` (fan-out members included)."""
        if key.endswith("]") and key not in self.nodes:
            fan_key, _, index = key[:-1].rpartition("[")
            fan = self.nodes[fan_key]
            assert isinstance(fan, FanOutNode)
            return fan.member(int(index))
        found = self.nodes[key]
        assert not isinstance(found, FanOutNode)
        return found

    def parent(self, key: str) -> tuple[ChainNode | BatchNode, Role] | None:
        """The group that ``key`` belongs to and its role there; None for the root."""
        if key.endswith("]") and key not in self.nodes:
            key = key[: key.rindex("[")]
        return self.parents.get(key)

    def groups_deepest_first(self) -> list[ChainNode | BatchNode]:
        """Every chain and batch, children before their parents."""
        groups = [n for n in self.nodes.values() if isinstance(n, ChainNode | BatchNode)]
        return sorted(groups, key=lambda g: -self._depth(g.key))

    def _depth(self, key: str) -> int:
        depth = 0
        parent = self.parents.get(key)
        while parent is not None:
            depth += 1
            parent = self.parents.get(parent[0].key)
        return depth

    def jobs(self) -> Iterator[JobNode]:
        """Every job node in tree order, fan-outs expanded lazily (for dry runs)."""
        yield from _jobs(self.root)


def _index(
    node: Node | FanOutNode,
    nodes: dict[str, Node | FanOutNode],
    parents: dict[str, tuple[ChainNode | BatchNode, Role]],
) -> None:
    if node.key in nodes:
        raise ValueError(f"duplicate step key {node.key!r}")
    nodes[node.key] = node
    if isinstance(node, JobNode | FanOutNode):
        return
    children: Sequence[Node | FanOutNode] = (
        node.steps if isinstance(node, ChainNode) else node.members
    )
    role: Role = "step" if isinstance(node, ChainNode) else "member"
    for child in children:
        parents[child.key] = (node, role)
        _index(child, nodes, parents)
    for callback_role, callback in callbacks(node):
        parents[callback.key] = (node, callback_role)
        _index(callback, nodes, parents)


def _jobs(node: Node | FanOutNode) -> Iterator[JobNode]:
    if isinstance(node, JobNode):
        yield node
    elif isinstance(node, FanOutNode):
        yield from (node.member(i) for i in range(len(node.items)))
    else:
        for child in node.steps if isinstance(node, ChainNode) else node.members:
            yield from _jobs(child)
        for _, callback in callbacks(node):
            yield from _jobs(callback)
