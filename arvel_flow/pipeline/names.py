"""Names the file writes and the runtime reads, checked by their shape alone.

Module prefixes (``queue.allowed_modules``, ``--allow``) and ``{field}`` key
templates are written in a pipeline file, in ``ARVEL_FLOW_*`` variables and in
Python. Their shape is decided here, once, without importing anything: the
runtime (the allowlist, `format_key`) builds on these functions, never the
other way round.
"""

from __future__ import annotations

import string
from collections.abc import Iterable


def is_identifier(segment: str) -> bool:
    """Whether one segment of a dotted path is an ASCII identifier."""
    return segment.isascii() and segment.isidentifier()


def parse_prefixes(values: Iterable[str]) -> tuple[str, ...]:
    """Allowed module prefixes, normalised: blanks and one trailing ``.`` or ``:`` dropped.

    Raises:
        ValueError: A prefix is empty or not dotted identifiers (``myapp.jobs``).
    """
    prefixes: list[str] = []
    for value in values:
        prefix = value.strip()
        if prefix.endswith((".", ":")):
            prefix = prefix[:-1]
        if not prefix:
            raise ValueError(f"an empty module prefix ({value!r}); name one such as 'myapp.jobs'")
        if not all(is_identifier(segment) for segment in prefix.split(".")):
            raise ValueError(
                f"{value!r} is not a module prefix: expected dotted identifiers "
                "such as 'myapp.jobs'"
            )
        if prefix not in prefixes:
            prefixes.append(prefix)
    return tuple(prefixes)


def key_fields(template: str) -> list[str]:
    """The job fields a ``{field}`` key template reads, each by its bare name.

    A key may come from a message, so nothing else is read: ``{f.__class__}``,
    ``{f[0]}``, ``{f!r}`` or ``{f:>99999999}`` would let it walk to the worker's
    globals (its environment, say) or blow its memory up.

    Raises:
        ValueError: The template is malformed, or a placeholder is not a field name.
    """
    names: list[str] = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or name.startswith("_") or spec or conversion:
            placeholder = (
                name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            )
            raise ValueError(f"'{{{placeholder}}}' does not name a job field")
        names.append(name)
    return names
