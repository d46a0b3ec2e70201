"""Unions in the JSON Schema written as editors show them best, accepting the same values.

Pydantic writes ``X | None`` as ``anyOf: [X, {type: null}]`` and a duration as
``anyOf: [number, string]``. Every generic validator reads that correctly, but
yaml-language-server shows the hover of an ``anyOf`` whose branches all match as the
titles of its branches joined by ``||`` ("Delay || Delay"). So, wherever it changes
nothing a validator accepts:

* branches of different types merge into one schema with a list of types
  (``type: [number, string, "null"]``): each keyword (``minimum``, ``pattern``, ...)
  applies to one type only, so the merged schema accepts exactly what one of the
  branches did;
* ``null`` joins an ``enum`` as a value;
* what stays a union becomes ``oneOf`` when its branches cannot both match a value
  (different types, or a constant the other branch refuses), else stays ``anyOf``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ANNOTATIONS = frozenset({"title", "description", "markdownDescription", "default", "examples"})
"""Keywords that describe a schema without constraining what it accepts."""

_KEYWORDS: dict[str, frozenset[str]] = {
    "number": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "string": frozenset({"pattern", "minLength", "maxLength", "format"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"}),
    "object": frozenset(
        {
            "properties",
            "additionalProperties",
            "required",
            "propertyNames",
            "minProperties",
            "maxProperties",
            "patternProperties",
        }
    ),
}
_KEYWORDS["integer"] = _KEYWORDS["number"]
_NO_KEYWORDS = frozenset({"boolean", "null"})
ALL_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_JSON_TYPE = {str: "string", bool: "boolean", int: "integer", float: "number"}


def simplify_unions(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with each ``anyOf`` merged or made a ``oneOf`` where that changes nothing."""
    if isinstance(node, list):
        return [simplify_unions(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: simplify_unions(value, defs) for key, value in node.items()}
    if "anyOf" not in result:
        return result
    rest = {key: value for key, value in result.items() if key != "anyOf"}
    exclusive: list[list[dict[str, Any]]] = []
    branches = merge_branches(list(_flatten(result["anyOf"], exclusive)))
    if len(branches) == 1:
        return {**branches[0], **rest}
    return {**rest, union_keyword(branches, defs, exclusive): branches}


def merge_branches(branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold the branches of different types into one, and ``null`` into an enum."""
    nullable = {"type": "null"} in branches
    others = [branch for branch in branches if branch != {"type": "null"}]
    typed = [branch for branch in others if _types(branch)]
    merged: dict[str, Any] | None = None
    kept: list[dict[str, Any]] = []
    for branch in typed:
        if merged is not None and _compatible(merged, branch):
            merged = _merge(merged, branch)
        elif merged is None:
            merged = dict(branch)
        else:
            kept.append(branch)
    result = [*([merged] if merged is not None else []), *kept]
    result += [branch for branch in others if branch not in typed]
    if nullable:
        result = _with_null(result)
    return result


def union_keyword(
    branches: list[dict[str, Any]],
    defs: dict[str, Any],
    exclusive: Iterable[list[dict[str, Any]]] = (),
) -> str:
    """``oneOf`` when no value can match two of ``branches``, else ``anyOf``.

    ``exclusive`` lists groups of branches known not to overlap (Pydantic's own
    ``oneOf``: steps, told apart by their ``job`` / ``chain`` / ``batch`` key).
    """
    groups = list(exclusive)
    for index, first in enumerate(branches):
        for second in branches[index + 1 :]:
            known = any(first in group and second in group for group in groups)
            if not known and not disjoint(first, second, defs):
                return "anyOf"
    return "oneOf"


def disjoint(first: dict[str, Any], second: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Whether no value matches both schemas (False when that cannot be told simply)."""
    shared = types_of(first, defs) & types_of(second, defs)
    if "number" in shared or "integer" in shared:
        shared |= {"number", "integer"}
    if not shared:
        return True
    for one, other in ((first, second), (second, first)):
        values = _constants(one)
        if values is not None and not any(_accepts(other, value) for value in values):
            return True
    return False


def types_of(schema: Any, defs: dict[str, Any]) -> frozenset[str]:
    """The JSON types a value matching ``schema`` may have (all, when not simple to tell)."""
    if not isinstance(schema, dict):
        return ALL_TYPES
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return types_of(defs.get(name), defs)
    constants = _constants(schema)
    if constants is not None:
        return frozenset(_type_of(value) for value in constants)
    if "type" in schema:
        kind = schema["type"]
        return frozenset([kind] if isinstance(kind, str) else kind)
    for keyword in ("oneOf", "anyOf"):
        if keyword in schema:
            return frozenset().union(*(types_of(branch, defs) for branch in schema[keyword]))
    return ALL_TYPES


def _flatten(
    branches: Iterable[Any], exclusive: list[list[dict[str, Any]]]
) -> Iterable[dict[str, Any]]:
    """The branches of nested unions, noting each ``oneOf`` group in ``exclusive``."""
    for branch in branches:
        if isinstance(branch, dict) and len(branch) == 1 and "oneOf" in branch:
            exclusive.append(list(branch["oneOf"]))
            yield from _flatten(branch["oneOf"], exclusive)
        elif isinstance(branch, dict) and len(branch) == 1 and "anyOf" in branch:
            yield from _flatten(branch["anyOf"], exclusive)
        else:
            yield branch


def _types(branch: dict[str, Any]) -> list[str]:
    """The types of a branch whose every keyword constrains values of one of them, else []."""
    kind = branch.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    allowed = {"type"} | ANNOTATIONS
    for each in kinds:
        allowed |= _KEYWORDS.get(each, frozenset())
    return kinds if kinds != ["null"] and set(branch) <= allowed else []


def _compatible(merged: dict[str, Any], branch: dict[str, Any]) -> bool:
    """Whether two branches share no type and no keyword, so that they can merge."""
    types, kinds = set(_types(merged)), set(_types(branch))
    numeric = {"number", "integer"}
    if types & kinds or (numeric & types and numeric & kinds):
        return False
    return not (set(merged) & set(branch)) - {"type"} - ANNOTATIONS


def _merge(merged: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    return {**branch, **merged, "type": [*_types(merged), *_types(branch)]}


def _with_null(branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``null`` added to the first branch that can take it, or as a branch of its own."""
    for index, branch in enumerate(branches):
        kind = branch.get("type")
        if "enum" in branch or "const" in branch:
            values = branch["enum"] if "enum" in branch else [branch["const"]]
            changed = {k: v for k, v in branch.items() if k != "const"}
            changed["enum"] = [*values, None]
            if kind is not None:
                changed["type"] = [*([kind] if isinstance(kind, str) else kind), "null"]
            return [*branches[:index], changed, *branches[index + 1 :]]
        if isinstance(kind, str | list) and "$ref" not in branch:
            types = [kind] if isinstance(kind, str) else kind
            return [
                *branches[:index],
                {**branch, "type": [*types, "null"]},
                *branches[index + 1 :],
            ]
    return [*branches, {"type": "null"}]


def _constants(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return _JSON_TYPE.get(type(value), "string")


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    """Whether a simple schema (type, enum, string pattern) may accept ``value``.

    True when it cannot be told simply: the answer only ever makes a union ``anyOf``.
    """
    constants = _constants(schema)
    if constants is not None:
        return value in constants
    kind = schema.get("type")
    if kind is not None:
        kinds = {kind} if isinstance(kind, str) else set(kind)
        actual = _type_of(value)
        if actual not in kinds and not (actual == "integer" and "number" in kinds):
            return False
    pattern = schema.get("pattern")
    if isinstance(value, str) and isinstance(pattern, str):
        return re.search(pattern, value) is not None
    return True
