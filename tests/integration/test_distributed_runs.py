"""Runs progress in the workers, through the shared store, whoever started them."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.plan_json import plan_from_dict
from arvel_flow.queue.result import compute_result
from tests.integration.conftest import HEARTBEAT_TIMEOUT, Cluster, every_broker
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def members(cluster: Cluster, count: int, hold: float = 0.0) -> FanOut:
    items = [{"tag": f"m{i}"} for i in range(count)]
    return FanOut(Record(journal=cluster.journal_key, tag="", hold=hold), items)


def callback(cluster: Cluster, tag: str) -> Record:
    return Record(journal=cluster.journal_key, tag=tag)


@every_broker
async def test_two_workers_share_a_batch_and_its_callbacks_fire_once(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers
    first = await cluster.start_worker("--concurrency", "8")
    second = await cluster.start_worker("--concurrency", "8")
    batch = (
        Batch([members(cluster, 500, hold=0.002)])
        .then(callback(cluster, "then"))
        .finally_(callback(cluster, "finally"))
    )
    # When a batch of 500 jobs runs on them
    async with asyncio.timeout(60):
        result = await batch.dispatch(dispatcher)
    # Then it succeeded, every job ran once, and each callback fired once
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    assert result.progress == (500, 500)
    tags = Counter(cluster.tags())
    assert {tag: n for tag, n in tags.items() if n != 1} == {}
    assert len(tags) == 502
    # And both workers did some of the work
    pids = Counter(e["pid"] for e in cluster.journal() if e["tag"].startswith("m"))
    assert set(pids) == {first.pid, second.pid}


@every_broker
async def test_jobs_of_a_worker_killed_mid_batch_finish_elsewhere_once_callbacks_once(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers, and a batch of 200 jobs of 50 ms each
    victim = await cluster.start_worker("--concurrency", "8")
    await cluster.start_worker("--concurrency", "8")
    batch = Batch([members(cluster, 200, hold=0.05)]).then(callback(cluster, "then"))
    run_id = await batch.dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)
    # When one worker is killed with SIGKILL in the middle of the batch
    await cluster.wait_for(lambda: len(cluster.journal()) >= 40, 30, "a fifth of the batch ran")
    victim.kill()
    killed_at = time.monotonic()
    # Then the run still succeeds (the hang guard: the heartbeat timeout and some)
    async with asyncio.timeout(HEARTBEAT_TIMEOUT + 15):
        result = await dispatcher.wait(run_id)
    recovered_in = time.monotonic() - killed_at
    print(f"MEASURED kill -9 mid-batch: run finished {recovered_in:.2f}s after the kill")
    assert result.status == "succeeded"
    assert result.progress == (200, 200)
    # And every job ran (those the victim held ran again: at least once), then once
    tags = Counter(cluster.tags())
    assert set(tags) == {f"m{i}" for i in range(200)} | {"then"}
    assert tags["then"] == 1


def _pipeline(cluster: Cluster, path: Path) -> Path:
    journal = cluster.journal_key
    path.write_text(
        f"""
version: 1
name: detached
pipeline:
  chain:
    - id: first
      job: tests.integration.jobs:Record
      with: {{journal: "{journal}", tag: first, hold: 1.0}}
    - id: fan
      batch:
        - job: tests.integration.jobs:Record
          each: [{", ".join(f'{{journal: "{journal}", tag: m{i}}}' for i in range(20))}]
      then: {{job: tests.integration.jobs:Record, with: {{journal: "{journal}", tag: then}}}}
    - id: last
      job: tests.integration.jobs:Record
      with: {{journal: "{journal}", tag: last}}
"""
    )
    return path


@every_broker
async def test_workers_finish_a_pipeline_whose_run_process_was_killed(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given a worker, and `arvel-flow run` following a pipeline on the broker
    await cluster.start_worker()
    pipeline = _pipeline(cluster, tmp_path / "pipeline.yaml")
    run, _ = cluster.spawn("run", [str(pipeline), "--output", "plain"])
    try:
        # When the run process is killed with SIGKILL while the first step runs
        runs_key = f"{cluster.prefix}runs"
        await cluster.wait_for(lambda: bool(cluster.redis.zcard(runs_key)), 20, "the run started")
        await asyncio.sleep(0.3)
        run.send_signal(signal.SIGKILL)
        assert run.wait(5) == -signal.SIGKILL
    finally:
        if run.poll() is None:
            run.kill()
    store = dispatcher.store
    (record,) = await store.list_runs(1)
    # Then the workers finish the pipeline on their own
    async with asyncio.timeout(30):
        result = await dispatcher.wait(record.run_id)
    assert result.status == "succeeded"
    assert Counter(cluster.tags()) == Counter(
        ["first", *(f"m{i}" for i in range(20)), "then", "last"]
    )
    # And the store shows it (what `arvel-flow status RUN_ID` reads; callbacks aside)
    run_record = await store.get_run(record.run_id)
    assert run_record is not None
    assert run_record.status == "succeeded"
    plan = plan_from_dict(await store.load_plan(record.run_id))
    steps = await store.get_steps(record.run_id)
    assert compute_result(record.run_id, run_record.status, plan, steps).progress == (22, 22)


@every_broker
async def test_a_chain_advances_in_the_workers_after_the_dispatcher_returned(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker, and a chain dispatched without waiting (what --detach does)
    await cluster.start_worker()
    steps = [callback(cluster, f"s{i}") for i in range(20)]
    run_id = (
        await Chain(*steps).finally_(callback(cluster, "finally")).dispatch(dispatcher, wait=False)
    )
    assert isinstance(run_id, str)
    # When the dispatcher is closed at once
    await dispatcher.close()
    # Then the workers run the steps in order, and `finally` once
    await cluster.wait_for(lambda: "finally" in cluster.tags(), 20, "the chain finished")
    assert cluster.tags() == [*(f"s{i}" for i in range(20)), "finally"]


@every_broker
async def test_a_worker_runs_at_most_its_concurrency_at_once(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker with two slots
    await cluster.start_worker("--concurrency", "2")
    # When a batch of eight 0.2 s jobs runs
    async with asyncio.timeout(20):
        result = await Batch([members(cluster, 8, hold=0.2)]).dispatch(dispatcher)
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    # Then no more than two ran at any moment
    spans = [(e["start"], e["end"]) for e in cluster.journal()]
    overlaps = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(overlaps) == 2


@every_broker
async def test_callbacks_fire_once_while_workers_are_killed_again_and_again(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given three workers, and a chain of two batches with callbacks; a job may meet
    # many dying workers here, more than the default delivery cap allows
    cluster.env["ARVEL_FLOW_MAX_DELIVERIES"] = "50"
    workers = [await cluster.start_worker("--concurrency", "4") for _ in range(3)]

    def stage(name: str) -> Batch:
        items = [{"tag": f"{name}{i}"} for i in range(80)]
        # Long enough (160 x 0.3 s over 12 slots: 4 s at best) that several kills land
        # even when a loaded machine starts replacement workers slowly.
        job = Record(journal=cluster.journal_key, tag="", hold=0.3)
        return Batch([FanOut(job, items)]).then(callback(cluster, f"{name}.then"))

    flow = Chain(stage("a"), stage("b")).finally_(callback(cluster, "finally"))
    run_id = await flow.dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)

    # When a worker is killed with SIGKILL every 0.4 s, and a fresh one started
    async def running() -> bool:
        run = await dispatcher.store.get_run(run_id)
        return run is not None and run.status == "running"

    kills = 0
    async with asyncio.timeout(60):
        while await running():
            await asyncio.sleep(0.4)
            victim = workers.pop(0)
            victim.kill()
            kills += 1
            workers.append(await cluster.start_worker("--concurrency", "4"))
        result = await dispatcher.wait(run_id)
    print(f"MEASURED chaos: {kills} workers killed during the run")
    # Then the run succeeded, every job ran, and every callback fired exactly once
    failures = [f"{f.step}: {f.message}" for f in await dispatcher.store.list_failed()]
    assert result.status == "succeeded", failures
    tags = Counter(cluster.tags())
    assert set(tags) == {f"{s}{i}" for s in "ab" for i in range(80)} | {
        "a.then",
        "b.then",
        "finally",
    }
    assert [tags["a.then"], tags["b.then"], tags["finally"]] == [1, 1, 1]
    assert kills >= 2


async def test_a_worker_running_more_jobs_at_once_than_a_default_pool_holds(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker with 150 slots (redis-py's default pool fails past 100 in use)
    worker = await cluster.start_worker("--concurrency", "150")
    # When 600 short jobs run
    async with asyncio.timeout(30):
        result = await Batch([members(cluster, 600, hold=0.05)]).dispatch(dispatcher)
    # Then all succeed, and no store or broker call failed on the way
    assert not isinstance(result, str)
    assert result.status == "succeeded"
    assert len(cluster.tags()) == 600
    assert "left pending" not in worker.output()
