"""The JSON Schema of the pipeline file, generated from the models.

Committed at ``schemas/pipeline.schema.json`` for editors (``# yaml-language-server:
$schema=...``) and generic validators; ``arvel-flow schema --check`` fails when the
committed copy differs from what the models generate.

The schema describes the file as written, before ``${...}`` is replaced: a value that
is one whole reference (``each: ${vars.users}``, ``concurrency: ${WORKERS}``) is
accepted wherever ``validate`` accepts one, which is any value but the names under
``secrets`` and ``vars`` themselves. Pydantic's output is reshaped for editors (see
`arvel_flow.pipeline.schema_unions` for unions): definitions carry no class names as
titles; a key's own description wins over that of the definition it refers to; and
descriptions are Markdown (``markdownDescription``, which VS Code's hover renders)
besides plain text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from arvel_flow.pipeline.models import PipelineSpec
from arvel_flow.pipeline.schema_unions import (
    ANNOTATIONS,
    merge_branches,
    simplify_unions,
    types_of,
    union_keyword,
)

SCHEMA_ID = "https://arvel-flow.dev/schemas/pipeline.schema.json"
"""The schema's ``$id``; editors locate the schema by path or URL, not by this."""

SCHEMA_PATH = "schemas/pipeline.schema.json"
"""Where the schema is committed, relative to the project root."""

DIALECT = "https://json-schema.org/draft/2020-12/schema"

REFERENCE_PATTERN = r"^\$\{(?:vars\.[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?)\}$"
"""A value that is one whole ``${NAME}``, ``${NAME:-default}`` or ``${vars.name}``."""

REFERENCE = "reference"
"""The name of the reference's definition under ``$defs``."""

_REFERENCE_SCHEMA = {"type": "string", "pattern": REFERENCE_PATTERN}
_SAMPLE_REFERENCES = ("${A}", "${vars.a}", "${A:-b}", "${a_1:-}")

_REFERENCE_REF = {"$ref": f"#/$defs/{REFERENCE}"}
_NOT_REFERENCES = frozenset({"vars", "secrets"})
"""Top-level keys whose values are never interpolated as a whole."""
_SLOTS = ("properties", "patternProperties")
_CODE = re.compile(r"``(.+?)``")
_MARKDOWN_SPECIAL = re.compile(r"([\\*_<>\[\]])")


def compute_json_schema() -> dict[str, Any]:
    """The draft 2020-12 JSON Schema of a pipeline file."""
    generated = PipelineSpec.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        **generated,
        "title": "arvel-flow pipeline",
    }
    schema = _named_keys(schema)
    schema = simplify_unions(schema, schema["$defs"])
    defs = schema["$defs"]
    defs[REFERENCE] = {
        "$comment": "A whole-value ${...} reference, replaced when the file is loaded.",
        **_REFERENCE_SCHEMA,
    }
    for name, definition in defs.items():
        if name != REFERENCE:
            defs[name] = _accept_references_within(definition, defs)
    schema["properties"] = {
        key: value if key in _NOT_REFERENCES else _accept_reference(value, defs)
        for key, value in schema["properties"].items()
    }
    for definition in defs.values():
        definition.pop("title", None)  # a class name: it means nothing to the reader
    result: dict[str, Any] = _markdown(_own_descriptions_first(schema, defs))
    return result


def format_json_schema() -> str:
    """The schema as committed: two-space indented JSON with a final newline."""
    return json.dumps(compute_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _accept_references_within(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a whole reference accepted at every value below it (not ``node``)."""
    result = dict(node)
    for keyword in _SLOTS:
        if isinstance(result.get(keyword), dict):
            result[keyword] = {
                key: _accept_reference(value, defs) for key, value in result[keyword].items()
            }
    for keyword in ("items", "additionalProperties"):
        if isinstance(result.get(keyword), dict):
            result[keyword] = _accept_reference(result[keyword], defs)
    for keyword in ("oneOf", "anyOf"):
        if keyword in result:
            result[keyword] = [
                _accept_references_within(branch, defs) for branch in result[keyword]
            ]
    return result


def _accept_reference(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A value's schema that also accepts one whole ``${...}`` reference."""
    schema = _accept_references_within(schema, defs)
    if _accepts_every_reference(schema):
        return schema
    annotations = {key: value for key, value in schema.items() if key in ANNOTATIONS}
    constraint = {key: value for key, value in schema.items() if key not in ANNOTATIONS}
    if len(constraint) == 1 and set(constraint) <= {"oneOf", "anyOf"}:
        [(keyword, branches)] = constraint.items()
        exclusive = [branches] if keyword == "oneOf" else []
        if any(_accepts_every_reference(branch) for branch in branches):
            return schema
    else:
        merged = merge_branches([constraint, _REFERENCE_SCHEMA])
        if len(merged) == 1:  # no string was accepted: the reference's pattern applies alone
            return {**annotations, **merged[0]}
        branches, exclusive = [constraint], []
    if not all(_refuses_references(branch, defs) for branch in branches):
        return {**annotations, "anyOf": [*branches, _REFERENCE_REF]}
    keyword = union_keyword(branches, defs, exclusive)
    return {**annotations, keyword: [*branches, _REFERENCE_REF]}


def _refuses_references(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Whether no whole reference matches ``schema`` (False when that is not simple to tell)."""
    if "string" not in types_of(schema, defs):
        return True
    if "const" in schema or "enum" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        return not any(isinstance(v, str) and re.match(REFERENCE_PATTERN, v) for v in values)
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        return not any(re.search(pattern, sample) for sample in _SAMPLE_REFERENCES)
    return False


_REFUSING_STRINGS = frozenset(
    {"pattern", "format", "maxLength", "enum", "const", "$ref", "oneOf", "anyOf", "allOf", "not"}
)


def _accepts_every_reference(schema: dict[str, Any]) -> bool:
    """Whether every string of the reference's form already matches ``schema``."""
    constraints = set(schema) - ANNOTATIONS
    if not constraints:
        return True
    kind = schema.get("type")
    kinds = {kind} if isinstance(kind, str) else set(kind or ())
    return (
        "string" in kinds
        and not constraints & _REFUSING_STRINGS
        and schema.get("minLength", 0) <= len("${A}")
    )


def _own_descriptions_first(node: Any, defs: dict[str, Any]) -> Any:
    """Give each ``$ref`` branch of a described value that value's description.

    Editors show the description of the innermost schema that matched: the one of a
    step's definition ("Runs one job ...") over the ``then:`` key's own. A local
    keyword beside ``$ref`` wins over the definition's.
    """
    if isinstance(node, list):
        return [_own_descriptions_first(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _own_descriptions_first(value, defs) for key, value in node.items()}
    description = result.get("description")
    if isinstance(description, str):
        for keyword in ("oneOf", "anyOf"):
            for branch in result.get(keyword, ()):
                target = defs.get(str(branch.get("$ref", "")).rsplit("/", 1)[-1], {})
                if "description" in target:
                    branch["description"] = description
    return result


def _markdown(node: Any) -> Any:
    """Descriptions as plain text with `code`, plus Markdown for hovers that render it."""
    if isinstance(node, list):
        return [_markdown(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _markdown(value) for key, value in node.items()}
    description = result.get("description")
    if isinstance(description, str):
        plain = _CODE.sub(r"`\1`", description)
        result["description"] = plain
        if "`" in plain:
            result["markdownDescription"] = _to_markdown(plain)
    return result


def _to_markdown(text: str) -> str:
    """Plain text with `code` spans → Markdown: what is outside the spans escaped."""
    parts = text.split("`")
    return "`".join(
        part if index % 2 else _MARKDOWN_SPECIAL.sub(r"\\\1", part)
        for index, part in enumerate(parts)
    )


def _named_keys(node: Any) -> Any:
    """Turn Pydantic's ``patternProperties`` for constrained keys into ``propertyNames``.

    ``patternProperties`` alone lets a key that misses the pattern through unchecked,
    where Pydantic refuses it; ``propertyNames`` refuses it in both.
    """
    if isinstance(node, list):
        return [_named_keys(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _named_keys(value) for key, value in node.items()}
    patterns = result.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in result:
        [(pattern, value_schema)] = patterns.items()
        del result["patternProperties"]
        result["propertyNames"] = {"pattern": pattern}
        result["additionalProperties"] = value_schema
    return result
