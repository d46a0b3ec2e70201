"""``plan`` and ``validate`` warn about a step left with the default retries (real command).

A job class with no retry settings retries 3 times, 60 s apart: a failing job looks
hung for minutes. The warning names the step and the worst case; the exit code stays 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import Cli

pytestmark = pytest.mark.slow

WARNING = (
    "p.yaml:6:12: warning: pipeline.chain[0].job: step 'touch': no retry settings: a failing "
    "job retries 3 times 1m apart (worst case 3m of waiting); set retry: on the step (or "
    "tries on the job class) to choose"
)


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """A working directory with a pipeline: one step with default retries, one with its own."""
    work = tmp_path / "work"
    work.mkdir()
    touched = json.dumps(str(tmp_path / "touched"))
    (work / "p.yaml").write_text(
        "version: 1\nname: p\npipeline:\n  chain:\n"
        f"    - id: touch\n      job: tests.e2e.jobs:Touch\n      with: {{path: {touched}}}\n"
        f"    - job: tests.e2e.jobs:Touch\n      with: {{path: {touched}}}\n"
        "      retry: {max_retries: 1, backoff: 5}\n",
        encoding="utf-8",
    )
    return work


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_default_retries_warn_and_the_exit_code_stays_0(
    here: Path, tmp_path: Path, command: str
) -> None:
    # Given a step whose retries nobody chose, and one that chose
    cli = Cli(here, tmp_path / "logs")
    # When the pipeline is validated or planned
    result = cli(command, "p.yaml")
    # Then the first step, and only it, is warned about; the command succeeds
    assert result.code == 0, result
    output = result.stdout + result.stderr
    assert WARNING in output.splitlines(), result
    assert output.count("no retry settings") == 1, result


def test_validate_json_lists_the_warning(here: Path, tmp_path: Path) -> None:
    # When the pipeline is validated as JSON
    result = Cli(here, tmp_path / "logs")("validate", "--format", "json", "p.yaml")
    # Then the file is valid and carries the warning at the step's job
    assert result.code == 0, result
    [file] = result.json()["files"]
    assert file["valid"] is True
    [warning] = file["warnings"]
    assert (warning["path"], warning["line"], warning["column"]) == ("pipeline.chain[0].job", 6, 12)
