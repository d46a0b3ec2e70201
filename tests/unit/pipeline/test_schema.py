"""The JSON Schema: committed and current, well-formed, and in agreement with the models."""

from __future__ import annotations

import json
import re
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
from tests.fixtures.spec_paths import ENV, EXAMPLES, INVALID, REPO, VALID

VALIDATOR = jsonschema.Draft202012Validator(compute_json_schema())


def test_the_committed_schema_is_current() -> None:
    assert (REPO / SCHEMA_PATH).read_text(encoding="utf-8") == format_json_schema()


def test_the_schema_is_draft_2020_12_with_an_id_and_a_title() -> None:
    schema = compute_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert (schema["$schema"], schema["$id"], schema["title"]) == (
        DIALECT,
        SCHEMA_ID,
        "arvel-flow pipeline",
    )
    # Class names (JobStepSpec) would show in hovers, where they mean nothing
    assert not any("title" in definition for definition in schema["$defs"].values())


COMMITTED = json.loads((REPO / SCHEMA_PATH).read_text(encoding="utf-8"))
AS_WRITTEN = jsonschema.Draft202012Validator(COMMITTED)


def readme_pipelines() -> list[str]:
    """The complete pipelines (``version:`` ... ``pipeline:``) shown in the README."""
    blocks = re.findall(
        r"```yaml\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S
    )
    return [
        block for block in blocks if "\nversion: 1\n" in f"\n{block}" and "\npipeline:" in block
    ]


WRITTEN = [
    *(
        pytest.param(path.read_text(encoding="utf-8"), id=f"examples/{path.name}")
        for path in sorted(EXAMPLES.glob("*.yaml"))
    ),
    *(
        pytest.param(path.read_text(encoding="utf-8"), id=f"valid/{path.name}")
        for path in sorted(VALID.glob("*.yaml"))
    ),
    *(pytest.param(text, id=f"README-{index}") for index, text in enumerate(readme_pipelines())),
]


@pytest.mark.parametrize("text", WRITTEN)
def test_every_example_and_valid_fixture_validates_as_written(text: str) -> None:
    # Given a file that validate accepts, read as an editor reads it: before ${...}
    data = parse_document(text).data
    # Then the committed schema accepts it too ("each: ${vars.users}" included)
    assert [error.message for error in AS_WRITTEN.iter_errors(data)] == []


def test_readme_pipelines_are_found() -> None:
    assert readme_pipelines()


@pytest.mark.parametrize(
    ("data", "accepted"),
    [
        ({"each": "${vars.users}"}, True),
        ({"timeout_seconds": "${TIMEOUT:-30}"}, True),
        ({"id": "${vars.step_id}"}, True),
        ({"retry": {"max_retries": "${RETRIES}"}}, True),
        ({"with": "${vars.params}"}, True),
        ({"each": "users"}, False),
        ({"each": "x${vars.users}"}, False),
        ({"timeout_seconds": "${TIMEOUT"}, False),
        ({"timeout_seconds": "$${TIMEOUT}"}, False),
        ({"each": "${vars.a.b}"}, False),
    ],
)
def test_a_whole_reference_is_accepted_where_validate_accepts_one(
    data: dict[str, Any], accepted: bool
) -> None:
    document = variant(pipeline={"job": "a.b:C", **data})
    assert AS_WRITTEN.is_valid(document) is accepted


def test_references_are_refused_where_they_are_not_replaced() -> None:
    # secrets: names, never interpolated; vars: the mapping itself
    assert not AS_WRITTEN.is_valid(variant(secrets=["${NAME}"]))
    assert not AS_WRITTEN.is_valid(variant(vars="${VARS}"))
    assert AS_WRITTEN.is_valid(variant(queue={"concurrency": "${WORKERS}"}, pipeline="${vars.p}"))


def test_optional_values_are_typed_lists_not_unions_for_clean_hovers() -> None:
    # Given the committed schema's text
    text = (REPO / SCHEMA_PATH).read_text(encoding="utf-8")
    # Then no union shows a hover of joined titles ("Delay || Delay"), nor reST markup
    assert '"anyOf"' not in text
    assert "``" not in text
    delay = COMMITTED["$defs"]["JobStepSpec"]["properties"]["delay"]
    assert delay["oneOf"][0]["type"] == ["number", "string", "null"]
    assert delay["oneOf"][1] == {"$ref": "#/$defs/reference"}
    driver = COMMITTED["$defs"]["QueueSpec"]["properties"]["driver"]["oneOf"][0]
    assert driver == {"enum": ["sync", "null", "taskiq", None], "type": ["string", "null"]}


def test_a_callback_key_is_described_as_itself_not_as_a_job_step() -> None:
    # Given the then: of a batch, whose value is a step of any kind
    then = COMMITTED["$defs"]["BatchStepSpec"]["properties"]["then"]
    own = then["description"]
    # Then each step branch carries then:'s description, which editors show over the step's
    steps = [branch for branch in then["oneOf"] if branch.get("$ref", "").endswith("StepSpec")]
    assert len(steps) == 3
    assert all(branch["description"] == own for branch in steps)
    assert own.startswith("Runs once when every member finished")


def test_descriptions_with_code_have_markdown_for_hovers() -> None:
    job_step = COMMITTED["$defs"]["JobStepSpec"]
    assert job_step["description"] == "Runs one job, or one per item with `each` / `matrix`."
    assert job_step["markdownDescription"] == job_step["description"]
    secrets = COMMITTED["properties"]["secrets"]
    assert "\\*PASSWORD\\*" in secrets["markdownDescription"]  # not italics


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
