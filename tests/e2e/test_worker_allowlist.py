"""``arvel-flow worker --allow``: prefixes are normalised or refused before the worker starts."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Cli

UNREACHABLE = "redis://127.0.0.1:1/0"
"""A broker no worker reaches: a worker that gets past its settings exits 3 there."""


@pytest.mark.parametrize(
    ("allow", "message"),
    [
        (["examples..jobs"], "'examples..jobs' is not a module prefix"),
        (["ex amples"], "'ex amples' is not a module prefix"),
        (["*"], "'*' is not a module prefix"),
        ([""], "an empty module prefix"),
        (["   "], "an empty module prefix"),
        (["examples", "tests.e2e..jobs"], "'tests.e2e..jobs' is not a module prefix"),
    ],
)
def test_a_malformed_allow_prefix_stops_the_worker_with_one_line_and_exit_2(
    cli: Cli, allow: list[str], message: str
) -> None:
    # When a worker is started with an empty or malformed prefix
    args = [arg for prefix in allow for arg in ("--allow", prefix)]
    result = cli("worker", *args, "--url", UNREACHABLE)
    # Then it refuses to start: exit 2, one line naming the prefix, no traceback
    assert result.code == 2, result
    [line] = result.stderr.splitlines()
    assert line.startswith("<input>: error: allowed_modules: ")
    assert message in line
    assert result.stdout == ""


def test_a_malformed_prefix_in_the_environment_stops_the_worker_too(cli: Cli) -> None:
    # Given ARVEL_FLOW_ALLOWED_MODULES with an empty item
    cli.env["ARVEL_FLOW_ALLOWED_MODULES"] = "examples,,tests"
    # When a worker starts, then it refuses with one line and exit 2
    result = cli("worker", "--url", UNREACHABLE)
    assert result.code == 2, result
    assert "an empty module prefix" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("prefix", ["examples.", "examples:", " examples "])
def test_a_trailing_dot_or_colon_is_dropped_and_the_worker_starts(cli: Cli, prefix: str) -> None:
    # When a worker is allowed "examples." (as one might write a package prefix)
    result = cli("worker", "--allow", prefix, "--url", UNREACHABLE)
    # Then it starts with the prefix "examples" (and stops at the unreachable broker)
    assert result.stderr.splitlines()[0].endswith(", allowed examples"), result
    assert result.code == 3, result
