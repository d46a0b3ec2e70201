"""Durations in the CLI: `format_duration` writes them for people, `to_seconds` reads them.

`format_duration` is the one way every renderer (live view, plain lines, summaries,
``status``) shows a span of time: ``0.8s``, ``42s``, ``2m 5s``, ``1h 3m``.

`to_seconds` is the click callback of options that take an age, such as ``--older-than 7d``.

Durations are parsed by the file format's one parser
(`arvel_flow.pipeline.fields.parse_duration`), so ``--older-than`` reads as a pipeline
file's ``timeout_seconds`` does: ``90`` (seconds), ``90s``, ``10m``, ``2h``, ``7d``. The
parser is imported only when such an option is given.
"""

from __future__ import annotations

import math

import click

from arvel_flow.scalars import parse_number


def to_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Float seconds from the option's text (None when not given), or a usage error (exit 2)."""
    from pydantic_core import PydanticCustomError

    from arvel_flow.pipeline.fields import parse_duration

    if value is None:
        return None
    text = value.strip()
    number = parse_number(text)
    try:
        return parse_duration(text if number is None else number)
    except PydanticCustomError as error:
        raise click.BadParameter(f"{value!r}: {error.message()}", ctx, param) from None


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """``0.8155`` → ``0.8s``, ``42.4`` → ``42s``, ``125`` → ``2m 5s``, ``3700`` → ``1h 1m``.

    A tenth of a second under ten seconds, whole seconds under a minute, then the two
    largest units; infinity is ``forever``.
    """
    if not math.isfinite(seconds):
        return "forever"
    seconds = max(seconds, 0.0)
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
    shown = parts[:2]
    return " ".join(shown[:1] + [part for part in shown[1:] if not part.startswith("0")])
