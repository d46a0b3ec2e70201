"""What ``arvel-flow worker`` prints: Celery's line format, and the logs of its jobs."""

from __future__ import annotations

import re

import pytest

from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import Cluster
from tests.integration.jobs import Chatty

pytestmark = [pytest.mark.redis, pytest.mark.slow]

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: (?P<level>[A-Z]+)/MainProcess\] "


async def run_chatty(cluster: Cluster, dispatcher: TaskiqQueue) -> str:
    """Dispatch a one-step chain of `Chatty`; wait until it ran; its run id."""
    run_id = await Chain(Chatty(journal=cluster.journal_key, tag="chatty")).dispatch(
        dispatcher, wait=False
    )
    assert isinstance(run_id, str)
    await cluster.wait_for(lambda: cluster.tags() == ["chatty"], 20, "the job ran")
    return run_id


def job_logs(output: str, run_id: str) -> list[tuple[str, str]]:
    """(level, text) of each job.log line of ``run_id``."""
    pattern = re.compile(f"{STAMP}job\\.log run {run_id} root\\.0 \\(attempt 1\\) (?P<text>.*)")
    found = (pattern.fullmatch(line) for line in output.splitlines())
    return [(match["level"], match["text"]) for match in found if match]


async def test_worker_lines_carry_time_and_level_and_its_jobs_logs_name_the_run(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker
    worker = await cluster.start_worker()
    # When a job that logs INFO and WARNING runs on it
    run_id = await run_chatty(cluster, dispatcher)
    await cluster.wait_for(lambda: "disk almost full" in worker.output(), 10, "the log line")
    # Then every line it printed starts with the time, level and process
    output = worker.output()
    assert all(re.match(STAMP, line) for line in output.splitlines()), output
    assert re.search(f"^{STAMP}worker \\S+: ready$", output, re.MULTILINE), output
    # And the job's log lines name the run, step and attempt, at their own level
    assert job_logs(output, run_id) == [
        ("INFO", "tests.integration.chatty: fetched 3 rows"),
        ("WARNING", "tests.integration.chatty: disk almost full"),
    ], output


async def test_worker_log_level_warning_hides_a_jobs_info_lines(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker started with --log-level WARNING
    worker = await cluster.start_worker("--log-level", "WARNING")
    # When a job that logs INFO and WARNING runs on it
    run_id = await run_chatty(cluster, dispatcher)
    await cluster.wait_for(lambda: "disk almost full" in worker.output(), 10, "the log line")
    # Then only its WARNING line is printed
    assert job_logs(worker.output(), run_id) == [
        ("WARNING", "tests.integration.chatty: disk almost full")
    ], worker.output()
