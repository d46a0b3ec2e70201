"""Field types of the pipeline file that JSON Schema and Pydantic must read alike.

Durations are parsed here, and only here: ``90`` (seconds), ``"90s"``, ``"10m"``,
``"2h"``, ``"1d"``, ``"500ms"`` all become float seconds, at most `MAX_DURATION`.
Each type carries its JSON Schema, so an editor rejects what the loader rejects (a
duration written as text past the maximum is the one thing a pattern cannot catch).

The numeric limits below bound what a file can make the tool compute and hold: a
retry timeline, a wait, a semaphore. Each is far beyond any real pipeline.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PlainValidator, Tag, WithJsonSchema
from pydantic_core import PydanticCustomError

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")
_POSITIVE = re.compile(r"^(?=[0-9.]*[1-9])([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PERCENT = re.compile(r"^(?:100(?:\.0+)?|[0-9]{1,2}(?:\.[0-9]+)?)%$")

MAX_DURATION = 365 * 86400.0
"""Longest duration (timeouts, waits, locks, windows): a year. The runner never waits
longer than this either (`arvel_flow.queue.backoff.MAX_WAIT`)."""

MAX_RETRIES = 10_000
"""Most retries of one job: every minute for a week. Longer polling is a schedule."""

MAX_BACKOFF_BASE = 100.0
"""Largest base of exponential backoff; past it the second wait is already hours."""

MAX_BACKOFF_STEPS = 1_000
"""Longest list of per-attempt waits."""

MAX_CONCURRENCY = 10_000
"""Most jobs at once, for a batch and for ``queue.concurrency`` (RabbitMQ's prefetch
count stops at 65,535; connection pools are sized from it)."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
"""A pipeline's ``name``."""

STEP_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
"""A step ``id``: it becomes a plan key, where ``.`` and ``[`` separate parts."""

REF_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
"""Names of job templates, retry policies and middleware stacks: never dotted paths."""

VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Names under ``vars``, as ``${vars.name}`` refers to them."""

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Environment variable names, as ``${NAME}`` and ``secrets:`` name them."""


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``90s``, ``10m``, ``2h``; a year at most."""
    seconds = _seconds(value)
    if seconds is None:
        raise PydanticCustomError(
            "duration", "Input should be seconds (a number >= 0) or a duration such as 90s, 10m, 2h"
        )
    if seconds > MAX_DURATION:
        raise PydanticCustomError(
            "duration_too_long",
            f"Input should be at most 365d ({MAX_DURATION:,.0f} seconds)",
        )
    return seconds


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value >= 0 and (isinstance(value, int) or math.isfinite(value)):
            return float(value) if value <= MAX_DURATION else math.inf
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def parse_positive_duration(value: Any) -> float:
    """A duration that must be longer than zero (a lock's lifetime, a timeout)."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise PydanticCustomError("positive_duration", "Input should be a duration greater than 0")
    return seconds


def parse_version(value: Any) -> int:
    """``version: 1``; unlike ``Literal[1]``, refuses ``true`` (which equals 1 in Python)."""
    if value == 1 and type(value) is int:
        return 1
    raise PydanticCustomError("version", "Input should be 1")


def parse_allowance(value: Any) -> bool | int | str:
    """``allow_failures``: a bool, a count >= 0, or a share such as ``"10%"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and _PERCENT.match(value):
        return value
    raise PydanticCustomError(
        "allowance",
        "Input should be true, false, a number of members >= 0, or a share such as '10%'",
    )


_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
        {"type": "string", "pattern": _DURATION.pattern},
    ]
}

Duration = Annotated[float, PlainValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
"""Seconds, written as a number or as ``90s`` / ``10m`` / ``2h`` / ``1d`` / ``500ms``."""

PositiveDuration = Annotated[
    float,
    PlainValidator(parse_positive_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION},
                {"type": "string", "pattern": _POSITIVE.pattern},
            ]
        }
    ),
]
"""A `Duration` longer than zero."""

Version = Annotated[int, PlainValidator(parse_version), WithJsonSchema({"const": 1})]
"""The format version: 1."""

Allowance = Annotated[
    bool | int | str,
    PlainValidator(parse_allowance),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": _PERCENT.pattern},
            ]
        }
    ),
]
"""How many members of a batch may fail: false (none), true (any), a count or a share."""


def _backoff_kind(value: Any) -> str:
    if isinstance(value, list):
        return "<list>"
    return "<exponential>" if value == "exponential" else "<seconds>"


Backoff = Annotated[
    Annotated[Duration, Tag("<seconds>")]
    | Annotated[list[Duration], Field(min_length=1, max_length=MAX_BACKOFF_STEPS), Tag("<list>")]
    | Annotated[Literal["exponential"], Tag("<exponential>")],
    Discriminator(_backoff_kind),
]
"""Seconds between attempts: the same every time, one per attempt, or ``exponential``."""
