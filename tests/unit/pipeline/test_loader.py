"""`load_pipeline`: sources, one pass over every problem, strict and non-strict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from arvel_flow.compiler import load_pipeline, parse_pipeline
from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.pipeline import diagnostics, loader
from arvel_flow.pipeline.diagnostics import problems_from_validation
from arvel_flow.pipeline.loader import read_source
from arvel_flow.pipeline.models import JobStepSpec, PipelineSpec
from arvel_flow.pipeline.problems import MAX_PROBLEMS
from tests.fixtures.calls import count_calls
from tests.fixtures.spec_paths import INVALID, VALID

MINIMAL = "version: 1\nname: x\npipeline:\n  job: tests.fixtures.jobs_for_spec:Notify\n"


def test_text_path_string_and_bytes_all_load(tmp_path: Path) -> None:
    # Given the same pipeline as text, as a path and as bytes
    file = tmp_path / "p.yaml"
    file.write_text(MINIMAL)
    # Then each loads to the same spec
    specs = [
        load_pipeline(MINIMAL),
        load_pipeline(file),
        load_pipeline(str(file)),
        load_pipeline(MINIMAL.encode()),
    ]
    assert all(spec == specs[0] for spec in specs)


def test_a_missing_file_is_an_issue_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline(tmp_path / "nope.yaml")
    assert caught.value.issues[0].message.startswith("cannot read the file: ")
    assert caught.value.issues[0].file == str(tmp_path / "nope.yaml")


def test_a_one_line_string_that_is_not_a_file_is_text() -> None:
    assert read_source("{version: 1}", None) == ("{version: 1}", None)


def test_messages_name_the_file_given() -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline("version: 1\n", file="pipelines/nightly.yaml", strict=False)
    assert caught.value.issues[0].format().startswith("pipelines/nightly.yaml:1:1: error: ")


def test_every_pass_reports_in_one_run() -> None:
    # Given a file with a schema error, a bad parameter, an undefined policy, an
    # unset variable and an empty chain
    path = INVALID / "mixed_every_pass.yaml"
    # When it is loaded once
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path, env={})
    # Then all five are reported together, in file order
    lines = [issue.line for issue in caught.value.issues]
    assert lines == sorted(lines)
    assert len(caught.value.issues) == 5


def test_no_strict_skips_imports() -> None:
    text = "version: 1\nname: x\npipeline:\n  job: no_such_package.jobs:Anything\n"
    spec = load_pipeline(text, strict=False)
    assert isinstance(spec.pipeline, JobStepSpec)
    with pytest.raises(ConfigError, match="no module named 'no_such_package'"):
        load_pipeline(text)


def test_set_vars_override_and_unknown_ones_are_refused() -> None:
    text = (
        "version: 1\nname: x\nvars: {region: eu}\n"
        "pipeline:\n  job: a.b:C\n  with: {r: '${vars.region}'}\n"
    )
    spec = load_pipeline(text, strict=False, set_vars={"region": "us"})
    assert isinstance(spec.pipeline, JobStepSpec)
    assert spec.pipeline.with_ == {"r": "us"}
    with pytest.raises(ConfigError, match="--set regoin: no such variable; did you mean 'region'"):
        load_pipeline(text, strict=False, set_vars={"regoin": "us"})


def test_a_valid_fixture_returns_the_validated_spec() -> None:
    spec = load_pipeline(VALID / "spec_example.yaml", env={})
    assert spec.name == "nightly-import"
    assert spec.retry_policies["patient"].retry_until == 600.0
    assert spec.queue.url == "redis://localhost:6379/0"


def test_problems_past_the_limit_are_counted_across_every_pass() -> None:
    # Given 300 unknown keys (validation) and 300 undefined templates (references),
    # interleaved in the file
    steps = "".join("    - {job: a.b, bogus: 1}\n    - {job: nowhere}\n" for _ in range(300))
    text = f"version: 1\nname: x\npipeline:\n  batch:\n{steps}"
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, strict=False, env={})
    # Then the first MAX_PROBLEMS in file order are kept, of both passes, and the rest counted
    issues = caught.value.issues
    assert len(issues) == MAX_PROBLEMS
    assert [issue.line for issue in issues] == [5 + index for index in range(MAX_PROBLEMS)]
    assert caught.value.omitted == 600 - MAX_PROBLEMS
    assert str(caught.value).endswith("\n... and 400 more problems")


def test_validation_errors_are_turned_into_problems_up_to_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 50,000 steps with an unknown key
    data = {"version": 1, "name": "x", "pipeline": {"batch": [{"job": "a.b", "x": 1}] * 50_000}}
    with pytest.raises(ValidationError) as caught:
        PipelineSpec.model_validate(data)
    walked = count_calls(monkeypatch, diagnostics, "_walk")
    built = count_calls(monkeypatch, diagnostics, "_problem")
    # When the errors become problems
    problems, left_out = problems_from_validation(caught.value, data)
    # Then only the first MAX_PROBLEMS are worked on (each may look for a "did you mean")
    assert (len(problems), left_out) == (MAX_PROBLEMS, 50_000 - MAX_PROBLEMS)
    assert problems[0].path == ("pipeline", "batch", 0, "x")
    # (its location walked to the model, for the problem and its unknown key's model)
    assert built == [MAX_PROBLEMS]
    assert walked[0] <= 2 * MAX_PROBLEMS


class LookupsOnly:
    """A set that can only be asked ``in``, counting the questions: it cannot be walked."""

    def __init__(self, items: frozenset[Any] | set[Any], asked: list[int]) -> None:
        self._items = items
        self._asked = asked

    def __contains__(self, item: object) -> bool:
        self._asked[0] += 1
        return item in self._items


def test_many_dropped_values_and_many_problems_are_matched_in_linear_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 20,000 steps whose 'job' is dropped (an unsupported tag) and as many
    # undefined templates that are not under a dropped value
    steps = "".join("    - {job: !!foo x, retry: nowhere}\n" for _ in range(20_000))
    text = f"version: 1\nname: x\npipeline:\n  batch:\n{steps}"
    # And the matching of problems to dropped values watched: lookups only, counted
    asked, lengths = [0], []
    under = loader._under

    def watched(path: Any, dropped: Any) -> bool:
        lengths.append(len(path))
        return under(path, LookupsOnly(dropped, asked))  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "_under", watched)
    # When it is loaded
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, strict=False, env={})
    # Then each problem costs a lookup per prefix of its path, not one per dropped value:
    # the work grows with the problems, not with problems times dropped values
    assert lengths, "no problem was matched against the dropped values"
    assert asked[0] <= sum(length + 1 for length in lengths)
    assert caught.value.omitted > 0


UNSET_TEXT = """version: 1
name: unset
vars:
  workers: ${UNIT_WORKERS}
queue:
  concurrency: ${vars.workers}
pipeline:
  job: a.b:C
  timeout_seconds: ${UNIT_TIMEOUT}
  with: {region: "eu-${UNIT_REGION}", n: "${vars.workers}"}
"""


def test_collected_warnings_name_each_unset_variable_once_where_it_is_written() -> None:
    # Given a file whose variables are unset, one of them used through vars
    warnings: list[ConfigIssue] = []

    # When it is loaded collecting warnings
    spec = parse_pipeline(UNSET_TEXT, file="p.yaml", strict=False, env={}, warnings=warnings)

    # Then each variable is one warning at its reference, and nothing is an error
    assert [warning.format() for warning in warnings] == [
        "p.yaml:4:12: warning: vars.workers: environment variable 'UNIT_WORKERS' is not set "
        "(write ${UNIT_WORKERS:-default} for a fallback)",
        "p.yaml:9:20: warning: pipeline.timeout_seconds: environment variable 'UNIT_TIMEOUT' "
        "is not set (write ${UNIT_TIMEOUT:-default} for a fallback)",
        "p.yaml:10:18: warning: pipeline.with.region: environment variable 'UNIT_REGION' is not "
        "set (write ${UNIT_REGION:-default} for a fallback)",
    ]
    # And the values that could not be checked are left out of the spec, the rest kept
    assert spec.queue.concurrency is None
    assert spec.pipeline.timeout_seconds is None  # type: ignore[union-attr]
    assert spec.pipeline.with_ == {"region": "eu-${UNIT_REGION}", "n": "${vars.workers}"}  # type: ignore[union-attr]


def test_without_a_warnings_list_an_unset_variable_stays_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(UNSET_TEXT, file="p.yaml", strict=False, env={})
    assert [issue.severity for issue in caught.value.issues] == ["error"] * 3


def test_an_unset_value_where_no_other_can_stand_is_an_error_even_when_collecting() -> None:
    # Given the one required job path made of an unset variable, in a typed place
    text = "version: ${UNIT_VERSION}\nname: x\npipeline: {job: a.b:C}\n"
    warnings: list[ConfigIssue] = []

    # When it is loaded collecting warnings, no spec can be made without it
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(text, file="p.yaml", strict=False, env={}, warnings=warnings)

    # Then the variable is the error, named at its position
    assert str(caught.value) == (
        "p.yaml:1:10: error: version: environment variable 'UNIT_VERSION' is not set "
        "(write ${UNIT_VERSION:-default} for a fallback)"
    )
    assert warnings == []
