"""Messages a worker must not run are recorded as failed, nothing imported, and skipped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.wire import encode_message
from tests.integration.conftest import Cluster
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]

FORBIDDEN = "tests.integration.forbidden:handle"


def envelope(target: str, **settings: object) -> bytes:
    ref = JobRef(target, {"journal": "x", "tag": "x"}, JobSettings.from_values(dict(settings)))
    return encode_message(Envelope(ref, "poison"), "unused")


async def test_poisoned_messages_are_recorded_as_failed_and_the_worker_goes_on(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given a worker allowed to import tests.integration.jobs only
    marker = tmp_path / "imported"
    worker = await cluster.start_worker(ARVEL_FLOW_TEST_MARKER=str(marker))
    stream = f"{cluster.prefix}queue:default"
    taskiq_message = {"task_id": "1", "task_name": "other.task", "labels": {}, "args": []}
    poisons = {
        "bad JSON": b"{not json",
        "not a Taskiq message": b"[1, 2, 3]",
        "another task": json.dumps({**taskiq_message, "kwargs": {}}).encode(),
        "not an envelope": json.dumps(
            {**taskiq_message, "task_name": "arvel_flow.run_envelope", "args": ["{}"]}
        ).encode(),
        "unknown class": envelope("tests.integration.jobs:NoSuchJob"),
        "disallowed module": envelope(FORBIDDEN),
        "disallowed middleware": envelope(
            "tests.integration.jobs:Record",
            middleware=[MiddlewareRef("tests.integration.forbidden:Guard", {})],
        ),
        "disallowed exception": envelope(
            "tests.integration.jobs:Record", retry_on=["tests.integration.forbidden.Error"]
        ),
    }
    # When each is put in its stream, followed by a good job
    for data in poisons.values():
        cluster.redis.xadd(stream, {"data": data})
    cluster.redis.xadd(stream, {"other": "no data field"})
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="good"))
    # Then the good job runs, in the same worker process
    await cluster.wait_for(lambda: cluster.tags() == ["good"], 10, "the good job ran")
    assert worker.process.poll() is None
    # And every poisoned message is recorded as a failure
    failed_key = f"{cluster.prefix}failed"
    expected = len(poisons) + 1
    await cluster.wait_for(lambda: cluster.redis.hlen(failed_key) == expected, 5, "recorded")
    failures = await dispatcher.store.list_failed()
    jobs = sorted(f.job for f in failures)
    assert jobs.count("<unreadable message>") == 5
    assert "tests.integration.jobs:NoSuchJob" in jobs
    assert jobs.count("tests.integration.jobs:Record") == 2
    refused = [f for f in failures if f.job == FORBIDDEN]
    assert [f.exception for f in refused] == ["arvel_flow.errors.ImportTargetError"]
    assert "not under the allowed modules" in refused[0].message
    # And nothing was imported for them, and each was acknowledged and deleted
    assert not marker.exists()
    await cluster.wait_for(lambda: cluster.redis.xlen(stream) == 0, 5, "all acknowledged")


async def test_a_disallowed_job_in_a_batch_fails_its_step_and_the_batch_reacts(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given a worker, and a batch where one member names a disallowed module
    marker = tmp_path / "imported"
    await cluster.start_worker(ARVEL_FLOW_TEST_MARKER=str(marker))
    batch = Batch([Record(journal=cluster.journal_key, tag="fine"), JobRef(FORBIDDEN)]).catch(
        Record(journal=cluster.journal_key, tag="caught")
    )
    # When it runs
    async with asyncio.timeout(15):
        result = await batch.dispatch(dispatcher)
    # Then that member failed without being imported, and the batch's catch ran
    assert not isinstance(result, str)
    assert result.status == "failed"
    assert list(result.failed) == ["root.1"]
    assert sorted(cluster.tags()) == ["caught", "fine"]
    assert not marker.exists()
