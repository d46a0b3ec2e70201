"""The JSON Schema of the pipeline file, generated from the models.

Committed at ``schemas/pipeline.schema.json`` for editors (``# yaml-language-server:
$schema=...``) and generic validators; ``arvel-flow schema --check`` fails when the
committed copy differs from what the models generate.
"""

from __future__ import annotations

import json
from typing import Any

from arvel_flow.pipeline.models import PipelineSpec

SCHEMA_ID = "https://arvel-flow.dev/schemas/pipeline.schema.json"
"""The schema's ``$id``; editors locate the schema by path or URL, not by this."""

SCHEMA_PATH = "schemas/pipeline.schema.json"
"""Where the schema is committed, relative to the project root."""

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def compute_json_schema() -> dict[str, Any]:
    """The draft 2020-12 JSON Schema of a pipeline file."""
    generated = PipelineSpec.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        **generated,
        "title": "arvel-flow pipeline",
    }
    named: dict[str, Any] = _named_keys(schema)
    return named


def format_json_schema() -> str:
    """The schema as committed: two-space indented JSON with a final newline."""
    return json.dumps(compute_json_schema(), indent=2, ensure_ascii=False) + "\n"


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
