"""Error messages a person can act on, through the real command.

An import error names the module and why (a syntax error as ``file:line: message``, a
missing dependency as ``No module named 'x'``), with a hint when the working directory
is probably wrong; a tab in YAML says so; usage errors share one ``error:`` prefix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Cli

pytestmark = pytest.mark.slow


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """A project directory: a package ``errapp`` beside the pipeline files."""
    work = tmp_path / "work"
    (work / "errapp").mkdir(parents=True)
    (work / "errapp" / "__init__.py").write_text("", encoding="utf-8")
    return work


@pytest.fixture
def cli_here(here: Path, tmp_path: Path) -> Cli:
    """The command, run in ``here``."""
    return Cli(here, tmp_path / "logs")


def write_job_pipeline(here: Path, job: str) -> Path:
    """A pipeline whose one job (at line 5, column 8) is ``job``."""
    path = here / "p.yaml"
    path.write_text(f"version: 1\nname: p\npipeline:\n  id: one\n  job: {job}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_syntax_error_in_a_job_module_is_its_file_and_line(
    here: Path, cli_here: Cli, command: str
) -> None:
    # Given a job module with a syntax error on line 2
    (here / "errapp" / "jobs.py").write_text("x = 1\nclass A(object)\n", encoding="utf-8")
    write_job_pipeline(here, "errapp.jobs:A")
    # When the pipeline is validated or run
    result = cli_here(command, "p.yaml")
    # Then the pipeline position, the module, its file:line and the message are named
    assert result.code == 2, result
    output = result.stdout + result.stderr
    assert (
        "p.yaml:5:8: error: pipeline.job: cannot use 'errapp.jobs:A': "
        "importing errapp.jobs failed: errapp/jobs.py:2: expected ':'"
    ) in output, result
    assert "Traceback" not in output


def test_a_missing_dependency_names_the_module_that_imports_it(here: Path, cli_here: Cli) -> None:
    # Given a job module that imports a package that is not installed
    (here / "errapp" / "jobs.py").write_text("import not_installed_xyz\n", encoding="utf-8")
    write_job_pipeline(here, "errapp.jobs.A")
    # When the pipeline is validated
    result = cli_here("validate", "p.yaml")
    # Then the message says which import failed and what is missing
    assert result.code == 2, result
    assert "importing errapp.jobs failed: No module named 'not_installed_xyz'" in result.stdout


def test_an_exception_raised_at_import_is_its_type_and_message(here: Path, cli_here: Cli) -> None:
    # Given a job module that raises when imported
    (here / "errapp" / "jobs.py").write_text("raise KeyError('DATABASE_URL')\n", encoding="utf-8")
    write_job_pipeline(here, "errapp.jobs:A")
    # When the pipeline is validated
    result = cli_here("validate", "p.yaml")
    # Then the exception's type and message are shown, without a traceback
    assert result.code == 2, result
    assert "importing errapp.jobs failed: KeyError: 'DATABASE_URL'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_wrong_working_directory_gets_a_hint(here: Path, tmp_path: Path) -> None:
    # Given a pipeline naming errapp.jobs, validated from a subdirectory of the project
    (here / "errapp" / "jobs.py").write_text("class A: ...\n", encoding="utf-8")
    write_job_pipeline(here, "errapp.jobs:A")
    (here / "deploy").mkdir()
    # When it is validated from there
    result = Cli(here / "deploy", tmp_path / "logs")("validate", "../p.yaml")
    # Then the message names where the package is and what to do
    assert result.code == 2, result
    assert (
        f"no module named 'errapp' (errapp/ is in {here}: run from there, or set PYTHONPATH={here})"
    ) in result.stdout, result


@pytest.mark.parametrize("command", ["validate", "run", "plan", "graph"])
def test_a_tab_indenting_yaml_says_so_at_its_line_and_column(
    here: Path, cli_here: Cli, command: str
) -> None:
    # Given a pipeline indented with a tab on line 4
    (here / "tabbed.yaml").write_text(
        "version: 1\nname: tabbed\npipeline:\n\tjob: errapp.jobs:A\n", encoding="utf-8"
    )
    # When any command reads it
    result = cli_here(command, "tabbed.yaml")
    # Then the message says what a person did and what to do, at file:line:col
    assert result.code == 2, result
    assert (
        "tabbed.yaml:4:1: error: a tab character is not allowed for indentation in YAML; use spaces"
    ) in result.stdout + result.stderr, result


@pytest.mark.parametrize(
    ("args", "last_line"),
    [
        (("validate", "--nope", "p.yaml"), "error: no such option '--nope'"),
        (("run",), "error: give a pipeline FILE or --resume RUN_ID (one of them)"),
        (("failed", "show"), "error: missing argument 'FAILED_ID'"),
        (("nocommand",), "error: no such command 'nocommand'"),
        (("status", "zz", "--store", "sqlite:s.db"), None),
        (("runs", "--store", "redis://127.0.0.1:1/0"), None),
    ],
)
def test_every_error_the_command_prints_has_one_prefix(
    cli_here: Cli, args: tuple[str, ...], last_line: str | None
) -> None:
    # Given a usage mistake, an unknown id or an unreachable store, for various commands
    # When the command runs
    result = cli_here(*args)
    # Then the error is one "error: ..." line (after click's usage lines), never "Error:"
    assert result.code in (2, 3), result
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: "), result
    assert last_line is None or last == last_line, result
    assert "Error:" not in result.stderr
