"""YAML text → plain data and a `SourceMap`, refusing input that could hurt.

The document is read from PyYAML's event stream (libyaml's ``CSafeLoader`` when
present, else ``SafeLoader``): nothing is ever constructed from a tag, so python tags
cannot run code. Building values and positions from events in one pass is several
times faster than composing PyYAML nodes and walking them, which matters for a
100,000-item fan-out.

Refused, with the position of the offending text:

* more than `MAX_BYTES`, binary data, text that is not UTF-8 (fatal);
* YAML syntax errors, several documents, an empty document, a top level that is not
  a mapping (fatal);
* nesting deeper than `MAX_DEPTH` levels, aliases included (fatal);
* aliases that would add more than `MAX_ALIAS_NODES` nodes when expanded: the
  expanded size of every anchor is counted as the stream is read, so a "billion
  laughs" document fails within milliseconds, long before anything expands it (fatal);
* duplicate keys, keys that are not strings, merge keys (``<<``), undefined or
  recursive aliases, tags beyond the YAML 1.2 core schema (reported; the value is
  dropped and validation goes on with the rest).
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.pipeline.compose import Composer, PositionNode
from arvel_flow.pipeline.problems import Anchor, Path
from arvel_flow.pipeline.yaml_errors import describe_yaml_error

MAX_BYTES = 16 * 1024 * 1024
"""Largest pipeline file accepted (16 MiB: a 100,000-item fan-out is about 3 MiB)."""

_FORBIDDEN_CHARS = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in the source text."""

    line: int
    column: int


class SourceMap:
    """Maps a path in the document to the position of its value or its key.

    Lookups walk the position tree built with the data; a path that leaves the tree
    (a key that is not there, an index past the end) resolves to its longest prefix.
    """

    def __init__(self, root: PositionNode | None) -> None:
        self._root = root

    def find(self, path: Path, at: Anchor = "value") -> Position:
        """Where ``path`` is: its value, the key naming it, or its enclosing mapping."""
        if at == "parent":
            path = path[:-1]
            at = "key" if path and isinstance(path[-1], str) else "value"
        node = self._root
        line, column = (1, 1) if node is None else (node.line, node.column)
        key_line, key_column = line, column
        for part in path:
            child = None if node is None else node.child(part)
            if child is None:
                return Position(line, column)
            key_line, key_column, node = child
            line, column = node.line, node.column
        if at == "key" and path and isinstance(path[-1], str):
            return Position(key_line, key_column)
        return Position(line, column)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed pipeline document: its data, where each part came from, what was wrong.

    Attributes:
        data: The top-level mapping, as plain dicts, lists and scalars.
        source_map: Positions of every key and value.
        issues: Non-fatal problems found while reading (duplicate keys, tags, ...).
        omitted: Further such problems, counted but not kept.
        dropped: Paths whose values were dropped because of those problems; later
            checks say nothing more about them.
    """

    data: dict[str, Any]
    source_map: SourceMap
    issues: tuple[ConfigIssue, ...] = ()
    dropped: frozenset[Path] = field(default_factory=frozenset)
    omitted: int = 0


def decode_source(raw: bytes, *, file: str | None = None) -> str:
    """Bytes of a pipeline file → text, refusing oversized, binary or non-UTF-8 input."""
    check_size(len(raw), file=file)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise _fatal(
            "binary data, not a YAML text file (NUL byte)", raw.decode("latin-1"), nul, file
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        text = raw[: error.start].decode("utf-8", "replace")
        message = f"not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as UTF-8"
        raise _fatal(message, text, len(text), file) from None


def check_size(size: int, *, file: str | None = None) -> None:
    """Refuse a file past `MAX_BYTES` before reading any further."""
    if size > MAX_BYTES:
        message = f"the file is {size:,} bytes; pipeline files are limited to {MAX_BYTES:,}"
        raise ConfigError([ConfigIssue(message, file=file)])


def parse_document(text: str, *, file: str | None = None) -> Document:
    """Read one YAML document that must be a mapping.

    Raises:
        ConfigError: For a fatal problem: syntax, size, binary data, depth, alias
            expansion, an empty file or a top level that is not a mapping.
    """
    check_size(len(text), file=file)
    bad = _FORBIDDEN_CHARS.search(text)
    if bad is not None:
        message = f"binary data or a control character (U+{ord(bad.group()):04X}) in the text"
        raise _fatal(message, text, bad.start(), file)
    composer = _compose(text, file)
    data, positions = composer.root
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {_kind(data)}"
        message = "the file is empty" if data is None else "the top level must be a mapping"
        raise ConfigError(
            [
                *composer.issues,
                ConfigIssue(
                    f"{message}: found {kind}; a pipeline starts with 'version: 1'",
                    file=file,
                    line=1,
                    column=1,
                ),
            ],
            omitted=composer.omitted,
        )
    return Document(
        data,
        SourceMap(positions),
        tuple(composer.issues),
        frozenset(composer.dropped),
        composer.omitted,
    )


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the block runs.

    Reading a large pipeline allocates hundreds of thousands of small acyclic objects
    (values, positions, paths), which reference counting frees; the cyclic collector
    would rescan the growing heap again and again for nothing (a 100,000-item file
    parses 25% faster without it; a 5,000-step file validates 20% faster).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _compose(text: str, file: str | None) -> Composer:
    """Run the composer over the event stream, turning YAML errors into issues."""
    composer = Composer(file)
    loader = _LOADER(text)
    try:
        with cyclic_gc_paused():
            composer.run(loader)
    except yaml.MarkedYAMLError as error:
        raise ConfigError(
            [*composer.issues, _syntax_issue(error, text, file)], omitted=composer.omitted
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(
            [*composer.issues, ConfigIssue(f"invalid YAML: {error}", file=file)],
            omitted=composer.omitted,
        ) from None
    finally:
        loader.dispose()
    return composer


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    return "string" if isinstance(value, str) else type(value).__name__


def _syntax_issue(error: yaml.MarkedYAMLError, text: str, file: str | None) -> ConfigIssue:
    message, mark = describe_yaml_error(error, text)
    if mark is None:
        return ConfigIssue(message, file=file)
    return ConfigIssue(message, file=file, line=mark.line + 1, column=mark.column + 1)


def _fatal(message: str, text: str, offset: int, file: str | None) -> ConfigError:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return ConfigError([ConfigIssue(message, file=file, line=line, column=column)])
