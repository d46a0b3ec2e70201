"""``arvel-flow validate``: formats, exit codes, several files, strictness."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from arvel_flow.cli.app import cli
from arvel_flow.pipeline.problems import MAX_PROBLEMS
from tests.fixtures.spec_paths import ENV, EXAMPLES, INVALID, VALID


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env=ENV)


def test_a_valid_file_exits_0(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(VALID / "minimal.yaml")])
    # (its one step keeps the class's default retries: a warning, not an error)
    assert result.exit_code == 0
    assert result.stdout.endswith(f"{VALID / 'minimal.yaml'}: ok (1 warning)\n")


def test_every_example_validates_strictly(runner: CliRunner) -> None:
    files = [str(path) for path in sorted(EXAMPLES.glob("*.yaml"))]
    result = runner.invoke(cli, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert len(re.findall(r": ok( \(\d+ warnings?\))?$", result.stdout, re.MULTILINE)) == len(files)


def test_an_invalid_file_exits_2_with_compiler_style_lines(runner: CliRunner) -> None:
    # Given an invalid file and its golden messages
    path = INVALID / "schema_unknown_key.yaml"
    expected = (
        path.with_suffix(".expected").read_text().replace("schema_unknown_key.yaml", str(path))
    )
    # When it is validated
    result = runner.invoke(cli, ["validate", str(path)])
    # Then each issue is a FILE:LINE:COL line, then a summary, and the exit code is 2
    assert result.exit_code == 2
    errors = [line for line in result.stdout.splitlines(True) if ": warning: " not in line]
    assert "".join(errors) == expected + "5 errors in 1 of 1 file\n"


def test_several_files_are_all_checked(runner: CliRunner) -> None:
    files = [str(VALID / "minimal.yaml"), str(INVALID / "schema_bad_version.yaml"), "missing.yaml"]
    result = runner.invoke(cli, ["validate", *files])
    assert result.exit_code == 2
    assert "schema_bad_version.yaml:1:10: error: version: Input should be 1" in result.stdout
    assert "missing.yaml: error: cannot read the file: No such file or directory" in result.stdout
    assert "minimal.yaml: ok" in result.stdout
    assert result.stdout.endswith("2 errors in 2 of 3 files\n")


def test_json_format_is_one_document(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["validate", "--format", "json", str(INVALID / "schema_bad_version.yaml")]
    )
    document = json.loads(result.stdout)
    assert result.exit_code == 2
    assert document == {
        "valid": False,
        "files": [
            {
                "file": str(INVALID / "schema_bad_version.yaml"),
                "valid": False,
                "issues": [
                    {"path": "version", "line": 1, "column": 10, "message": "Input should be 1"}
                ],
                "omitted": 0,
                "warnings": [
                    {
                        "path": "pipeline.job",
                        "line": 4,
                        "column": 8,
                        "message": "no retry settings: a failing job retries 3 times 1m apart "
                        "(worst case 3m of waiting); set retry: on the step (or tries on the "
                        "job class) to choose",
                    }
                ],
            }
        ],
        "skipped": [],
    }


def test_github_format_writes_annotations(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["validate", "--format", "github", str(INVALID / "schema_bad_version.yaml")]
    )
    first = result.stdout.splitlines()[0]
    assert (
        first
        == f"::error file={INVALID / 'schema_bad_version.yaml'},line=1,col=10,title=arvel-flow::"
        "version: Input should be 1"
    )


def test_no_strict_skips_imports(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: x\npipeline:\n  job: not_installed.jobs:Job\n")
    assert runner.invoke(cli, ["validate", "--no-strict", str(path)]).exit_code == 0
    strict = runner.invoke(cli, ["validate", str(path)])
    assert strict.exit_code == 2
    assert "no module named 'not_installed'" in strict.stdout


def test_set_overrides_a_variable(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: x\nvars: {rows: 1}\npipeline:\n"
        "  job: tests.fixtures.jobs_for_spec:ImportRows\n  with: {path: a, rows: '${vars.rows}'}\n"
    )
    assert runner.invoke(cli, ["validate", str(path), "--set", "rows=5"]).exit_code == 0
    result = runner.invoke(cli, ["validate", str(path), "--set", "rows=many"])
    assert result.exit_code == 2
    assert "Input should be a valid integer" in result.stdout


def test_a_malformed_set_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(VALID / "minimal.yaml"), "--set", "novalue"])
    assert result.exit_code == 2
    assert "'novalue' is not NAME=VALUE" in result.stderr


def test_no_file_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["validate"]).exit_code == 2


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    """A file with 1,000 problems of two passes: 500 duplicate keys, 500 unknown keys."""
    duplicates = "".join(f"  k: {index}\n" for index in range(501))
    steps = "".join("    - {job: a.b, bogus: 1}\n" for _ in range(500))
    path = tmp_path / "noisy.yaml"
    path.write_text(f"version: 1\nname: x\nvars:\n{duplicates}pipeline:\n  batch:\n{steps}")
    return path


def test_text_lists_the_first_problems_in_file_order_then_counts_the_rest(
    runner: CliRunner, noisy: Path
) -> None:
    # When a file with 1,000 problems is validated
    result = runner.invoke(cli, ["validate", "--no-strict", str(noisy)])
    lines = result.stdout.splitlines()
    # Then the first 200, in file order, then one line for the other 800, then the total
    assert result.exit_code == 2
    assert len(lines) == MAX_PROBLEMS + 2
    assert lines[0] == f"{noisy}:5:3: error: vars.k: duplicate key 'k' (first defined on line 4)"
    assert lines[MAX_PROBLEMS - 1].startswith(f"{noisy}:204:3: error: vars.k: duplicate key")
    assert lines[-2:] == [
        f"{noisy}: error: ... and 800 more problems (at most 200 are listed per file)",
        "1,000 errors in 1 of 1 file",
    ]


def test_json_counts_the_problems_left_out(runner: CliRunner, noisy: Path) -> None:
    result = runner.invoke(cli, ["validate", "--no-strict", "--format", "json", str(noisy)])
    [file] = json.loads(result.stdout)["files"]
    assert (len(file["issues"]), file["omitted"]) == (MAX_PROBLEMS, 800)


def test_github_annotates_the_problems_left_out(runner: CliRunner, noisy: Path) -> None:
    result = runner.invoke(cli, ["validate", "--no-strict", "--format", "github", str(noisy)])
    lines = result.stdout.splitlines()
    assert len(lines) == MAX_PROBLEMS + 2
    assert lines[-2] == (
        f"::error file={noisy},title=arvel-flow::... and 800 more problems "
        "(at most 200 are listed per file)"
    )


def test_other_commands_show_the_count_of_problems_left_out(runner: CliRunner, noisy: Path) -> None:
    result = runner.invoke(cli, ["graph", str(noisy)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "... and 800 more problems"
    assert len(result.stderr.splitlines()) == MAX_PROBLEMS + 1


def test_a_directory_stands_for_the_pipelines_in_it(runner: CliRunner, tmp_path: Path) -> None:
    # Given a directory with a valid pipeline, an invalid one, a compose file and a subdirectory
    (tmp_path / "a.yaml").write_text("version: 1\nname: a\npipeline: {job: builtins.print}\n")
    (tmp_path / "b.yml").write_text(
        "version: 1\nname: b\npipeline: {job: builtins.print}\nextra: 1\n"
    )
    (tmp_path / "docker-compose.yml").write_text("version: '3'\nservices: {}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("version: 1\npipeline: {}\n")
    # When the directory is validated
    result = runner.invoke(cli, ["validate", "--no-strict", str(tmp_path)])
    # Then each pipeline is reported, the compose file is skipped, the subdirectory not read
    assert result.exit_code == 2
    assert f"{tmp_path / 'a.yaml'}: ok" in result.stdout
    assert f"{tmp_path / 'b.yml'}:4:1: error: extra:" in result.stdout
    assert (
        f"{tmp_path / 'docker-compose.yml'}: skipped (not a pipeline: no top-level 'pipeline:' key)"
    ) in result.stdout
    assert "c.yaml" not in result.stdout
    assert result.stdout.endswith("1 error in 1 of 2 files\n")


def test_a_directory_without_pipelines_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    # Given a directory with no pipeline file
    # When it is validated
    result = runner.invoke(cli, ["validate", "--format", "json", str(tmp_path)])
    # Then it is invalid, saying why
    assert result.exit_code == 2
    [entry] = json.loads(result.stdout)["files"]
    assert entry["file"] == str(tmp_path)
    assert entry["issues"][0]["message"].startswith("no pipeline here")
