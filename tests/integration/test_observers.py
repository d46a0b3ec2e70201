"""A worker's observers, named by ``ARVEL_FLOW_OBSERVERS`` (#14 §3), on Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import Cluster
from tests.integration.jobs import Chatty

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def observed(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_a_worker_feeds_its_jobs_events_to_the_observers_the_variable_names(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    events = tmp_path / "observed.jsonl"
    # Given a worker with an observer that writes events to a file
    await cluster.start_worker(
        ARVEL_FLOW_OBSERVERS="tests.integration.observers:write_event",
        ARVEL_FLOW_ALLOWED_MODULES="tests.integration.jobs,tests.integration.observers",
        OBSERVED=str(events),
    )
    # When a job runs on it
    run_id = await Chain(Chatty(journal=cluster.journal_key, tag="chatty")).dispatch(
        dispatcher, wait=False
    )

    def finished() -> bool:
        return any(e["event"] == "job.succeeded" for e in observed(events))

    await cluster.wait_for(finished, 20, "the observer saw the job succeed")
    # Then the observer received the job's events of that run, in order
    names = [e["event"] for e in observed(events) if e.get("run_id") == run_id]
    assert names.index("job.started") < names.index("job.log") < names.index("job.succeeded")


async def test_a_worker_refuses_an_observer_outside_its_allowlist(cluster: Cluster) -> None:
    # When a worker's observer lies outside --allow
    worker = await cluster.start_worker(
        wait=False, ARVEL_FLOW_OBSERVERS="tests.e2e.observers:EventFile"
    )
    # Then it does not start: exit 2 and the reason in one line
    assert worker.wait(20) == 2
    output = worker.output()
    assert "cannot use 'tests.e2e.observers:EventFile': not under the allowed modules" in output
    assert "Traceback" not in output
