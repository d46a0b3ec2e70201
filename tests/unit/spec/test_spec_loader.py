"""`load_pipeline`: sources, one pass over every problem, strict and non-strict."""

from __future__ import annotations

from pathlib import Path

import pytest

from arvel_flow.errors import ConfigError
from arvel_flow.spec.loader import load_pipeline, read_source
from arvel_flow.spec.models import JobStepSpec
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
