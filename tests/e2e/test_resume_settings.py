"""A resume keeps the run settings the run was started with (its file's ``queue:``).

The jobs note ``start NAME`` and then ``NAME`` in a log file, one line at a time, so
the log tells how many of them ran at once.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, most_at_once, read_lines, started_run_id, wait_for

pytestmark = pytest.mark.slow

JOBS = 14


def limited_pipeline(pipeline: Callable[[str, str], Path], log: Path) -> Path:
    """A batch of slow jobs whose file allows two at once (``queue: concurrency: 2``)."""
    at = json.dumps(str(log))
    items = ", ".join(f"{{name: j{i:02d}}}" for i in range(JOBS))
    return pipeline(
        "limited",
        f"""
version: 1
name: limited
queue: {{concurrency: 2}}
pipeline:
  batch:
    - job: tests.e2e.jobs:Mark
      with: {{log: {at}, seconds: 0.3}}
      each: [{items}]
""",
    )


def interrupted_run(cli: Cli, file: Path, store: str, log: Path) -> str:
    """Start a run of ``file``, Ctrl-C it after a few jobs; its id."""
    running = cli.start("run", str(file), "--store", store, "--output", "plain")
    wait_for(lambda: len(read_lines(log)) >= 6, what="a few jobs to run")
    running.signal(signal.SIGINT)
    interrupted = running.wait()
    assert interrupted.code == 130, interrupted
    return started_run_id(interrupted)


def test_a_resumed_run_keeps_the_concurrency_of_its_file(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run declared with concurrency 2, interrupted with jobs left to run
    log = tmp_path / "log"
    run_id = interrupted_run(cli, limited_pipeline(pipeline, log), store, log)
    before = len(read_lines(log))

    # When it is resumed (a resume reads no file)
    resumed = cli("run", "--resume", run_id, "--store", store, "--output", "plain")

    # Then it finishes, never running more than two jobs at once, and says nothing changed
    assert resumed.code == 0, resumed
    after = read_lines(log)[before:]
    assert len(after) >= 2 * 4, "the resume ran too few jobs to show its concurrency"
    assert most_at_once(after) == 2
    assert "resuming with" not in resumed.stderr


def test_a_flag_given_to_resume_overrides_the_pinned_setting_and_says_so(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a run declared with concurrency 2, interrupted with jobs left to run
    log = tmp_path / "log"
    run_id = interrupted_run(cli, limited_pipeline(pipeline, log), store, log)
    before = len(read_lines(log))

    # When it is resumed with --concurrency 8
    resumed = cli(
        "run", "--resume", run_id, "--store", store, "--concurrency", "8", "--output", "plain"
    )

    # Then the resume says so, and runs more than two jobs at once
    assert resumed.code == 0, resumed
    assert "resuming with concurrency 8 (was 2)" in resumed.stderr
    assert most_at_once(read_lines(log)[before:]) > 2


def test_a_broker_url_with_a_password_is_not_pinned_and_a_resume_asks_for_it(
    cli: Cli, store: str, tmp_path: Path
) -> None:
    # Given a run stored with settings whose broker URL held a password (masked)
    run_id = _store_run_with_masked_url(store)

    # When it is resumed without a URL
    resumed = cli("run", "--resume", run_id, "--store", store)

    # Then it is refused in one line naming the masked URL, no traceback (exit 2)
    assert resumed.code == 2, resumed
    assert "redis://app:***@127.0.0.1:6399/0" in resumed.stderr
    assert "--url" in resumed.stderr
    assert "s3cret" not in resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stderr


def _store_run_with_masked_url(store: str) -> str:
    """Record an interrupted run whose pinned settings hold a masked broker URL."""
    import asyncio

    from arvel_flow.launch.pinned import pin
    from arvel_flow.queue.plan import JobNode, Plan
    from arvel_flow.queue.plan_json import plan_to_dict
    from arvel_flow.queue.targets import JobRef
    from arvel_flow.settings import QueueSettings
    from arvel_flow.store import open_store
    from arvel_flow.store.contracts import RunRecord

    settings = QueueSettings(store=store, broker="redis", url="redis://app:s3cret@127.0.0.1:6399/0")
    plan = pin(Plan.of("secretive", JobNode("only", JobRef("tests.e2e.jobs:Touch", {}))), settings)

    async def record_run() -> None:
        opened = open_store(store)
        try:
            record = RunRecord("pinnedurl01", plan.name, created_at=0.0)
            await opened.create_run(record, plan_to_dict(plan))
            await opened.set_run_status("pinnedurl01", "interrupted", 0.0)
        finally:
            await opened.close()

    asyncio.run(record_run())
    return "pinnedurl01"


def test_a_run_started_on_a_broker_resumes_on_that_broker(
    cli: Cli,
    pipeline: Callable[[str, str], Path],
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
) -> None:
    # Given a run its file sends to Redis, dispatched with no worker yet
    cli.env["ARVEL_FLOW_PREFIX"] = redis_prefix
    store = redis_url
    log = tmp_path / "log"
    at = json.dumps(str(log))
    file = pipeline(
        "distributed",
        f"""
version: 1
name: distributed
queue: {{broker: redis, url: "{redis_url}"}}
pipeline:
  batch:
    - job: tests.e2e.jobs:Mark
      with: {{log: {at}}}
      each: [{{name: a}}, {{name: b}}]
""",
    )
    started = cli("run", str(file), "--store", store, "--detach")
    assert started.code == 0, started
    run_id = started_run_id(started)

    # When it is resumed with no broker named (a resume reads no file)
    resuming = cli.start("run", "--resume", run_id, "--store", store, "--output", "plain")
    wait_for(lambda: f"run {run_id} (distributed) resumed" in resuming.stdout, what="resume")

    # Then the resume sends the jobs to Redis again, not to this process: none runs
    # until a worker is there, which then finishes the run the resume follows
    time.sleep(0.5)
    assert read_lines(log) == []
    cli.start("worker", "--store", store, "--allow", "tests.e2e")
    resumed = resuming.wait()
    assert resumed.code == 0, resumed
    assert "resuming with" not in resumed.stderr
    assert {"a", "b"} <= set(read_lines(log))


def test_resume_with_detach_returns_once_dispatched_and_the_workers_finish_the_run(
    cli: Cli,
    pipeline: Callable[[str, str], Path],
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
) -> None:
    # Given a distributed run, dispatched with no worker yet
    cli.env["ARVEL_FLOW_PREFIX"] = redis_prefix
    log = tmp_path / "log"
    at = json.dumps(str(log))
    file = pipeline(
        "detached",
        f"""
version: 1
name: detached
queue: {{broker: redis, url: "{redis_url}"}}
pipeline:
  batch:
    - job: tests.e2e.jobs:Mark
      with: {{log: {at}}}
      each: [{{name: a}}, {{name: b}}]
""",
    )
    started = cli("run", str(file), "--store", redis_url, "--detach")
    assert started.code == 0, started
    run_id = started_run_id(started)

    # When it is resumed with --detach, still with no worker
    resumed = cli("run", "--resume", run_id, "--store", redis_url, "--detach", timeout=15)

    # Then the command returns at once, having dispatched the jobs, and says so
    assert resumed.code == 0, resumed
    assert f"run {run_id} (detached) resumed" in resumed.stdout
    assert read_lines(log) == []
    # And a worker started later finishes the run
    cli.start("worker", "--store", redis_url, "--allow", "tests.e2e")
    wait_for(lambda: {"a", "b"} <= set(read_lines(log)), what="the worker to run the jobs")
    wait_for(
        lambda: (
            cli("status", run_id, "--store", redis_url, "--format", "json").json()["status"]
            == "succeeded"
        ),
        what="the run to succeed",
    )
