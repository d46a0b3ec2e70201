"""``arvel-flow validate`` over the fixture corpus, and problems that stay one line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import Cli
from tests.fixtures.spec_paths import ENV, INVALID, REPO, VALID

pytestmark = pytest.mark.slow

UNSET_ONLY = {"vars_unset_env.yaml"}
"""Invalid only because a variable is unset: a warning, unless --require-env."""


@pytest.fixture
def cli_repo(tmp_path: Path) -> Cli:
    """The command run from the repository, with the fixtures' environment."""
    cli = Cli(REPO, tmp_path / "logs")
    cli.env.update(ENV)
    return cli


def validity(result_stdout: str) -> dict[str, bool]:
    return {Path(f["file"]).name: f["valid"] for f in json.loads(result_stdout)["files"]}


def test_every_invalid_fixture_fails_and_every_valid_one_passes(cli_repo: Cli) -> None:
    # Given the whole corpus
    invalid = sorted(str(path.relative_to(REPO)) for path in INVALID.glob("*.yaml"))
    valid = sorted(str(path.relative_to(REPO)) for path in VALID.glob("*.yaml"))

    # When the command validates it, requiring the environment, then not
    required = cli_repo("validate", "--require-env", "--format", "json", *invalid, *valid)
    relaxed = cli_repo("validate", "--format", "json", *invalid, *valid)

    # Then every invalid file fails and every valid one passes
    assert required.code == 2, required
    assert validity(required.stdout) == {
        **{Path(name).name: False for name in invalid},
        **{Path(name).name: True for name in valid},
    }
    # And without --require-env only the file whose one fault is an unset variable passes
    assert relaxed.code == 2, relaxed
    assert {name for name, ok in validity(relaxed.stdout).items() if ok} == {
        *(Path(name).name for name in valid),
        *UNSET_ONLY,
    }


def test_a_key_with_a_line_break_keeps_one_line_per_problem(cli_repo: Cli, tmp_path: Path) -> None:
    # Given keys with line breaks in several places
    path = tmp_path / "keys.yaml"
    path.write_text(
        'version: 1\nname: keys\n"bad\\nkey": 1\njobs:\n  "a\\nb": {class: a.b:C}\n'
        'pipeline:\n  job: a.b:C\n  "we\\r\\nird": 2\n',
        encoding="utf-8",
    )

    # When the file is validated
    result = cli_repo("validate", "--no-strict", str(path))

    # Then each problem is one line, the keys written quoted with their escapes
    assert result.code == 2, result
    lines = result.stdout.splitlines()
    assert lines[-1] == "3 errors in 1 of 1 file"
    assert all(line.startswith(f"{path}:") for line in lines[:-1]), lines
    assert f'{path}:3:1: error: ["bad\\nkey"]: unknown key' in result.stdout
    assert f'{path}:5:3: error: jobs["a\\nb"]: names of templates' in result.stdout
    assert f'{path}:8:3: error: pipeline["we\\r\\nird"]: unknown key' in result.stdout
