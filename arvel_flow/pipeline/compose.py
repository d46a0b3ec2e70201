"""Builds plain data and a position tree from PyYAML events, counting alias expansion.

This is the only place that sees YAML events; see `arvel_flow.pipeline.source` for what
is refused and why the event stream is read directly.
"""

from __future__ import annotations

from array import array
from typing import Any

from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.pipeline.problems import MAX_PROBLEMS, Path, format_path
from arvel_flow.scalars import (
    CORE_TAG,
    UNKNOWN_TAG,
    construct_tagged,
    resolve_plain,
    show_tag,
)

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences, aliases expanded."""

MAX_ALIAS_NODES = 100_000
"""Most nodes that aliases may add to a document when expanded."""

_MAP_TAGS = frozenset({None, "!", CORE_TAG + "map"})
_SEQ_TAGS = frozenset({None, "!", CORE_TAG + "seq"})
_SCALAR_TAGS = frozenset(
    {None, "!", *(CORE_TAG + name for name in ("str", "int", "float", "bool", "null"))}
)
_EXPECT_KEY: Any = object()
_BAD_KEY: Any = object()


class PlainText(str):
    """An unquoted scalar containing ``${``: a whole-value reference in it may be typed."""

    __slots__ = ()


class ItemPositions:
    """Where each item of a sequence starts: scalars as two numbers, others as nodes.

    A node object per item would cost about 90 bytes; a 1,000,000-item ``matrix`` axis
    holds its positions in 8 bytes each.
    """

    __slots__ = ("columns", "lines", "nodes")

    def __init__(self) -> None:
        self.lines = array("I")
        self.columns = array("I")
        self.nodes: dict[int, PositionNode] = {}
        """Items with children of their own (or shared through an alias), by index."""

    def append(self, node: PositionNode) -> None:
        """Add the next item's position."""
        if node.children is not None:
            self.nodes[len(self.lines)] = node
        self.lines.append(node.line)
        self.columns.append(node.column)

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> PositionNode:
        node = self.nodes.get(index)
        if node is None:
            return PositionNode(self.lines[index], self.columns[index], None)
        return node


class PositionNode:
    """Where a value starts, and its children: ``{key: (line, column, node)}`` or
    `ItemPositions`."""

    __slots__ = ("children", "column", "line")

    def __init__(self, line: int, column: int, children: Any) -> None:
        self.line = line
        self.column = column
        # Any: a mapping's children are keyed (with key positions), a sequence's listed;
        # the hot path of `Composer` indexes them without re-checking which.
        self.children: Any = children

    def child(self, part: str | int) -> tuple[int, int, PositionNode] | None:
        """The key position and node of a child, or None when there is no such child."""
        children = self.children
        if isinstance(children, dict) and isinstance(part, str):
            found: tuple[int, int, PositionNode] | None = children.get(part)
            return found
        if (
            isinstance(children, ItemPositions)
            and isinstance(part, int)
            and 0 <= part < len(children)
        ):
            node: PositionNode = children[part]
            return node.line, node.column, node
        return None


class _Frame:
    """A mapping or sequence whose events are still arriving."""

    __slots__ = (
        "anchor",
        "dropped",
        "height",
        "is_key",
        "is_map",
        "key",
        "key_at",
        "node",
        "path",
        "size",
        "value",
    )

    def __init__(
        self, is_map: bool, node: PositionNode, anchor: str | None, path: Path, is_key: bool
    ) -> None:
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.node = node
        self.anchor = anchor
        self.path = path
        self.is_key = is_key
        self.size = 1
        self.height = 0
        self.dropped = False
        self.key: Any = _EXPECT_KEY
        self.key_at = (0, 0)


class Composer:
    """Consumes one loader's events into ``root``: ``(data, PositionNode)``."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.root: tuple[Any, PositionNode | None] = (None, None)
        self.issues: list[ConfigIssue] = []
        self.omitted = 0
        self.dropped: set[Path] = set()
        self._stack: list[_Frame] = []
        self._anchors: dict[str, tuple[Any, PositionNode, int, int]] = {}
        self._open_anchors: set[str] = set()
        self._extra = 0
        self._documents = 0

    def run(self, loader: Any) -> None:
        """Read every event; raises `ConfigError` on a fatal problem."""
        check_event, get_event = loader.check_event, loader.get_event
        while check_event():
            event = get_event()
            kind = type(event)
            if kind is ScalarEvent:
                self._scalar(event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._start(event, kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self._end()
            elif kind is AliasEvent:
                self._alias(event)
            elif kind is DocumentStartEvent:
                self._documents += 1
                if self._documents > 1:
                    self._fatal(
                        "a pipeline file holds one YAML document; this is a second one", event
                    )

    def _issue(self, message: str, path: Path, line: int, column: int) -> None:
        if len(self.issues) >= MAX_PROBLEMS:
            self.omitted += 1  # counted, not kept: a file may hold 100,000s of them
            return
        self.issues.append(ConfigIssue(message, format_path(path), self.file, line, column))

    def _fatal(self, message: str, event: Any) -> None:
        mark = event.start_mark
        path = self._child_path(self._stack[-1] if self._stack else None)
        issue = ConfigIssue(message, format_path(path), self.file, mark.line + 1, mark.column + 1)
        raise ConfigError([*self.issues, issue], omitted=self.omitted)

    def _child_path(self, parent: _Frame | None) -> Path:
        if parent is None:
            return ()
        if parent.is_map:
            return (*parent.path, parent.key) if isinstance(parent.key, str) else parent.path
        return (*parent.path, len(parent.value))

    def _key_slot(self) -> _Frame | None:
        """The mapping waiting for a key, if the next node is a key."""
        frame = self._stack[-1] if self._stack else None
        return frame if frame is not None and frame.is_map and frame.key is _EXPECT_KEY else None

    def _place(self, value: Any, node: PositionNode, size: int, height: int) -> None:
        if not self._stack:
            self.root = (value, node)
            return
        frame = self._stack[-1]
        frame.size += size
        frame.height = max(frame.height, height)
        if not frame.is_map:
            frame.value.append(value)
            frame.node.children.append(node)
            return
        key, frame.key = frame.key, _EXPECT_KEY
        if key is not _BAD_KEY:
            frame.value[key] = value
            frame.node.children[key] = (*frame.key_at, node)

    def _scalar(self, event: Any) -> None:
        # The hot path of a large file (every key and most values are scalars): the
        # common cases of `_key_slot`, `_key`, `_scalar_value` and `_place` inline.
        mark = event.start_mark
        line, column = mark.line + 1, mark.column + 1
        frame = self._stack[-1] if self._stack else None
        if frame is not None and frame.is_map and frame.key is _EXPECT_KEY:
            frame.size += 1
            text = event.value
            plain_key = event.tag is None and text != "<<" and not event.anchor
            if plain_key and text not in frame.node.children:
                frame.key, frame.key_at = text, (line, column)
                return
            self._key(frame, event, line, column)
            return
        node = PositionNode(line, column, None)
        tag = event.tag
        if (tag is None or tag == "!") and not event.implicit[0]:
            value = event.value  # quoted: a string as written
        else:
            value = self._scalar_value(event, line, column)
        if event.anchor:
            self._anchors[event.anchor] = (value, node, 1, 1)
        if frame is None:
            self.root = (value, node)
            return
        frame.size += 1
        frame.height = frame.height or 1
        if not frame.is_map:
            frame.value.append(value)
            frame.node.children.append(node)
            return
        key, frame.key = frame.key, _EXPECT_KEY
        if key is not _BAD_KEY:
            frame.value[key] = value
            frame.node.children[key] = (*frame.key_at, node)

    def _key(self, frame: _Frame, event: Any, line: int, column: int) -> None:
        text: str = event.value
        frame.key = _BAD_KEY
        if event.tag not in _SCALAR_TAGS:
            self._issue(f"unsupported tag {show_tag(event.tag)} on a key", frame.path, line, column)
        elif text == "<<" and event.implicit[0]:
            self._issue(
                "merge keys ('<<') are not supported; share settings with 'defaults' "
                "or a job template under 'jobs'",
                frame.path,
                line,
                column,
            )
        elif text in frame.node.children:
            first = frame.node.children[text][0]
            self._issue(
                f"duplicate key {text!r} (first defined on line {first})",
                (*frame.path, text),
                line,
                column,
            )
        else:
            frame.key, frame.key_at = text, (line, column)
            if event.anchor:
                self._anchors[event.anchor] = (text, PositionNode(line, column, None), 1, 1)

    def _scalar_value(self, event: Any, line: int, column: int) -> Any:
        tag, text = event.tag, event.value
        if tag is None or tag == "!":
            if not event.implicit[0]:
                return text
            value = resolve_plain(text)
            return PlainText(value) if isinstance(value, str) and "${" in value else value
        value, ok = construct_tagged(tag, text)
        if not ok:
            path = self._child_path(self._stack[-1] if self._stack else None)
            problem = (
                "is not supported" if value is UNKNOWN_TAG else f"does not fit the value {text!r}"
            )
            self._issue(
                f"tag {show_tag(tag)} {problem}; only the YAML core schema "
                "(str, int, float, bool, null, map, seq) is allowed",
                path,
                line,
                column,
            )
            self.dropped.add(path)
            return None
        return value

    def _start(self, event: Any, is_map: bool) -> None:
        stack = self._stack
        if len(stack) >= MAX_DEPTH:
            self._fatal(f"nesting deeper than {MAX_DEPTH} levels", event)
        mark = event.start_mark
        # `_key_slot` and `_child_path` inline: a large file opens a container per step.
        path: Path = ()
        is_key = False
        if stack:
            parent = stack[-1]
            is_key = parent.is_map and parent.key is _EXPECT_KEY
            if not parent.is_map:
                path = (*parent.path, len(parent.value))
            elif isinstance(parent.key, str):
                path = (*parent.path, parent.key)
            else:
                path = parent.path
        node = PositionNode(mark.line + 1, mark.column + 1, {} if is_map else ItemPositions())
        frame = _Frame(is_map, node, event.anchor, path, is_key)
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            self._issue(
                f"tag {show_tag(event.tag)} is not supported; only the YAML core schema "
                "(str, int, float, bool, null, map, seq) is allowed",
                frame.path,
                node.line,
                node.column,
            )
            frame.dropped = True
        if event.anchor:
            self._open_anchors.add(event.anchor)
        self._stack.append(frame)

    def _end(self) -> None:
        frame = self._stack.pop()
        value = None if frame.dropped else frame.value
        if frame.dropped:
            self.dropped.add(frame.path)
        height = frame.height + 1
        if frame.anchor:
            self._open_anchors.discard(frame.anchor)
            self._anchors[frame.anchor] = (value, frame.node, frame.size, height)
        if frame.is_key:
            parent = self._stack[-1]
            parent.size += frame.size
            parent.key = _BAD_KEY
            self._issue(
                "mapping keys must be strings, not a mapping or a list",
                parent.path,
                frame.node.line,
                frame.node.column,
            )
            return
        if not self._stack:
            self.root = (value, frame.node)
            return
        # `_place` inline: a container is placed in its parent when it ends.
        parent = self._stack[-1]
        parent.size += frame.size
        if height > parent.height:
            parent.height = height
        if not parent.is_map:
            parent.value.append(value)
            parent.node.children.append(frame.node)
            return
        key, parent.key = parent.key, _EXPECT_KEY
        if key is not _BAD_KEY:
            parent.value[key] = value
            parent.node.children[key] = (*parent.key_at, frame.node)

    def _alias(self, event: Any) -> None:
        mark = event.start_mark
        line, column = mark.line + 1, mark.column + 1
        slot = self._key_slot()
        if slot is not None:
            slot.key = _BAD_KEY
            self._issue("mapping keys must be strings, not aliases", slot.path, line, column)
            return
        path = self._child_path(self._stack[-1] if self._stack else None)
        found = self._anchors.get(event.anchor)
        if found is None:
            recursive = event.anchor in self._open_anchors
            why = (
                "an anchor cannot contain an alias to itself"
                if recursive
                else "no anchor of that name before it"
            )
            self._issue(
                f"{'recursive' if recursive else 'undefined'} alias '*{event.anchor}': {why}",
                path,
                line,
                column,
            )
            self.dropped.add(path)
            self._place(None, PositionNode(line, column, None), 1, 1)
            return
        value, node, size, height = found
        if len(self._stack) + height > MAX_DEPTH:
            self._fatal(
                f"alias '*{event.anchor}' nests the document deeper than {MAX_DEPTH} levels", event
            )
        self._extra += size
        if self._extra > MAX_ALIAS_NODES:
            self._fatal(
                f"aliases expand the document by more than {MAX_ALIAS_NODES:,} nodes (this one "
                f"adds {size:,}); is this a 'billion laughs' document?",
                event,
            )
        self._place(value, node, size, height)
