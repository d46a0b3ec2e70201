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


def _modules_loaded_by(*args: str) -> set[str]:
    """The modules ``arvel-flow ARGS`` has loaded when it exits (successfully)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('MODULES', *sorted(sys.modules), file=sys.stderr))\n"
        "from arvel_flow.cli.app import main\n"
        f"sys.argv = ['arvel-flow', *{list(args)!r}]\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


def test_validate_loads_only_what_checking_a_file_needs() -> None:
    # Given a valid example, When it is validated (strict, plain text output)
    loaded = _modules_loaded_by("validate", "examples/quickstart.yaml")
    # Then neither rich, nor the run-time commands, stores or locks were imported
    unwanted = {"rich", "arvel_flow.cli.runs", "arvel_flow.cli.worker", "arvel_flow.store"}
    assert loaded & (unwanted | {"arvel_flow.lock", "sqlite3", "dotenv"}) == set()


@pytest.mark.parametrize("output", ["json", "plain"])
def test_run_printing_lines_does_not_load_rich(tmp_path: Path, output: str) -> None:
    # Given a one-step pipeline with a memory store
    pipeline = tmp_path / "one.yaml"
    pipeline.write_text(
        "version: 1\nname: one\nqueue: {store: memory}\n"
        "pipeline: {job: examples.jobs:Report, id: only}\n"
    )
    # When it runs with JSON events, or plain lines, on stdout
    loaded = _modules_loaded_by("run", str(pipeline), "--output", output)
    # Then rich, which only draws the live tree for people, was never imported
    assert "rich" not in loaded


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
