"""``${...}`` references: replaced in parsed values, typed by the rules, errors located."""

from __future__ import annotations

from typing import Any

import pytest

from arvel_flow.compiler import parse_pipeline
from arvel_flow.errors import ConfigError
from arvel_flow.pipeline.interpolate import interpolate
from arvel_flow.pipeline.source import parse_document


def resolved(text: str, env: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    data, problems, _ = interpolate(parse_document(text).data, env=env or {}, overrides=overrides)
    assert problems == []
    return data


def test_environment_references_and_defaults() -> None:
    data = resolved(
        "a: ${HOST}\nb: ${PORT:-6379}\nc: ${EMPTY:-fallback}\n", {"HOST": "db", "EMPTY": ""}
    )
    assert data == {"a": "db", "b": 6379, "c": "fallback"}


def test_an_unquoted_whole_reference_is_typed_and_a_quoted_one_is_not() -> None:
    data = resolved("a: ${N}\nb: '${N}'\nc: ${FLAG}\n", {"N": "8", "FLAG": "true"})
    assert data == {"a": 8, "b": "8", "c": True}


def test_a_whole_variable_keeps_its_type_even_quoted() -> None:
    # Given list and int variables, used whole (the flow mapping forces quotes)
    text = "vars: {users: [{id: 1}], n: 3}\na: {each: '${vars.users}', n: '${vars.n}'}\n"
    # Then both keep their YAML types
    assert resolved(text)["a"] == {"each": [{"id": 1}], "n": 3}


def test_embedded_references_become_text() -> None:
    data = resolved("vars: {n: 3, on: true}\na: 'x-${vars.n}-${vars.on}-${HOME}'\n", {"HOME": "/h"})
    assert data["a"] == "x-3-true-/h"


def test_a_doubled_dollar_escapes_a_reference() -> None:
    assert resolved("a: 'costs $${PRICE} and ${N}'\n", {"N": "2"})["a"] == "costs ${PRICE} and 2"


def test_keys_are_never_interpolated() -> None:
    assert resolved("'${KEY}': 1\n", {"KEY": "x"}) == {"${KEY}": 1}


def test_values_cannot_inject_yaml_structure() -> None:
    # Given an environment value that looks like YAML
    data = resolved("a: '${EVIL}'\n", {"EVIL": "x\nb: {c: !!python/object:os.system 1}"})
    # Then it stays one string value: interpolation happens after parsing
    assert data == {"a": "x\nb: {c: !!python/object:os.system 1}"}


def test_set_overrides_vars_typed_as_plain_scalars() -> None:
    data = resolved(
        "vars: {region: eu, n: 1}\na: ${vars.region}\nb: ${vars.n}\n", region="us", n="5"
    )
    assert (data["a"], data["b"], data["vars"]) == ("us", 5, {"region": "us", "n": 5})


def test_vars_may_read_the_environment() -> None:
    assert resolved("vars: {region: '${REGION:-eu}'}\na: ${vars.region}\n")["a"] == "eu"


def test_unchanged_containers_are_not_copied() -> None:
    document = parse_document("a: [{b: 1}, {c: 2}]\n")
    data, _, _ = interpolate(document.data, env={})
    assert data["a"] is document.data["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: ${UNSET}\n",
            "environment variable 'UNSET' is not set (write ${UNSET:-default} for a fallback)",
        ),
        (
            "vars: {region: eu}\na: ${vars.regon}\n",
            "undefined variable 'regon'; did you mean 'region'?",
        ),
        ("a: ${vars.x}\n", "undefined variable 'x'; declare it under 'vars'"),
        (
            "a: '${1X}'\n",
            "malformed reference '${1X}'; use ${NAME}, ${NAME:-default} or ${vars.name}",
        ),
        ("a: '${X'\n", "unclosed reference '${X'; add the closing '}'"),
        (
            "vars: {l: [1]}\na: 'x ${vars.l}'\n",
            "'${vars.l}' is a list; use it as a whole unquoted value, not inside text",
        ),
        (
            "vars: {a: 1, b: '${vars.a}'}\n",
            "'${vars.a}' inside vars: variables cannot refer to other variables",
        ),
    ],
)
def test_each_failure_is_reported_at_its_value(text: str, message: str) -> None:
    _, problems, failed = interpolate(parse_document(text).data, env={})
    assert [problem.message for problem in problems] == [message]
    assert failed == {problems[0].path}


def test_an_unknown_set_name_is_an_error_with_a_suggestion() -> None:
    _, problems, _ = interpolate(
        parse_document("vars: {region: eu}\n").data, env={}, overrides={"regoin": "us"}
    )
    assert problems[0].message == "--set regoin: no such variable; did you mean 'region'?"


def test_an_unset_variable_is_reported_once_at_its_line_and_column() -> None:
    # Given a pipeline whose job parameter reads an unset variable
    text = "version: 1\nname: x\npipeline:\n  job: a.b:C\n  with: {path: '${DATA}/x'}\n"
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, file="p.yaml", strict=False, env={})
    # Then exactly one issue points at the value
    assert [issue.format() for issue in caught.value.issues] == [
        "p.yaml:5:16: error: pipeline.with.path: environment variable 'DATA' is not set "
        "(write ${DATA:-default} for a fallback)"
    ]
