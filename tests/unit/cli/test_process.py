"""The real ``arvel-flow`` command, in a subprocess: startup, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.spec_paths import EXAMPLES, INVALID, REPO

COMMAND = Path(sys.executable).with_name("arvel-flow")
pytestmark = pytest.mark.slow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert all(f"  {name} " in result.stdout for name in ("validate", "schema", "graph", "plan"))


def test_the_command_line_module_defers_heavy_imports() -> None:
    # Importing the CLI (what --help does) must not load Pydantic, PyYAML or rich
    code = (
        "import sys, arvel_flow.cli.app; "
        "print(sorted({'pydantic', 'yaml', 'rich'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_examples_validate_from_the_repository_root() -> None:
    # The console script does not have the working directory on sys.path: the command
    # adds it, so 'examples.jobs:...' imports as it does under 'python -m'.
    result = run(
        "validate", *(str(path.relative_to(REPO)) for path in sorted(EXAMPLES.glob("*.yaml")))
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "name", ["yaml_binary", "yaml_billion_laughs", "yaml_python_tag", "strict_imports"]
)
def test_invalid_input_exits_2_without_a_traceback(name: str) -> None:
    result = run("validate", str(INVALID / f"{name}.yaml"))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert ": error: " in result.stdout


def test_plan_of_an_invalid_file_prints_only_the_messages() -> None:
    result = run("plan", str(INVALID / "schema_bad_version.yaml"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip().endswith(
        "schema_bad_version.yaml:1:10: error: version: Input should be 1"
    )
