"""Typing of plain YAML scalars by the YAML 1.2 core schema, nothing more.

PyYAML resolves by YAML 1.1, where ``no``, ``on`` and ``2024-01-01`` stop being strings
(the "Norway problem"). Editors and JSON Schema validators read YAML 1.2, so the
pipeline file does too: only ``null``, ``true`` / ``false``, integers and floats are
typed; everything else stays a string. ``--set`` values and whole-value environment
references are typed by the same rules. Explicit tags are honoured for the core types
only (``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``).

It sits below both the file format (`arvel_flow.pipeline`) and `arvel_flow.secrets`,
which types a resolved ``$plain`` reference by these rules in the process running the
job; so it imports nothing of arvel-flow.
"""

from __future__ import annotations

import math
import re
from typing import Any

_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)\Z")
_NUMERIC_START = frozenset("0123456789+-.")


def resolve_plain(text: str) -> Any:
    """The value of an unquoted scalar under the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text[0] in _NUMERIC_START:
        number = parse_number(text)
        if number is not None:
            return number
    return text


def parse_number(text: str) -> int | float | None:
    """An int or float written as YAML 1.2 core allows, else None."""
    try:
        if _INT.match(text):
            return int(text)
        if _OCT.match(text):
            return int(text[2:], 8)
        if _HEX.match(text):
            return int(text[2:], 16)
    except ValueError:
        # Python refuses to parse ints of more than 4,300 digits; such a value is
        # text as far as the pipeline is concerned, and validation says so.
        return None
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return None


def parse_bool(text: str) -> bool | None:
    """``true`` / ``false`` in any of the core spellings, else None."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def is_null(text: str) -> bool:
    """Whether ``text`` spells null in the core schema."""
    return text in _NULL


def format_scalar(value: Any) -> str:
    """A scalar as it would be written in YAML, for embedding into a string."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


CORE_TAG = "tag:yaml.org,2002:"
UNKNOWN_TAG: Any = object()
"""What `construct_tagged` returns for a tag outside the core schema."""


def construct_tagged(tag: str, text: str) -> tuple[Any, bool]:
    """The value of an explicitly tagged scalar and whether it fits; `UNKNOWN_TAG` if unknown."""
    name = tag[len(CORE_TAG) :] if tag.startswith(CORE_TAG) else None
    if name == "str":
        return text, True
    if name in ("int", "float"):
        number = parse_number(text)
        if name == "int":
            return number, isinstance(number, int)
        return (None if number is None else float(number)), number is not None
    if name == "bool":
        flag = parse_bool(text)
        return flag, flag is not None
    if name == "null":
        return None, is_null(text)
    return UNKNOWN_TAG, False


def show_tag(tag: str) -> str:
    """A tag as written in YAML: ``!!python/object`` rather than its full URI."""
    return "!!" + tag[len(CORE_TAG) :] if tag.startswith(CORE_TAG) else tag
