"""Durations in the CLI: `format_duration` writes them for people, `to_seconds` reads them.

`format_duration` lives in `arvel_flow.durations` (below the runtime, whose ``plan``
reports use it too); it is imported here for the renderers, which take it from here.

`to_seconds` is the click callback of options that take an age, such as ``--older-than 7d``.

Durations are parsed by the file format's one parser
(`arvel_flow.pipeline.fields.parse_duration`), so ``--older-than`` reads as a pipeline
file's ``timeout_seconds`` does: ``90`` (seconds), ``90s``, ``10m``, ``2h``, ``7d``. The
parser is imported only when such an option is given.
"""

from __future__ import annotations

import click

from arvel_flow.durations import format_duration
from arvel_flow.scalars import parse_number

__all__ = ["format_duration", "to_seconds"]


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
