"""The allowlist through the real command: ``worker --allow`` prefixes, and ``failed retry``.

A worker's prefixes are normalised or refused before it starts. A job the allowlist
refused is recorded as failed; ``failed retry`` must not then run it in-process, where
no allowlist may apply.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from arvel_flow.store import open_store
from arvel_flow.store.contracts import FailedJob
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
    result = cli("worker", "--allow", prefix, "--url", UNREACHABLE, "--processes", "1")
    # Then it starts with the prefix "examples" (and stops at the unreachable broker)
    assert result.stderr.splitlines()[0].endswith(", allowed examples"), result
    assert result.code == 3, result


def test_failed_retry_never_runs_a_refused_job_in_process(
    cli: Cli, store: str, tmp_path: Path
) -> None:
    # Given a failed-jobs record of a forged message a worker refused: a chain from an
    # allowed module to os.popen, armed to create a file
    marker = tmp_path / "ran"
    refused = FailedJob(
        id="forged",
        job="examples.jobs:logging.os.popen",
        queue="default",
        payload={"cmd": f"touch {marker}"},
        exception="arvel_flow.errors.ImportTargetError",
        message="cannot use 'examples.jobs:logging.os.popen': 'logging' is a module",
        traceback="",
        attempts=0,
        failed_at=time.time(),
    )
    asyncio.run(_add_failed(store, refused))
    # When an operator retries every failed job with the embedded (in-process) driver
    result = cli("failed", "retry", "--all", "--store", store)
    # Then it is not run: said so, exit 1, the record kept, and the command never ran
    assert result.code == 1, result
    assert "forged (examples.jobs:logging.os.popen): not retried here: cannot use" in result.stdout
    assert not marker.exists()
    assert "forged" in cli("failed", "list", "--store", store, "--format", "json").stdout


async def _add_failed(url: str, record: FailedJob) -> None:
    backend = open_store(url)
    try:
        await backend.add_failed(record)
    finally:
        await backend.close()
