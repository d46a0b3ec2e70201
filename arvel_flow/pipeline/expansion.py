"""The interpolation budget: how much ``${...}`` references may add to a document.

Like aliases (`arvel_flow.pipeline.compose.MAX_ALIAS_NODES`), references let a small file
stand for a huge document: a 100,000-item list in ``vars`` used as ``each:`` by
2,000 steps, or a 1 MiB string embedded in thousands of values. Interpolation itself
shares a whole value by reference, but everything after it (validation, compiling,
the plan) makes each use its own copy, so every use is charged, shared or not.

A use costs what it substitutes: for a whole value, its nodes (each mapping, list,
key and scalar, measured once per reference and cached) and the UTF-8 bytes of its
strings; for a reference embedded in text, one node and the bytes of the text it
inserts. Past either limit, the document is refused at the reference that crossed
it, and nothing more is expanded.
"""

from __future__ import annotations

from typing import Any

from arvel_flow.pipeline.problems import Path

MAX_INTERPOLATED_NODES = 2_000_000
"""Most nodes that references may add to a document: twenty times the alias limit,
about what a full-size file holds. A 100,000-item ``each`` list of one-key items adds
300,001 nodes per use, so six uses fit (``validate`` then peaks near 250 MB)."""

MAX_INTERPOLATED_BYTES = 16 * 1024 * 1024
"""Most bytes of text that references may add: as much as the largest file holds."""


class ExpansionLimitError(Exception):
    """A reference would take the document past the interpolation budget.

    Attributes:
        message: What was exceeded, by how much, and what to do.
        path: Where the reference is; set by the interpolator, which knows it.
    """

    def __init__(self, message: str, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def at(self, path: Path) -> ExpansionLimitError:
        """The same error, located at ``path``."""
        return ExpansionLimitError(self.message, path)


class ExpansionBudget:
    """Counts what references substitute across a whole document, refusing past the limits."""

    def __init__(
        self,
        *,
        max_nodes: int = MAX_INTERPOLATED_NODES,
        max_bytes: int = MAX_INTERPOLATED_BYTES,
    ) -> None:
        self.max_nodes = max_nodes
        self.max_bytes = max_bytes
        self.nodes = 0
        self.bytes = 0
        self._sizes: dict[tuple[str, bool], tuple[int, int]] = {}

    def charge(self, reference: str, value: Any, *, embedded: bool = False) -> None:
        """Count one use of ``${reference}``, which substitutes ``value``.

        Raises:
            ExpansionLimitError: When this use takes the total past a limit.
        """
        key = (reference, embedded)
        size = self._sizes.get(key)
        if size is None:
            size = (1, _text_bytes(value)) if embedded else self._measure(value)
            self._sizes[key] = size
        nodes, size_bytes = size
        self.nodes += nodes
        self.bytes += size_bytes
        if self.nodes > self.max_nodes:
            raise ExpansionLimitError(_message(reference, self.max_nodes, nodes, "nodes"))
        if self.bytes > self.max_bytes:
            raise ExpansionLimitError(_message(reference, self.max_bytes, size_bytes, "bytes"))

    def _measure(self, value: Any) -> tuple[int, int]:
        """Nodes and string bytes of ``value``; stops counting once past the limits."""
        nodes = size_bytes = 0
        pending = [value]
        while pending and nodes <= self.max_nodes and size_bytes <= self.max_bytes:
            item = pending.pop()
            nodes += 1
            if isinstance(item, dict):
                nodes += len(item)
                size_bytes += sum(_text_bytes(key) for key in item)
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
            else:
                size_bytes += _text_bytes(item)
        return nodes, size_bytes


def _message(reference: str, limit: int, adds: int, unit: str) -> str:
    each_use = (
        f"adds {adds:,} {unit} each time it is used"
        if adds <= limit
        else "alone adds more than that"
    )
    return (
        f"interpolation would expand the document by more than {limit:,} {unit} "
        f"('${{{reference}}}' {each_use}); use large values in fewer places"
    )


def _text_bytes(value: Any) -> int:
    return len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0
