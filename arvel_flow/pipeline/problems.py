"""What every check in `arvel_flow.pipeline` reports: a `Problem` at a path in the document.

A path is the chain of mapping keys and sequence indexes from the document root, as
Pydantic reports ``loc``. Problems carry no line numbers: the loader turns them into
`ConfigIssue` objects with positions looked up once, in the `SourceMap`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Path = tuple[str | int, ...]
Anchor = Literal["value", "key", "parent"]

MAX_PROBLEMS = 200
"""Most problems reported per file; the rest are counted. Past a few hundred, more
messages help nobody, and a 16 MiB file can hold hundreds of thousands of them."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a pipeline document.

    Attributes:
        path: Where in the document, from the root.
        message: What is wrong, and how to fix it when that is likely.
        at: Which position to report: the value at ``path``, the key that names it, or
            the mapping that should have contained it (for a missing key).
        severity: ``warning`` for a trap that does not make the file invalid (a step
            with the class's default retries, say): reported, never failing.
    """

    path: Path
    message: str
    at: Anchor = "value"
    severity: Literal["error", "warning"] = "error"


def format_path(path: Path) -> str:
    """Render ``("pipeline", "chain", 0, "with")`` as ``pipeline.chain[0].with``.

    A key that is empty or holds a line break or another unprintable character is
    written quoted, ``jobs["a\\nb"]``: a problem stays one line, whatever the file's keys.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.isprintable() or not part:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
        else:
            text += f".{part}" if text else part
    return text


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``"; did you mean 'x'?"`` suffix for a misspelt name, or ``""``."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def is_dotted_path(reference: str) -> bool:
    """Whether a ``job:`` value names a class by path rather than a template by name."""
    return "." in reference or ":" in reference
