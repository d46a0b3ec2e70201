"""The interpolation budget: ``${...}`` cannot expand a document past documented limits."""

from __future__ import annotations

import pytest

from arvel_flow.compiler import parse_pipeline
from arvel_flow.errors import ConfigError
from arvel_flow.pipeline.expansion import (
    MAX_INTERPOLATED_BYTES,
    MAX_INTERPOLATED_NODES,
    ExpansionBudget,
    ExpansionLimitError,
)
from arvel_flow.pipeline.interpolate import Interpolator, interpolate
from arvel_flow.pipeline.source import parse_document

MIB = 1024 * 1024


def _steps(count: int, each: str) -> str:
    return "".join(f"    - {{job: a.b, each: '{each}'}}\n" for _ in range(count))


def test_the_limits_are_the_documented_ones() -> None:
    assert MAX_INTERPOLATED_NODES == 2_000_000
    assert MAX_INTERPOLATED_BYTES == 16 * MIB


def test_a_shared_list_counts_once_per_use() -> None:
    # Given a 3-item list of one-key mappings (10 nodes) used whole by 4 steps
    text = "vars: {users: [{id: 1}, {id: 2}, {id: 3}]}\npipeline:\n  batch:\n"
    data = parse_document(text + _steps(4, "${vars.users}")).data
    budget = ExpansionBudget()
    # When the document is interpolated
    Interpolator({}, data["vars"], budget).apply(data["pipeline"], ("pipeline",))
    # Then every use is charged, though all four share one list
    assert (budget.nodes, budget.bytes) == (40, 24)


def test_the_use_that_crosses_the_node_limit_is_reported_where_it_is_written() -> None:
    # Given a 10-node list used by 3 steps, with room for 25 nodes
    text = "vars: {users: [{id: 1}, {id: 2}, {id: 3}]}\npipeline:\n  batch:\n"
    data = parse_document(text + _steps(3, "${vars.users}")).data
    interpolator = Interpolator({}, data["vars"], ExpansionBudget(max_nodes=25))
    # When it is interpolated
    with pytest.raises(ExpansionLimitError) as caught:
        interpolator.apply(data["pipeline"], ("pipeline",))
    # Then the third use is refused, at its own path, and says what to do
    assert caught.value.path == ("pipeline", "batch", 2, "each")
    assert caught.value.message == (
        "interpolation would expand the document by more than 25 nodes ('${vars.users}' adds "
        "10 nodes each time it is used); use large values in fewer places"
    )


def test_a_huge_list_in_vars_used_by_thousands_of_steps_is_refused_early() -> None:
    # Given the attack of issue #9: a 100,000-item list used by 2,000 steps
    users = "".join(f"    - {{id: {index}}}\n" for index in range(100_000))
    text = f"version: 1\nname: x\nvars:\n  users:\n{users}pipeline:\n  batch:\n"
    text += _steps(2_000, "${vars.users}")
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, file="p.yaml", strict=False, env={})
    # Then the seventh use (300,001 nodes each) crosses the limit, and only it is reported
    [issue] = caught.value.issues
    assert issue.path == "pipeline.batch[6].each"
    assert (issue.line, issue.column) == (100_013, 24)
    assert "more than 2,000,000 nodes ('${vars.users}' adds 300,001 nodes" in issue.message


def test_a_string_embedded_many_times_is_refused_by_its_bytes() -> None:
    # Given a 1 MiB string embedded in the text of 3,000 parameters
    text = f"version: 1\nname: x\nvars:\n  big: {'a' * MIB}\npipeline:\n  batch:\n"
    text += "".join("    - {job: a.b, with: {text: 'x${vars.big}'}}\n" for _ in range(3_000))
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, file="p.yaml", strict=False, env={})
    # Then the seventeenth use crosses the byte limit
    [issue] = caught.value.issues
    assert issue.path == "pipeline.batch[16].with.text"
    assert "more than 16,777,216 bytes ('${vars.big}' adds 1,048,576 bytes" in issue.message


@pytest.mark.parametrize(
    ("value", "path"),
    [("${BIG}", ("a",)), ("'x-${BIG}-y'", ("a",)), ("{k: '${BIG}'}", ("vars", "v", "k"))],
    ids=["whole", "embedded", "in-vars"],
)
def test_environment_values_count_too(value: str, path: tuple[str, ...]) -> None:
    # Given an environment variable larger than the byte limit, used once
    text = f"vars: {{v: {value}}}\n" if path[0] == "vars" else f"a: {value}\n"
    env = {"BIG": "e" * (MAX_INTERPOLATED_BYTES + 1)}
    # When the document is interpolated
    with pytest.raises(ExpansionLimitError) as caught:
        interpolate(parse_document(text).data, env=env)
    # Then it is refused where it is used
    assert caught.value.path == path
    assert "more than 16,777,216 bytes ('${BIG}' alone adds more than that)" in (
        caught.value.message
    )


def test_a_value_larger_than_the_limit_is_measured_no_further() -> None:
    # Given one list that alone holds more nodes than the limit allows
    budget = ExpansionBudget(max_nodes=10)
    # When it is charged
    with pytest.raises(ExpansionLimitError) as caught:
        budget.charge("vars.huge", list(range(1_000_000)))
    # Then counting stopped just past the limit, and the message says it is too big alone
    assert budget.nodes == 11
    assert "('${vars.huge}' alone adds more than that)" in caught.value.message


def test_values_within_the_limits_are_substituted() -> None:
    # Given a 100,000-item list used by three steps (900,003 nodes)
    users = [{"id": index} for index in range(100_000)]
    data = {"vars": {"users": users}, "steps": ["${vars.users}"] * 3}
    # When it is interpolated
    result, problems, _ = interpolate(data, env={})
    # Then every use is the list itself, shared rather than copied
    assert problems == []
    assert all(step is result["vars"]["users"] for step in result["steps"])
