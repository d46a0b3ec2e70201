"""``arvel-flow schema``: print, write, check."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from arvel_flow.cli.app import cli
from arvel_flow.pipeline.schema import SCHEMA_ID, format_json_schema


def test_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["$id"] == SCHEMA_ID


def test_writes_and_then_checks_the_schema(tmp_path: Path) -> None:
    target = tmp_path / "schemas" / "pipeline.schema.json"
    runner = CliRunner()
    # When it is written, a check of that file passes
    assert runner.invoke(cli, ["schema", "--output", str(target)]).exit_code == 0
    assert target.read_text() == format_json_schema()
    checked = runner.invoke(cli, ["schema", "--check", "--output", str(target)])
    assert (checked.exit_code, checked.stdout) == (0, f"{target} is up to date\n")


def test_check_fails_when_stale_or_missing(tmp_path: Path) -> None:
    stale = tmp_path / "stale.json"
    stale.write_text("{}\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["schema", "--check", "--output", str(stale)])
    assert result.exit_code == 1
    assert (
        f"{stale} is stale; regenerate it with: arvel-flow schema --output {stale}" in result.stderr
    )
    missing = runner.invoke(cli, ["schema", "--check", "--output", str(tmp_path / "none.json")])
    assert missing.exit_code == 1
    assert "is missing" in missing.stderr


def test_check_defaults_to_the_committed_schema() -> None:
    # Run from the repository root, as CI does
    result = CliRunner().invoke(cli, ["schema", "--check"])
    assert result.exit_code == 0, result.output
