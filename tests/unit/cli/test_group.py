"""Every error the command prints has one form: ``error: ...`` (or ``FILE:LINE:COL: error:``)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from arvel_flow.cli.app import cli
from arvel_flow.cli.group import format_error


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("No such option '--x'.", "error: no such option '--x'"),
        (
            "No such option '--bogus'. Did you mean '--verbose'?",
            "error: no such option '--bogus'; did you mean '--verbose'?",
        ),
        (
            "No such option '--strikt'. (Did you mean one of: '--set', '--strict'?)",
            "error: no such option '--strikt'; did you mean one of: '--set', '--strict'?",
        ),
        ("URL is missing.", "error: URL is missing"),
        ("give a FILE or --resume RUN_ID", "error: give a FILE or --resume RUN_ID"),
        ("and so on...", "error: and so on..."),
    ],
)
def test_a_message_becomes_an_error_clause(message: str, expected: str) -> None:
    # Given a message from click or from arvel-flow
    # When it is formatted as an error
    # Then it has the one prefix and reads as a clause
    assert format_error(message) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--nope", "x.yaml"],
        ["validate"],
        ["nocommand"],
        ["failed", "nocommand"],
        ["run"],
        ["validate", "--format", "xml", "x.yaml"],
    ],
)
def test_usage_errors_of_every_command_have_the_error_prefix(args: list[str]) -> None:
    # Given a usage mistake
    # When the command runs
    result = CliRunner().invoke(cli, args, prog_name="arvel-flow")
    # Then it exits 2, its last line is "error: ...", and click's "Error:" is gone
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("error: "), result.stderr
    assert "Error:" not in result.stderr
    assert result.stderr.startswith("Usage: arvel-flow")


def test_commands_loaded_on_demand_are_listed_and_run() -> None:
    # Given the command group, whose run-time commands are imported when used
    runner = CliRunner()
    # When the help lists the commands, and one of them is asked for its help
    listed = runner.invoke(cli, ["--help"])
    worker_help = runner.invoke(cli, ["worker", "--help"])
    # Then every command is listed, and the lazy one runs like any other
    for name in ("failed", "run", "runs", "schedule", "scheduler", "status", "top", "worker"):
        assert f"  {name} " in listed.output
    assert worker_help.exit_code == 0
    assert "Usage: cli worker" in worker_help.output


def test_a_misspelt_lazy_command_gets_a_suggestion() -> None:
    # Given a misspelt run-time command
    # When it is run
    result = CliRunner().invoke(cli, ["wroker"])
    # Then click's suggestion names it, in the one error form
    assert result.exit_code == 2
    assert "error: no such command 'wroker'; did you mean 'worker'?" in result.output
