"""Each example in ``examples/`` runs through the real command, as the README shows it.

Each test works in a directory of its own holding a copy of ``examples/``, so that the
default store (``.arvel-flow/state.db``) and the digests' outbox are the test's own.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import REPO, Cli, Result, read_lines, started_run_id

pytestmark = pytest.mark.slow

JOB_EVENTS = ("step", "job", "attempt")


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """A working directory of the test's own, with a copy of the examples."""
    work = tmp_path / "work"
    shutil.copytree(
        REPO / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    return work


@pytest.fixture
def cli(here: Path, tmp_path: Path) -> Iterator[Cli]:
    """The command, run in ``here`` as a user runs it from the repository root."""
    runner = Cli(here, tmp_path / "logs")
    yield runner
    runner.stop_all()


def run_example(cli: Cli, name: str, events: Path, *extra: str) -> Result:
    return cli("run", f"examples/{name}.yaml", "--events", str(events), *extra)


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_spec_fields(events: list[dict[str, Any]]) -> None:
    """Every event has SPEC §5's fields, and all belong to one run."""
    assert events, "no events were written"
    for event in events:
        assert {"event", "time", "run_id"} <= event.keys(), event
        assert isinstance(event["time"], float), event
        if event["event"].startswith("job."):
            assert all(event.get(key) is not None for key in JOB_EVENTS), event
            assert isinstance(event["attempt"], int), event
    assert len({event["run_id"] for event in events}) == 1


def test_quickstart_runs_its_chain_in_order_and_succeeds(cli: Cli, tmp_path: Path) -> None:
    # Given the quick start, When it runs without a terminal
    result = run_example(cli, "quickstart", tmp_path / "events.jsonl")

    # Then it succeeds, printing plain lines: each step, a summary and the verdict
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    run_id = started_run_id(result)
    assert any(" chain.step import " in line for line in lines)
    assert "import examples.jobs:ImportRows succeeded attempts=1" in result.stdout
    assert "report examples.jobs:Report succeeded attempts=1" in result.stdout
    assert lines[-1] == f"run {run_id} succeeded: 2 succeeded of 2 jobs"
    assert "Traceback" not in result.stderr
    # And the events file holds the same run, import finishing before report starts
    events = read_events(tmp_path / "events.jsonl")
    assert_spec_fields(events)
    assert events[0]["run_id"] == run_id
    order = [(e["event"], e.get("step")) for e in events]
    assert order.index(("job.succeeded", "import")) < order.index(("job.started", "report"))
    assert events[-1] == {**events[-1], "event": "run.finished", "status": "succeeded"}


def test_import_fanout_retries_flaky_chunks_and_reports(cli: Cli, tmp_path: Path) -> None:
    # Given the import of twelve chunks from a flaky upstream (20% of attempts fail)
    result = run_example(cli, "import_fanout", tmp_path / "events.jsonl", "--set", "region=us")

    # Then the batch succeeds (five attempts each make a lost chunk very unlikely)
    assert result.code == 0, result
    assert "batch.finished chunks status=succeeded" in result.stdout
    assert "chunks.then examples.jobs:Report succeeded" in result.stdout
    assert "chunks.catch" not in result.stdout
    # And every chunk was started, each member event naming its fan-out step
    events = read_events(tmp_path / "events.jsonl")
    assert_spec_fields(events)
    started = {e["step"] for e in events if e["event"] == "job.started"}
    assert {f"chunks.0[{i}]" for i in range(12)} <= started
    retries = [e for e in events if e["event"] == "job.retrying"]
    assert all(e["error"].startswith("ConnectionError: ") for e in retries)
    progress = [e for e in events if e["event"] == "batch.progress"]
    assert progress[-1]["finished"] == progress[-1]["total"] == 12


def test_weekly_digest_tolerates_its_bounce_and_shows_the_traceback(
    cli: Cli, tmp_path: Path
) -> None:
    # Given the weekly digest, whose batch allows the one address that bounces
    result = run_example(cli, "weekly_digest", tmp_path / "events.jsonl")

    # Then the run succeeds, `then` and `finally` ran, `catch` did not
    assert result.code == 0, result
    assert "digests.then examples.jobs:NotifyDone succeeded" in result.stdout
    assert "digests.finally examples.jobs:Cleanup succeeded" in result.stdout
    assert "digests.catch" not in result.stdout
    assert "report examples.jobs:Report succeeded" in result.stdout
    # And the bounce is shown once, with the user's frame and the error, not retried
    assert "failed: bounced[0] (examples.jobs:SendWeeklyDigest) failed after 1 attempt" in (
        result.stdout
    )
    assert 'examples/jobs.py", line' in result.stdout
    assert "DigestBouncedError: user 13: mailbox does not exist" in result.stdout
    events = read_events(tmp_path / "events.jsonl")
    assert_spec_fields(events)
    failed = [e for e in events if e["event"] == "job.failed"]
    assert [(e["step"], e["attempt"]) for e in failed] == [("bounced[0]", 1)]
    # And a second digest for the same user waits for the first (released, not dropped)
    released = [e for e in events if e["event"] == "job.released"]
    assert released
    assert all(e["reason"].startswith("overlapping") for e in released)
    assert "Warning" not in result.stdout + result.stderr
    # And the failed id it prints finds the record in the default store
    failed_id = failed[0]["failed_id"]
    assert f"(failed id {failed_id})" in result.stdout
    shown = cli("failed", "show", failed_id[:8])
    assert shown.code == 0, shown
    assert "DigestBouncedError: user 13: mailbox does not exist" in shown.stdout


def test_weekly_digest_counts_add_up_to_its_jobs_and_callbacks(cli: Cli, tmp_path: Path) -> None:
    # Given the weekly digest: refresh, 6 digests and a bounce, compact (9 pipeline jobs),
    # and the callbacks that fire: the batch's `then` and `finally`, the run's `finally`
    result = run_example(cli, "weekly_digest", tmp_path / "events.jsonl")

    # Then the last line counts 12 jobs, and its parts add up to them
    assert result.code == 0, result
    run_id = started_run_id(result)
    last = result.stdout.splitlines()[-1]
    assert last == f"run {run_id} succeeded: 11 succeeded, 1 failed (allowed) of 12 jobs"
    # And run.finished and `status --format json` carry the same counts, adding up
    finished = read_events(tmp_path / "events.jsonl")[-1]
    assert finished["event"] == "run.finished"
    status = cli("status", run_id, "--format", "json")
    assert status.code == 0, status
    for counts in (finished["counts"], status.json()["counts"]):
        assert counts["total"] == 12
        parts = ("succeeded", "failed", "skipped", "cancelled", "duplicates", "pending")
        assert sum(counts[part] for part in parts) == counts["total"], counts
        assert counts["failed"] == counts["failed_allowed"] == 1


def test_weekly_digest_run_twice_within_the_hour_mails_each_user_once(
    cli: Cli, here: Path, tmp_path: Path
) -> None:
    # Given the weekly digest, run once: six digests sent (three users, two locales)
    first = run_example(cli, "weekly_digest", tmp_path / "first.jsonl")
    assert first.code == 0, first
    outbox = here / "outbox" / "digests.txt"
    sent = read_lines(outbox)
    assert sorted(sent) == sorted(
        f"digest sent to user {user} ({locale})" for user in (1, 2, 3) for locale in ("en", "fr")
    )

    # When it runs again at once
    second = run_example(cli, "weekly_digest", tmp_path / "second.jsonl")

    # Then the run succeeds and nobody got a second mail
    assert second.code == 0, second
    assert read_lines(outbox) == sent
    assert started_run_id(second) != started_run_id(first)


def test_crash_resume_dies_in_transform_and_the_resume_finishes_the_run(cli: Cli) -> None:
    # Given the crash example, whose transform step kills its process the first time
    crashed = cli("run", "examples/crash_resume.yaml")

    # Then the command dies (as kill -9 would have it), its run id printed first
    assert crashed.code == -signal.SIGKILL, crashed
    run_id = started_run_id(crashed)
    listed = cli("runs", "--format", "json")
    assert [(r["run_id"], r["status"]) for r in listed.json()] == [(run_id, "running")]

    # When it is resumed as the example's comment says, by the start of its id
    resumed = cli("run", "--resume", run_id[:4], "--force", "--output", "json")

    # Then the run succeeds: transform and load ran, extract did not run again
    assert resumed.code == 0, resumed
    events = resumed.events()
    assert_spec_fields(events)
    started = [e["step"] for e in events if e["event"] == "job.started"]
    assert started == ["transform", "load"]
    assert events[-1] == {**events[-1], "event": "run.finished", "status": "succeeded"}


def test_json_output_is_nothing_but_events(cli: Cli) -> None:
    # When the quick start runs with --output json
    result = cli("run", "examples/quickstart.yaml", "--output", "json")

    # Then stdout is one JSON event per line, from run.started to run.finished
    assert result.code == 0, result
    events = result.events()
    assert_spec_fields(events)
    assert events[0]["event"] == "run.started"
    assert events[-1]["event"] == "run.finished"
    names = {e["event"] for e in events}
    assert {"job.dispatched", "job.started", "job.succeeded", "chain.step"} <= names


def test_scheduled_lists_its_triggers_and_a_tick_runs_the_pipeline(
    cli: Cli, tmp_path: Path
) -> None:
    # Given the scheduled example, When its triggers are listed
    listed = cli("schedule", "list", "examples/scheduled.yaml", "--format", "json")
    # Then both show, with the policies they set and their next times
    assert listed.code == 0, listed
    triggers = {t["id"]: t for t in listed.json()["triggers"]}
    assert set(triggers) == {"nightly", "compact"}
    assert triggers["nightly"]["timezone"] == "Europe/Berlin"
    assert triggers["nightly"]["next"][0]["local"][11:16] == "03:00"
    assert (triggers["compact"]["overlap"], triggers["compact"]["missed"]) == ("skip", "skip")
    # When system cron calls schedule tick
    store = f"sqlite:{tmp_path / 'state.db'}"
    ticked = cli("schedule", "tick", "examples/scheduled.yaml", "--store", store)
    # Then the interval trigger's current tick ran the pipeline, which succeeded
    assert ticked.code == 0, ticked
    assert "scheduled/compact: start" in ticked.stderr
    runs = cli("runs", "--store", store, "--format", "json").json()
    compact = [run for run in runs if run["trigger"] == "scheduled/compact"]
    assert [run["status"] for run in compact] == ["succeeded"]
