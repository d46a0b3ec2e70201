"""The JSON Schema: committed and current, well-formed, and in agreement with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from arvel_flow.pipeline.interpolate import interpolate
from arvel_flow.pipeline.models import PipelineSpec
from arvel_flow.pipeline.schema import (
    DIALECT,
    SCHEMA_ID,
    SCHEMA_PATH,
    compute_json_schema,
    format_json_schema,
)
from arvel_flow.pipeline.source import parse_document
from tests.fixtures.spec_paths import ENV, INVALID, REPO, VALID

VALIDATOR = jsonschema.Draft202012Validator(compute_json_schema())


def test_the_committed_schema_is_current() -> None:
    assert (REPO / SCHEMA_PATH).read_text(encoding="utf-8") == format_json_schema()


def test_the_schema_is_draft_2020_12_with_an_id_and_titles() -> None:
    schema = compute_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert (schema["$schema"], schema["$id"], schema["title"]) == (
        DIALECT,
        SCHEMA_ID,
        "arvel-flow pipeline",
    )
    assert all("title" in definition for definition in schema["$defs"].values())


def test_every_property_has_a_description_for_editor_hovers() -> None:
    missing = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if "description" not in prop:
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(compute_json_schema(), "#")
    assert missing == []


def data_of(path: Path) -> dict[str, Any]:
    """The document as both validators see it: parsed and interpolated."""
    data, problems, _ = interpolate(parse_document(path.read_text(encoding="utf-8")).data, env=ENV)
    assert problems == []
    return data


def pydantic_accepts(data: Any) -> bool:
    try:
        PipelineSpec.model_validate(data)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("path", sorted(VALID.glob("*.yaml")), ids=lambda path: path.stem)
def test_both_accept_every_valid_fixture(path: Path) -> None:
    data = data_of(path)
    assert list(VALIDATOR.iter_errors(data)) == []
    assert pydantic_accepts(data)


@pytest.mark.parametrize("path", sorted(INVALID.glob("schema_*.yaml")), ids=lambda path: path.stem)
def test_both_refuse_every_schema_level_invalid_fixture(path: Path) -> None:
    data = data_of(path)
    assert not VALIDATOR.is_valid(data)
    assert not pydantic_accepts(data)


BASE: dict[str, Any] = {"version": 1, "name": "x", "pipeline": {"job": "a.b:C"}}


def variant(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(BASE)), **changes}


@pytest.mark.parametrize(
    "data",
    [
        variant(),
        variant(name="Upper"),
        variant(version=True),
        variant(vars={"ok": 1, "2bad": 1}),
        variant(jobs={"a.b": {"class": "a.b:C"}}),
        variant(pipeline={"job": "a.b:C", "timeout_seconds": "90s"}),
        variant(pipeline={"job": "a.b:C", "timeout_seconds": "90"}),
        variant(pipeline={"job": "a.b:C", "delay": -1}),
        variant(pipeline={"job": "a.b:C", "unique_for": 0}),
        variant(pipeline={"job": "a.b:C", "id": "a-b_9"}),
        variant(pipeline={"job": "a.b:C", "id": "a.b"}),
        variant(pipeline={"job": "a.b:C", "each": [{"a": 1}], "matrix": {"a": [1]}}),
        variant(pipeline={"job": "a.b:C", "matrix": {"a": []}}),
        variant(pipeline={"batch": [{"job": "a.b:C"}], "allow_failures": "12.5%"}),
        variant(pipeline={"batch": [{"job": "a.b:C"}], "allow_failures": "101%"}),
        variant(pipeline={"batch": [{"job": "a.b:C"}], "allow_failures": -1}),
        variant(pipeline={"chain": [{"job": "a.b:C"}], "then": {"job": "a.b:C"}}),
        variant(pipeline={"job": "a.b:C", "chain": [{"job": "a.b:C"}]}),
        variant(pipeline={"job": "a.b:C", "retry": {"backoff": [1, "2m"]}}),
        variant(pipeline={"job": "a.b:C", "retry": {"backoff": "exponentially"}}),
        variant(
            pipeline={
                "job": "a.b:C",
                "middleware": [
                    "stack",
                    {"rate_limited": {"key": "k", "max_attempts": 1, "decay_seconds": "1s"}},
                ],
            }
        ),
        variant(pipeline={"job": "a.b:C", "middleware": [{"use": "a.b:M", "rate_limited": {}}]}),
        variant(queue={"driver": "celery"}),
        variant(queue={"redelivery_timeout": 0}),
    ],
)
def test_both_agree_on_each_construct(data: dict[str, Any]) -> None:
    # An independent validator (jsonschema) and the models must draw the same line
    assert VALIDATOR.is_valid(data) == pydantic_accepts(data)
