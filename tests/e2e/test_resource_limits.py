"""Adversarial files through the real command, in a process limited to 1 GiB of memory.

Each file once took ``validate`` or ``plan`` past many gigabytes, a crash or a flood of
output (issue #9, §4). Under the limit, each must end with exit 2 (or a bounded plan),
the documented message, and no traceback, within seconds.
"""

from __future__ import annotations

import resource
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import ARVEL_FLOW, Cli, Result

MEMORY_LIMIT = 1024 * 1024 * 1024
"""Address space of the command under test: far below what the attacks once took."""

HANG_GUARD = 60.0
"""Seconds after which a command is taken to hang (most take two or three); how fast
they are is measured in benchmarks/, the memory limit above bounds their work."""

DIGEST = "tests.fixtures.jobs_for_spec:SendDigest"
NOTIFY = "tests.fixtures.jobs_for_spec:Notify"

Pipeline = Callable[[str, str], Path]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_limited(cli: Cli, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``arvel-flow`` under the memory limit; fail the test if it hangs."""
    done = subprocess.run(
        [str(ARVEL_FLOW), *args],
        cwd=cli.cwd,
        env={**cli.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        preexec_fn=_limit_memory,
        check=False,
    )
    result = Result(args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result
    return result


def _steps(count: int, step: str) -> str:
    return "".join(f"    - {step}\n" for _ in range(count))


def test_a_huge_list_in_vars_used_by_thousands_of_steps(cli: Cli, pipeline: Pipeline) -> None:
    # Given a 100,000-item list in vars used as 'each' by 2,000 steps (once 9-12 GB)
    users = "".join(f"    - {{user_id: {index}}}\n" for index in range(100_000))
    path = pipeline(
        "fan_out",
        f"version: 1\nname: x\nvars:\n  users:\n{users}pipeline:\n  batch:\n"
        + _steps(2_000, f"{{job: {DIGEST}, each: '${{vars.users}}'}}"),
    )
    # When it is validated under 1 GiB
    result = run_limited(cli, "validate", str(path))
    # Then the use that crosses the interpolation limit is reported, at its position
    assert result.code == 2, result
    assert result.stdout.splitlines() == [
        f"{path}:100013:60: error: pipeline.batch[6].each: interpolation would expand the "
        "document by more than 2,000,000 nodes ('${vars.users}' adds 300,001 nodes each time "
        "it is used); use large values in fewer places",
        "1 error in 1 of 1 file",
    ]


def test_a_large_string_embedded_thousands_of_times(cli: Cli, pipeline: Pipeline) -> None:
    # Given a 1 MiB string embedded in the text of 3,000 parameters
    path = pipeline(
        "embedded",
        f"version: 1\nname: x\nvars:\n  big: {'a' * 1024 * 1024}\npipeline:\n  batch:\n"
        + _steps(3_000, f"{{job: {DIGEST}, with: {{user_id: 1, locale: 'x${{vars.big}}'}}}}"),
    )
    # When it is validated under 1 GiB / Then the byte limit refuses it
    result = run_limited(cli, "validate", str(path))
    assert result.code == 2, result
    assert (
        f"{path}:23:81: error: pipeline.batch[16].with.locale: interpolation would expand the "
        "document by more than 16,777,216 bytes ('${vars.big}' adds 1,048,576 bytes"
    ) in result.stdout


def test_a_large_environment_value_used_many_times(cli: Cli, pipeline: Pipeline) -> None:
    # Given a 100 KiB environment variable used by 200 steps
    path = pipeline(
        "environment",
        "version: 1\nname: x\npipeline:\n  batch:\n"
        + _steps(200, f"{{job: {DIGEST}, with: {{user_id: 1, locale: '${{BIG}}'}}}}"),
    )
    # When it is validated / Then the byte limit counts environment values too
    result = run_limited(cli, "validate", str(path), env={"BIG": "e" * 100 * 1024})
    assert result.code == 2, result
    assert "pipeline.batch[163].with.locale: interpolation would expand the document by " in (
        result.stdout
    )


@pytest.mark.parametrize("output_format", ["text", "json", "github"])
def test_a_flood_of_problems_prints_a_bounded_report(
    cli: Cli, pipeline: Pipeline, output_format: str
) -> None:
    # Given a file with 100,000 duplicate keys (once 51 MB of output for 200,000)
    duplicates = "".join(f"  k: {index}\n" for index in range(100_001))
    path = pipeline("flood", f"version: 1\nname: x\nvars:\n{duplicates}pipeline:\n  job: a.b\n")
    # When it is validated in any format
    result = run_limited(cli, "validate", "--no-strict", "--format", output_format, str(path))
    # Then 200 problems are listed, then how many were left out, in a few kilobytes
    assert result.code == 2, result
    assert len(result.stdout) < 50_000
    if output_format == "json":
        [file] = result.json()["files"]
        assert (len(file["issues"]), file["omitted"]) == (200, 99_800)
    else:
        assert "... and 99,800 more problems (at most 200 are listed per file)" in result.stdout
        assert result.stdout.endswith("100,000 errors in 1 of 1 file\n")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "{max_retries: 100000000}",
            "retry.max_retries: Input should be less than or equal to 10000",
        ),
        (
            "{max_retries: 1100, backoff: exponential, backoff_base: 1e200}",
            "retry.backoff_base: Input should be less than or equal to 100",
        ),
        ("{backoff: [1, 1e300]}", "retry.backoff[1]: Input should be at most 365d"),
    ],
)
def test_plan_refuses_policies_past_the_limits(
    cli: Cli, pipeline: Pipeline, policy: str, message: str
) -> None:
    # Given a retry policy that once crashed plan with OverflowError, or took 5.6 GB
    path = pipeline(
        "policy", f"version: 1\nname: x\npipeline:\n  job: {NOTIFY}\n  retry: {policy}\n"
    )
    # When it is planned / Then validation refuses it with its position
    result = run_limited(cli, "plan", str(path))
    assert result.code == 2, result
    assert f"{path}:5:" in result.stderr
    assert message in result.stderr


def test_plan_of_the_most_extreme_valid_policy_is_bounded(cli: Cli, pipeline: Pipeline) -> None:
    # Given 10,000 exponential retries, waits overflowing any float long before the end
    path = pipeline(
        "extreme",
        f"version: 1\nname: x\npipeline:\n  job: {NOTIFY}\n"
        "  retry: {max_retries: 10000, backoff: exponential, backoff_base: 100, "
        "timeout_seconds: 365d}\n",
    )
    # When it is planned
    result = run_limited(cli, "plan", str(path))
    # Then it prints ten waits, a summary of the rest, and a finite worst case
    assert result.code == 0, result
    assert "... 9,990 more, each at most 365d" in result.stdout
    assert "worst case  7299281d 16h" in result.stdout
    assert len(result.stdout.splitlines()) < 15
