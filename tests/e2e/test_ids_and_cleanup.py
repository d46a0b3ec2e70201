"""Ids a person can type (unique prefixes, short ids in tables) and cleaning up runs
and failed jobs (``runs prune``, ``failed flush`` filters), through the real command."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from arvel_flow.store import SqliteStore
from arvel_flow.store.contracts import RunRecord, RunStatus
from tests.e2e.harness import Cli, Result, started_run_id

pytestmark = pytest.mark.slow

DAY = 86_400.0


@pytest.fixture
def succeeding(pipeline: Callable[[str, str], Path], tmp_path: Path) -> Path:
    """A pipeline of one job that succeeds (its marker exists)."""
    marker = tmp_path / "there"
    marker.touch()
    return pipeline(
        "fine",
        f"""
version: 1
name: fine
pipeline:
  id: one
  job: tests.e2e.jobs:FailsUntil
  with: {{marker: {json.dumps(str(marker))}}}
""",
    )


def failing_fan_out(pipeline: Callable[[str, str], Path], tmp_path: Path, count: int) -> Path:
    """A pipeline whose ``count`` jobs fail, without retries."""
    marker = json.dumps(str(tmp_path / "never"))
    items = ", ".join([f"{{marker: {marker}}}"] * count)
    return pipeline(
        f"failing{count}",
        f"""
version: 1
name: failing
defaults:
  retry: {{max_retries: 0}}
pipeline:
  id: all
  batch:
    - id: jobs
      job: tests.e2e.jobs:FailsUntil
      each: [{items}]
  allow_failures: true
""",
    )


def seed_runs(store: str, runs: list[tuple[str, RunStatus, float, float | None]]) -> None:
    """Write runs straight into a sqlite store: (id, status, created_at, finished_at)."""

    async def write() -> None:
        backend = SqliteStore(store.removeprefix("sqlite:"))
        try:
            for run_id, status, created, finished in runs:
                await backend.create_run(RunRecord(run_id, "seeded", created_at=created), {})
                if status != "running":
                    await backend.set_run_status(run_id, status, finished or created)
        finally:
            await backend.close()

    asyncio.run(write())


def assert_usage_error(result: Result, *messages: str) -> None:
    assert result.code == 2, result
    for message in messages:
        assert message in result.stderr, result
    assert "Traceback" not in result.stderr, result


def failed_ids(cli: Cli, store: str, *args: str) -> list[str]:
    result = cli("failed", "list", "--store", store, "--format", "json", *args)
    assert result.code == 0, result
    return [record["id"] for record in result.json()]


def records_of(result: Result) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = result.json()
    return records


# Prefixes ---------------------------------------------------------------------------


def test_status_and_resume_take_the_start_of_a_run_id(
    cli: Cli, succeeding: Path, store: str
) -> None:
    # Given a finished run
    run_id = started_run_id(cli("run", str(succeeding), "--store", store, "--output", "plain"))

    # When its status is asked for, and it is resumed, by the first 5 characters of its id
    status = cli("status", run_id[:5], "--store", store, "--format", "json")
    resumed = cli("run", "--resume", run_id[:5], "--store", store, "--output", "plain")

    # Then both find the run
    assert status.code == 0, status
    assert status.json()["run_id"] == run_id
    assert resumed.code == 0, resumed
    assert f"run {run_id} (fine) resumed" in resumed.stdout


def test_a_prefix_of_several_run_ids_is_a_usage_error_listing_them(cli: Cli, store: str) -> None:
    # Given two runs whose ids start alike
    seed_runs(
        store,
        [("abc111000000", "succeeded", time.time(), None), ("abc222000000", "failed", 1.0, 2.0)],
    )

    # When a prefix both start with is given
    result = cli("status", "abc", "--store", store)
    resumed = cli("run", "--resume", "abc", "--store", store)

    # Then it is refused (exit 2), naming both, for status as for resume
    for refused in (result, resumed):
        assert_usage_error(refused, "'abc'", "abc111000000  seeded  succeeded", "abc222000000")


@pytest.mark.parametrize("prefix", ["%", "_", "a_c", "a%", "*", "a*", "[a]", "a?c", "a[b]"])
def test_pattern_characters_in_a_prefix_match_only_themselves(
    cli: Cli, store: str, prefix: str
) -> None:
    # Given a run whose id any pattern reading of the prefix would match
    seed_runs(store, [("abc111000000", "succeeded", time.time(), None)])

    # When the prefix is given / Then no run is found
    assert_usage_error(cli("status", prefix, "--store", store), f"no run {prefix!r} in the store")


def test_failed_ids_take_a_prefix_and_a_shared_one_lists_the_jobs(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given 20 failed jobs: two of their ids at least start with the same character
    failing = failing_fan_out(pipeline, tmp_path, 20)
    assert cli("run", str(failing), "--store", store).code == 0
    ids = failed_ids(cli, store)
    shared, _ = Counter(i[0] for i in ids).most_common(1)[0]
    target = ids[0]

    # When one is shown and forgotten by its first 7 characters, and the shared one is given
    shown = cli("failed", "show", target[:7], "--store", store, "--format", "json")
    ambiguous = cli("failed", "show", shared, "--store", store)
    forgotten = cli("failed", "forget", target[:7], "--store", store)

    # Then the prefix names the job; the shared character lists the jobs it starts
    assert shown.code == 0, shown
    assert shown.json()["id"] == target
    assert_usage_error(ambiguous, f"{shared!r} is the start of more than one failed job id")
    assert sum(line.strip().startswith(shared) for line in ambiguous.stderr.splitlines()) >= 2
    assert forgotten.code == 0, forgotten
    assert forgotten.stdout == f"forgot {target}\n"
    assert target not in failed_ids(cli, store)


# Tables ---------------------------------------------------------------------------


def test_tables_show_short_ids_and_no_trunc_shows_them_whole(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given a run with a failed job
    failing = failing_fan_out(pipeline, tmp_path, 1)
    run_id = started_run_id(cli("run", str(failing), "--store", store, "--output", "plain"))
    (failed_id,) = failed_ids(cli, store)

    # When runs and failed jobs are listed, and listed with --no-trunc
    runs, runs_whole = cli("runs", "--store", store), cli("runs", "--store", store, "--no-trunc")
    jobs = cli("failed", "list", "--store", store)
    jobs_whole = cli("failed", "list", "--store", store, "--no-trunc")

    # Then the tables show 8 characters of each id, or the whole ids
    assert run_id[:8] in runs.stdout
    assert run_id not in runs.stdout
    assert run_id in runs_whole.stdout
    assert failed_id[:8] in jobs.stdout
    assert failed_id not in jobs.stdout
    assert run_id[:8] in jobs.stdout
    assert run_id not in jobs.stdout
    assert failed_id in jobs_whole.stdout
    assert run_id in jobs_whole.stdout


def test_failed_show_prints_its_time_as_a_date_and_the_payload_as_json(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given a failed job
    assert cli("run", str(failing_fan_out(pipeline, tmp_path, 1)), "--store", store).code == 0
    (failed_id,) = failed_ids(cli, store)

    # When it is shown
    shown = cli("failed", "show", failed_id, "--store", store)

    # Then its time reads as a date and its payload as JSON
    assert shown.code == 0, shown
    assert re.search(r"failed_at\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown.stdout), shown
    marker = json.dumps(str(tmp_path / "never"))
    assert f'"marker": {marker}' in shown.stdout, shown


# Read-only commands -----------------------------------------------------------------


def test_read_only_commands_create_no_store_and_name_the_one_they_read(
    cli: Cli, tmp_path: Path
) -> None:
    # Given a store whose directory and file do not exist
    store = f"sqlite:{tmp_path / 'absent' / 'state.db'}"

    # When every read-only command reads it
    runs = cli("runs", "--store", store)
    jobs = cli("failed", "list", "--store", store)
    status = cli("status", "abc", "--store", store)
    show = cli("failed", "show", "abc", "--store", store)

    # Then nothing is created, and each says which store it read
    assert not (tmp_path / "absent").exists()
    assert runs.code == 0, runs
    assert runs.stdout.strip() == f"no runs in the store {store}"
    assert jobs.code == 0, jobs
    assert jobs.stdout.strip() == f"no failed jobs in the store {store}"
    assert_usage_error(status, f"no run 'abc' in the store {store}")
    assert_usage_error(show, f"no failed job 'abc' in the store {store}")


# Cleaning up ----------------------------------------------------------------------


def test_runs_prune_deletes_the_runs_that_ended_before_the_cut_off(
    cli: Cli, succeeding: Path, store: str
) -> None:
    # Given runs that ended 10 days ago, a run that ended now, and a running and an
    # interrupted run started 10 days ago
    now = time.time()
    seed_runs(
        store,
        [
            ("old-ok", "succeeded", now - 10 * DAY, now - 10 * DAY),
            ("old-failed", "failed", now - 10 * DAY, now - 10 * DAY),
            ("old-running", "running", now - 10 * DAY, None),
            ("old-stopped", "interrupted", now - 10 * DAY, None),
        ],
    )
    recent = started_run_id(cli("run", str(succeeding), "--store", store, "--output", "plain"))

    # When runs older than 7 days are pruned, then interrupted ones too
    pruned = cli("runs", "prune", "--older-than", "7d", "--store", store)
    listed = [run["run_id"] for run in cli("runs", "--store", store, "--format", "json").json()]
    with_interrupted = cli(
        "runs", "prune", "--older-than", "7d", "--interrupted", "--store", store, "--format", "json"
    )

    # Then the ended old runs went; the recent, running and interrupted ones stayed
    assert pruned.code == 0, pruned
    assert pruned.stdout.startswith("pruned 2 run(s) that ended before "), pruned
    assert sorted(listed) == sorted([recent, "old-running", "old-stopped"])
    assert with_interrupted.json()["pruned"] == ["old-stopped"]
    assert_usage_error(cli("status", "old-ok", "--store", store), "no run 'old-ok'")


def test_runs_prune_of_a_real_run_deletes_its_steps(cli: Cli, succeeding: Path, store: str) -> None:
    # Given a run that just ended
    run_id = started_run_id(cli("run", str(succeeding), "--store", store, "--output", "plain"))
    # When every ended run is pruned
    pruned = cli("runs", "prune", "--older-than", "0", "--store", store, "--format", "json")
    # Then it is gone: its status is unknown and it cannot be resumed
    assert pruned.json()["pruned"] == [run_id]
    assert_usage_error(cli("status", run_id, "--store", store), f"no run {run_id!r}")
    assert_usage_error(cli("run", "--resume", run_id, "--store", store), f"no run {run_id!r}")


@pytest.mark.parametrize("age", ["1x", "-1d", "soon", ""])
def test_a_bad_age_is_a_usage_error(cli: Cli, store: str, age: str) -> None:
    # Given / When an age that is not a duration / Then one clear line, exit 2
    for command in (("runs", "prune"), ("failed", "flush")):
        result = cli(*command, "--older-than", age, "--store", store)
        assert_usage_error(
            result, "error: invalid value for '--older-than'", "a duration such as 90s"
        )


def test_failed_flush_deletes_only_what_its_filters_name(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given two runs with two failed jobs each
    failing = failing_fan_out(pipeline, tmp_path, 2)
    first = started_run_id(cli("run", str(failing), "--store", store, "--output", "plain"))
    second = started_run_id(cli("run", str(failing), "--store", store, "--output", "plain"))
    seconds = failed_ids(cli, store, "--run", second[:6])

    def flush(*filters: str) -> str:
        result = cli("failed", "flush", "--store", store, *filters)
        assert result.code == 0, result
        return result.stdout.strip()

    # When failed jobs are flushed: of another job, too recent, of the first run, the rest
    other_job = flush("--job", "tests.e2e.jobs:Touch")
    too_recent = flush("--older-than", "7d")
    of_first = flush("--run", first[:6])
    left = failed_ids(cli, store)
    rest = flush("--older-than", "0", "--job", "tests.e2e.jobs:FailsUntil")

    # Then each flush deleted what its filters name, and only that
    assert len(seconds) == 2
    assert (other_job, too_recent, of_first) == (
        "flushed 0 failed job(s)",
        "flushed 0 failed job(s)",
        "flushed 2 failed job(s)",
    )
    assert sorted(left) == sorted(seconds)
    assert rest == "flushed 2 failed job(s)"
    assert failed_ids(cli, store) == []


def test_failed_list_of_one_run(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given two runs with failed jobs
    failing = failing_fan_out(pipeline, tmp_path, 1)
    first = started_run_id(cli("run", str(failing), "--store", store, "--output", "plain"))
    started_run_id(cli("run", str(failing), "--store", store, "--output", "plain"))

    # When the failed jobs of the first are listed, by a prefix of its id
    listed = cli("failed", "list", "--run", first[:6], "--store", store, "--format", "json")
    text = cli("failed", "list", "--run", "nope", "--store", store)

    # Then only its own are listed; a run with none says so
    assert [record["run_id"] for record in records_of(listed)] == [first]
    assert text.stdout.strip() == f"no failed jobs of run nope in the store {store}"
