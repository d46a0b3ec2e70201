"""``arvel-flow scheduler`` and ``schedule``: real processes sharing one store.

Several schedulers fire an ``every: 1s`` trigger for a few seconds against one sqlite
file and one Redis: each tick starts exactly one run, and none is lost (the runs'
scheduled times are every second from the first to the last). A scheduler killed
with SIGKILL and started again catches up per ``missed``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from arvel_flow.scheduler.claim import tick_run_id
from arvel_flow.store import SqliteStore
from arvel_flow.store.contracts import TickRecord
from tests.e2e.harness import Cli, Running, read_lines, wait_for

EVERY_SECOND = """\
version: 1
name: {name}
schedule:
  - id: often
    every: 1s
    overlap: allow
    missed: {missed}
pipeline:
  job: tests.e2e.jobs:Mark
  with: {{log: "{log}", name: tick}}
"""


def start_schedulers(cli: Cli, count: int, path: Path, store: str) -> list[Running]:
    schedulers = [cli.start("scheduler", str(path), "--store", store) for _ in range(count)]
    for scheduler in schedulers:
        # Starting imports the job classes: slow on a busy machine.
        wait_for(
            lambda s=scheduler: "scheduler: ready" in s.stderr, timeout=60, what="scheduler ready"
        )
    return schedulers


def stop(schedulers: list[Running]) -> None:
    for scheduler in schedulers:
        scheduler.signal(signal.SIGTERM)
    for scheduler in schedulers:
        result = scheduler.wait()
        assert result.code == 0, result
        assert "Traceback" not in result.stderr, result


def scheduled_runs(cli: Cli, store: str) -> list[dict[str, object]]:
    result = cli("runs", "--store", store, "--format", "json", "--limit", "1000")
    assert result.code == 0, result
    runs: list[dict[str, object]] = result.json()
    return sorted(runs, key=lambda run: float(run["scheduled_at"]))  # type: ignore[arg-type]


def assert_each_tick_once(runs: list[dict[str, object]]) -> None:
    ticks = [float(run["scheduled_at"]) for run in runs]  # type: ignore[arg-type]
    assert len(ticks) == len(set(ticks)), f"a tick started twice: {ticks}"
    assert ticks == [ticks[0] + n for n in range(len(ticks))], f"a tick was lost: {ticks}"
    assert {run["trigger"] for run in runs} == {"often/often"}


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def shared_store(request: pytest.FixtureRequest, cli: Cli, store: str) -> str:
    if request.param == "sqlite":
        return store
    cli.env["ARVEL_FLOW_PREFIX"] = request.getfixturevalue("redis_prefix")
    return str(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("count", [2, 3])
def test_schedulers_sharing_a_store_start_each_tick_exactly_once(
    cli: Cli,
    pipeline: Callable[[str, str], Path],
    tmp_path: Path,
    shared_store: str,
    count: int,
) -> None:
    # Given two or three schedulers of one every-second trigger, sharing a store
    log = tmp_path / "ticks.log"
    path = pipeline("often", EVERY_SECOND.format(name="often", missed="all", log=log))
    schedulers = start_schedulers(cli, count, path, shared_store)
    # When they run for several ticks
    wait_for(lambda: read_lines(log).count("tick") >= 5, timeout=30, what="five ticks")
    stop(schedulers)
    # Then every tick started one run (its job ran once), and none was lost
    runs = scheduled_runs(cli, shared_store)
    assert_each_tick_once(runs)
    assert read_lines(log).count("start tick") == len(runs)
    assert {run["status"] for run in runs} <= {"succeeded", "interrupted"}


@pytest.mark.parametrize("missed", ["all", "skip"])
def test_a_killed_scheduler_restarted_catches_up_per_missed(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str, missed: str
) -> None:
    # Given a scheduler of an every-second trigger
    log = tmp_path / "ticks.log"
    path = pipeline("often", EVERY_SECOND.format(name="often", missed=missed, log=log))
    [first] = start_schedulers(cli, 1, path, store)
    wait_for(lambda: read_lines(log).count("tick") >= 2, timeout=30, what="two ticks")
    # When it is killed with SIGKILL, and started again at least 3 ticks later
    first.process.kill()
    first.process.wait()
    killed_at = time.time()
    ran = read_lines(log).count("tick")
    wait_for(lambda: time.time() > killed_at + 3, what="three ticks missed")
    [again] = start_schedulers(cli, 1, path, store)
    wait_for(lambda: read_lines(log).count("tick") >= ran + 2, timeout=30, what="more ticks")
    stop([again])
    # Then with missed: all the ticks missed while it was down were started too (none
    # lost); with skip they were not, and it went on from the tick due when it came back
    runs = scheduled_runs(cli, store)
    ticks = [float(run["scheduled_at"]) for run in runs]  # type: ignore[arg-type]
    assert len(ticks) == len(set(ticks))
    if missed == "all":
        assert_each_tick_once(runs)
    else:
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert max(gaps) >= 3, ticks


def test_schedule_list_shows_next_times_and_the_last_run(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str
) -> None:
    path = pipeline(
        "nightly",
        """\
version: 1
name: nightly
vars: {region: us}
schedule:
  - id: berlin
    cron: "0 3 * * *"
    timezone: Europe/Berlin
    set: {region: eu}
pipeline:
  job: tests.e2e.jobs:Touch
  with: {path: "${vars.region}.txt"}
""",
    )
    result = cli("schedule", "list", str(path), "--count", "2", "--format", "json")
    assert result.code == 0, result
    [trigger] = result.json()["triggers"]
    # Then it shows the defaults and the next times in the zone and in UTC
    assert (trigger["overlap"], trigger["missed"], trigger["set"]) == (
        "skip",
        "latest",
        {"region": "eu"},
    )
    assert [n["local"][11:19] for n in trigger["next"]] == ["03:00:00", "03:00:00"]
    assert trigger["next"][0]["utc"][11:19] in ("01:00:00", "02:00:00")
    with_store = cli("schedule", "list", str(path), "--store", store, "--format", "json")
    assert with_store.json()["triggers"][0]["last"] is None


def test_schedule_tick_starts_what_is_due_once(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given an every-second trigger, run from system cron with schedule tick
    log = tmp_path / "ticks.log"
    path = pipeline("often", EVERY_SECOND.format(name="often", missed="skip", log=log))
    # When it is called
    result = cli("schedule", "tick", str(path), "--store", store)
    # Then it started the tick due now, followed its run to the end, and exited 0
    assert result.code == 0, result
    assert read_lines(log) == ["start tick", "tick"]
    [run] = scheduled_runs(cli, store)
    assert run["status"] == "succeeded"
    listed = cli("schedule", "list", str(path), "--store", store, "--format", "json")
    assert listed.json()["triggers"][0]["last"]["run_id"] == run["run_id"]


def test_validate_reports_schedule_mistakes_at_their_place(
    cli: Cli, pipeline: Callable[[str, str], Path]
) -> None:
    path = pipeline(
        "bad",
        """\
version: 1
name: bad
vars: {region: us}
schedule:
  - id: nightly
    cron: "0 25 * * *"
    timezone: Europe/Atlantis
    set: {regoin: eu}
  - id: dst
    cron: "30 2 * * *"
    timezone: Europe/Berlin
pipeline:
  job: tests.e2e.jobs:Touch
  with: {path: x}
""",
    )
    result = cli("validate", str(path))
    assert result.code == 2, result
    out = result.stdout + result.stderr
    assert f"{path}:6:11: error: schedule[0].cron: bad hour field in '0 25 * * *'" in out
    assert f"{path}:7:15: error: schedule[0].timezone: unknown time zone 'Europe/Atlantis'" in out
    unknown = "schedule[0].set.regoin: unknown variable 'regoin'; did you mean 'region'?"
    assert f"{path}:8:11: error: {unknown}" in out
    assert "Traceback" not in out


def test_validate_warns_about_daylight_saving_days(
    cli: Cli, pipeline: Callable[[str, str], Path]
) -> None:
    path = pipeline(
        "dst",
        """\
version: 1
name: dst
schedule:
  - id: dst
    cron: "30 2 * * *"
    timezone: Europe/Berlin
pipeline:
  job: tests.e2e.jobs:Touch
  with: {path: x}
""",
    )
    result = cli("validate", str(path))
    assert result.code == 0, result
    out = result.stdout + result.stderr
    assert "02:30 Europe/Berlin does not exist: it fires at 03:00, when the gap ends" in out
    assert "02:30 Europe/Berlin happens twice: it fires once, the first time" in out


def test_a_scheduler_reloads_a_file_that_changes(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given a scheduler of a file whose only trigger is far off
    log = tmp_path / "ticks.log"
    text = EVERY_SECOND.format(name="often", missed="skip", log=log)
    path = pipeline("often", text.replace("every: 1s", "every: 1d"))
    [scheduler] = start_schedulers(cli, 1, path, store)
    # When the file is saved with a bad trigger, then with an every-second one
    path.write_text(text.replace("every: 1s", "every: 1x"), encoding="utf-8")
    wait_for(lambda: "reload failed" in scheduler.stderr, timeout=30, what="reload refused")
    path.write_text(text, encoding="utf-8")
    # Then the bad file was reported at its place and the good one is served
    wait_for(lambda: read_lines(log).count("tick") >= 1, timeout=30, what="a tick")
    stop([scheduler])
    assert f"{path}:5:12: error: schedule[0].every" in scheduler.stderr
    assert "scheduler: reloaded, 1 triggers" in scheduler.stderr


def test_plan_shows_the_triggers_with_their_defaults(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path
) -> None:
    text = EVERY_SECOND.format(name="often", missed="all", log=tmp_path / "x.log")
    path = pipeline("often", text.replace("    overlap: allow\n", ""))
    result = cli("plan", str(path))
    assert result.code == 0, result
    row = next(line for line in result.stdout.splitlines() if "often/often" in line)
    assert "every 1s" in row
    assert "skip" in row  # the default overlap
    assert "all" in row


def test_schedule_tick_exits_1_when_a_run_it_started_failed(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    path = pipeline(
        "failing",
        f"""\
version: 1
name: failing
schedule:
  - {{id: often, every: 1s}}
pipeline:
  job: tests.e2e.jobs:FailsUntil
  with: {{marker: "{tmp_path / "absent"}"}}
  retry: {{max_retries: 0}}
""",
    )
    result = cli("schedule", "tick", str(path), "--store", store)
    assert result.code == 1, result
    assert "of failing/often: failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_schedule_list_of_a_directory_reads_its_pipelines_as_validate_does(
    cli: Cli, pipeline: Callable[[str, str], Path]
) -> None:
    # Given a directory holding a scheduled pipeline and a YAML file that is no pipeline
    path = pipeline(
        "hourly",
        """\
version: 1
name: hourly
schedule:
  - id: top
    cron: "@hourly"
pipeline:
  job: tests.e2e.jobs:Touch
  with: {path: x.txt}
""",
    )
    (path.parent / "docker-compose.yml").write_text("services:\n  redis: {image: redis}\n")
    # When its triggers are listed
    result = cli("schedule", "list", str(path.parent), "--format", "json")
    # Then the pipeline's trigger is listed and the other file is left alone
    assert result.code == 0, result
    assert [t["id"] for t in result.json()["triggers"]] == ["top"]


DAILY = """\
version: 1
name: lost
schedule:
  - id: daily
    every: 1d
pipeline:
  job: tests.e2e.jobs:Mark
  with: {{log: "{log}", name: tick}}
"""


def test_a_tick_claimed_by_a_scheduler_killed_before_its_run_is_started_once(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given what a scheduler kill -9ed between claiming today's tick and recording its
    # run leaves in the store: the claim (a minute old), naming the tick's run, no run
    log = tmp_path / "ticks.log"
    path = pipeline("lost", DAILY.format(log=log))
    now = time.time()
    at = now // 86400 * 86400
    run_id = tick_run_id("lost/daily", at)

    async def claim_and_die() -> None:
        backend = SqliteStore(store.removeprefix("sqlite:"))
        assert await backend.claim_tick(TickRecord("lost/daily", at, now - 60, run_id))
        await backend.close()

    asyncio.run(claim_and_die())
    # When schedule tick is called, twice
    first = cli("schedule", "tick", str(path), "--store", store)
    second = cli("schedule", "tick", str(path), "--store", store)
    # Then the first started that tick's run under the claimed id, the second nothing
    assert first.code == 0, first
    assert "never started: starting it" in first.stderr, first
    assert second.code == 0, second
    assert read_lines(log) == ["start tick", "tick"]
    [run] = scheduled_runs(cli, store)
    assert run["run_id"] == run_id
    assert float(run["scheduled_at"]) == at  # type: ignore[arg-type]
    assert run["status"] == "succeeded"


def test_the_runs_of_a_trigger_give_their_events_to_the_files_observers(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given a scheduled file naming an observer that writes every event it gets
    observed = tmp_path / "observed.jsonl"
    cli.env.update(OBSERVED=str(observed))
    text = EVERY_SECOND.format(name="watched", missed="skip", log=tmp_path / "ticks.log")
    text = text.replace("pipeline:", "observers: [tests.e2e.observers:EventFile]\npipeline:")
    path = pipeline("watched", text)
    # When its due tick is started
    result = cli("schedule", "tick", str(path), "--store", store)
    # Then the run's events reached the observer, from run.started to run.finished
    assert result.code == 0, result
    names = [json.loads(line)["event"] for line in observed.read_text().splitlines()]
    assert (names[0], names[-1]) == ("run.started", "run.finished"), names
