"""``run FILE --dry-run --fail SPEC``: the simulated timeline, its exit code, usage errors."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from arvel_flow.cli.app import cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever a simulation would write lands here, for the tests to see that it did not.
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ARVEL_FLOW_"):
            monkeypatch.delenv(name)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args])


def _quickstart(tmp_path: Path) -> str:
    target = tmp_path / "quickstart.yaml"
    shutil.copy(EXAMPLES / "quickstart.yaml", target)
    return str(target)


def test_a_step_failing_every_attempt_shows_each_attempt_and_wait_and_exits_1(
    tmp_path: Path,
) -> None:
    # Given the quickstart (default retries: 3, a minute apart)
    path = _quickstart(tmp_path)
    # When its import is made to fail every attempt
    result = invoke(path, "--dry-run", "--fail", "import")
    # Then the timeline shows each attempt at its virtual time, the final states, and
    # the last line a real run prints; the exit code is the failed run's
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "simulation of quickstart (--fail import): no job ran; times are virtual, from the start",
        "        +0s  import  attempt 1 of 4 failed (SimulatedFailure); waits 1m",
        "        +1m  import  attempt 2 of 4 failed (SimulatedFailure); waits 1m",
        "        +2m  import  attempt 3 of 4 failed (SimulatedFailure); waits 1m",
        "        +3m  import  attempt 4 failed for good (SimulatedFailure): attempts exhausted (4)",
    ]
    assert "  import examples.jobs:ImportRows failed attempts=4 duration=3m" in lines
    assert "  report examples.jobs:Report skipped attempts=0 duration=" in lines
    assert re.fullmatch(
        r"run \w{12} failed: 1 failed, 1 skipped of 2 jobs \(simulated: 3m of virtual time\)",
        lines[-1],
    )
    # and nothing was written: no store, no outbox
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quickstart.yaml"]


def test_failing_some_attempts_lets_the_run_succeed_and_exits_0(tmp_path: Path) -> None:
    result = invoke(_quickstart(tmp_path), "--dry-run", "--fail", "import@1,2")
    assert result.exit_code == 0, result.output
    assert "        +2m  import  attempt 3 succeeded" in result.output
    assert "        +2m  report  attempt 1 succeeded" in result.output


def test_a_timeout_spends_the_steps_timeout_and_says_when_the_attempt_started(
    tmp_path: Path,
) -> None:
    result = invoke(_quickstart(tmp_path), "--dry-run", "--fail", "import@1:timeout")
    assert result.exit_code == 0, result.output
    assert (
        "       +30s  import  attempt 1 of 4 failed (timed out after 30s, started +0s); waits 1m"
    ) in result.output
    assert "    +1m 30s  import  attempt 2 succeeded" in result.output


def test_callbacks_are_named_by_their_role_and_fan_out_members_by_glob() -> None:
    # Given the weekly digest (allow_failures: 1), When two digests fail every attempt
    result = invoke(str(EXAMPLES / "weekly_digest.yaml"), "--dry-run", "--fail", "digests.0[*]@all")
    # Then catch and finally fire, then is not, and the run fails
    assert result.exit_code == 1, result.output
    assert "attempt 1 succeeded (catch of digests)" in result.output
    assert "attempt 1 succeeded (finally of digests)" in result.output
    assert "(then of digests)" not in result.output
    assert "digests          batch failed" in result.output


def test_json_output_is_the_events_at_their_virtual_times(tmp_path: Path) -> None:
    result = invoke(_quickstart(tmp_path), "--dry-run", "--fail", "import", "--output", "json")
    assert result.exit_code == 1, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    retries = [e for e in events if e["event"] == "job.retrying"]
    assert [e["attempt"] for e in retries] == [1, 2, 3]
    assert events[-1]["event"] == "run.finished"
    assert events[-1]["time"] - events[0]["time"] == 180.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--fail", "imprt"],
            "error: --fail 'imprt': no job step is named 'imprt'; "
            "the job steps are: import, report",
        ),
        (["--fail", "import@x"], "error: --fail 'import@x': 'x' is not an attempt number"),
        (["--fail", "import:crash"], "error: --fail 'import:crash': unknown kind 'crash'"),
    ],
)
def test_a_bad_fault_spec_is_a_usage_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(_quickstart(tmp_path), "--dry-run", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_fail_without_dry_run_is_a_usage_error_and_runs_nothing(tmp_path: Path) -> None:
    result = invoke(_quickstart(tmp_path), "--fail", "import")
    assert result.exit_code == 2
    assert "--fail simulates a run of a pipeline FILE: it goes with --dry-run" in result.output
    assert not (tmp_path / ".arvel-flow").exists()


def test_fail_with_resume_is_a_usage_error() -> None:
    result = invoke("--resume", "abc", "--dry-run", "--fail", "import")
    assert result.exit_code == 2
    assert "(and no --resume)" in result.output


def test_a_dry_run_without_fail_still_lists_what_would_run(tmp_path: Path) -> None:
    result = invoke(_quickstart(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run of quickstart: nothing was executed; it would run 2 job(s):" in result.output
    assert "simulation" not in result.output


def test_a_simulation_needs_no_production_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pipeline reading a variable that is not set here (a real run refuses it)
    monkeypatch.delenv("IMPORT_SOURCE_URL", raising=False)
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: env\npipeline:\n  id: import\n"
        "  job: examples.jobs:ImportRows\n  with: {path: '${IMPORT_SOURCE_URL}'}\n"
    )
    assert invoke(str(path), "--dry-run").exit_code == 2
    # When it is simulated
    result = invoke(str(path), "--dry-run", "--fail", "import@1")
    # Then the unset variable is a warning, as for plan, and the simulation runs
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output
    assert "IMPORT_SOURCE_URL" in result.output
    assert "import  attempt 2 succeeded" in result.output


def test_events_also_go_to_the_events_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    result = invoke(_quickstart(tmp_path), "--dry-run", "--fail", "import", "--events", str(events))
    assert result.exit_code == 1
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in lines].count("job.retrying") == 3
    assert result.stdout.startswith("simulation of quickstart")
    # the file's traps (default retries) are warnings on stderr, as plan says them
    assert "no retry settings: a failing job retries 3 times 1m apart" in result.stderr
