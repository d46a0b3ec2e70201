"""Field types of the pipeline file that JSON Schema and Pydantic must read alike.

Durations are parsed here, and only here: ``90`` (seconds), ``"90s"``, ``"10m"``,
``"2h"``, ``"1d"``, ``"500ms"`` all become float seconds. Each type carries its JSON
Schema, so an editor rejects exactly what the loader rejects.
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
    """Seconds from a number or a string such as ``90s``, ``10m``, ``2h``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise PydanticCustomError(
        "duration", "Input should be seconds (a number >= 0) or a duration such as 90s, 10m, 2h"
    )


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
        {"type": "number", "minimum": 0},
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
                {"type": "number", "exclusiveMinimum": 0},
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
    | Annotated[list[Duration], Field(min_length=1), Tag("<list>")]
    | Annotated[Literal["exponential"], Tag("<exponential>")],
    Discriminator(_backoff_kind),
]
"""Seconds between attempts: the same every time, one per attempt, or ``exponential``."""
