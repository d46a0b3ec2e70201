"""`format_duration`: the one way arvel-flow writes a span of time for people.

``0.8s``, ``42s``, ``2m 5s``, ``1h 3m``: the live view, plain lines, summaries,
``status``, ``plan`` and warnings all write durations with it. It sits in the
foundation layer, below both the runtime's ``plan`` reports (`arvel_flow.explain`)
and the CLI. Durations are *read* by the file format's one parser
(`arvel_flow.pipeline.fields.parse_duration`).
"""

from __future__ import annotations

import math

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float, *, exact: bool = False) -> str:
    """``0.8155`` → ``0.8s``, ``42.4`` → ``42s``, ``125`` → ``2m 5s``, ``3700`` → ``1h 1m``.

    A tenth of a second under ten seconds, whole seconds under a minute, then the two
    largest units; infinity is ``forever``. ``exact`` (a setting, as ``plan`` shows
    one) keeps every unit down to the second, and a value under a minute as given:
    ``0.25s``, ``1h 1m 40s``.
    """
    if not math.isfinite(seconds):
        return "forever"
    seconds = max(seconds, 0.0)
    if exact and seconds < 60:
        return f"{seconds:g}s"
    if seconds < 9.95:
        return f"{seconds:.1f}".removesuffix(".0") + "s"
    if seconds < 59.5:
        return f"{round(seconds)}s"
    remaining = round(seconds)
    parts: list[str] = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append(f"{count}{unit}")
    shown = parts if exact else parts[:2]
    return " ".join(shown[:1] + [part for part in shown[1:] if not part.startswith("0")])


def format_exact(seconds: float) -> str:
    """A duration that is a setting (a timeout, a backoff), every unit kept: ``1m 30s``."""
    return format_duration(seconds, exact=True)
