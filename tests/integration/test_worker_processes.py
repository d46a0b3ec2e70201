"""``arvel-flow worker --processes 2``: a supervisor and its children, on a real broker."""

from __future__ import annotations

import os
import re
import signal

import pytest

from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.e2e.harness import free_port, scrape
from tests.integration.conftest import (
    START_TIMEOUT,
    WORKER_LINE_PREFIX,
    Cluster,
    WorkerProcess,
    every_broker,
)
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def start_supervised(cluster: Cluster, *args: str) -> WorkerProcess:
    """``worker --processes 2 --concurrency 1 ARGS``, once both children are ready."""
    worker = await cluster.start_worker("--processes", "2", "--concurrency", "1", *args, wait=False)
    # (Two interpreters start at once: on a loaded 2-core machine, that takes a while.)
    await cluster.wait_for(lambda: len(child_pids(worker)) >= 2, 2 * START_TIMEOUT, "2 ready")
    return worker


def child_pids(worker: WorkerProcess) -> list[int]:
    """The pids of the children that said they are ready, in order (``worker H:PID:S: ready``)."""
    return [
        int(line.split()[1].split(":")[1])
        for line in worker.said()
        if line.startswith("worker ") and line.endswith(": ready")
    ]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@every_broker
async def test_jobs_spread_over_both_children(cluster: Cluster, dispatcher: TaskiqQueue) -> None:
    # Given a worker of two processes, one job at a time each
    worker = await start_supervised(cluster)
    children = child_pids(worker)
    assert worker.pid not in children
    # When ten jobs that take a moment are sent
    for n in range(10):
        await dispatcher.dispatch(Record(journal=cluster.journal_key, tag=f"j{n}", hold=0.2))
    await cluster.wait_for(lambda: len(cluster.tags()) == 10, 30, "all ran")
    # Then both children ran some of them, and the supervisor none
    assert {entry["pid"] for entry in cluster.journal()} == set(children)


async def test_sigterm_stops_every_child_after_its_running_job(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given both children running a job
    worker = await start_supervised(cluster)
    for tag in ("a", "b"):
        await dispatcher.dispatch(Record(journal=cluster.journal_key, tag=tag, hold=1.0))
    started = [f"{cluster.journal_key}:started:{tag}" for tag in ("a", "b")]
    await cluster.wait_for(lambda: cluster.redis.exists(*started) == 2, 15, "both started")
    # When the supervisor gets SIGTERM
    worker.terminate()
    # Then it exits 0 once both jobs finished, and so did the children
    assert worker.wait(15) == 0, worker.output()
    assert sorted(cluster.tags()) == ["a", "b"]
    assert not any(alive(pid) for pid in child_pids(worker))
    assert worker.output().count("stopping: finishing running jobs") == 2
    # And every line, the supervisor's own too, is in the children's (Celery's) form
    lines = worker.output().splitlines()
    assert [line for line in lines if not WORKER_LINE_PREFIX.match(line)] == []
    said = worker.said()
    assert said[0].startswith("worker supervisor ")
    assert re.fullmatch(r"worker supervisor \S+ stopped", said[-1])


async def test_a_killed_child_is_restarted_and_its_job_runs_again(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a child running a long job
    worker = await start_supervised(cluster)
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="long", hold=1.0))
    started = f"{cluster.journal_key}:started:long"
    await cluster.wait_for(lambda: bool(cluster.redis.exists(started)), 15, "started")
    stream = f"{cluster.prefix}queue:default"
    [pending] = cluster.redis.xpending_range(stream, "arvel-flow", "-", "+", 10)
    busy = int(pending["consumer"].decode().split(":")[1])
    # When that child is killed with SIGKILL
    os.kill(busy, signal.SIGKILL)
    # Then the supervisor says so and starts another child
    await cluster.wait_for(lambda: len(child_pids(worker)) == 3, 2 * START_TIMEOUT, "restarted")
    assert f"worker process {busy} was killed by SIGKILL" in worker.output()
    # And the job, never acknowledged, runs to its end in another child
    await cluster.wait_for(lambda: cluster.tags() == ["long"], 15, "the job ran again")
    assert cluster.journal()[0]["pid"] != busy


async def test_a_child_killed_during_a_job_no_longer_counts_it_as_running(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    pytest.importorskip("prometheus_client")
    # Given a worker of two processes serving metrics, one child running a long job
    port = free_port()
    worker = await start_supervised(cluster, "--metrics-port", str(port))
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="long", hold=1.0))
    started = f"{cluster.journal_key}:started:long"
    await cluster.wait_for(lambda: bool(cluster.redis.exists(started)), 15, "started")
    running = 'arvel_flow_jobs_running{queue="default"}'
    await cluster.wait_for(lambda: f"{running} 1.0" in scrape(port), 10, "one running")
    stream = f"{cluster.prefix}queue:default"
    [pending] = cluster.redis.xpending_range(stream, "arvel-flow", "-", "+", 10)
    busy = int(pending["consumer"].decode().split(":")[1])
    # When that child is killed with SIGKILL (it cannot say it ended), and the job runs again
    os.kill(busy, signal.SIGKILL)
    await cluster.wait_for(lambda: cluster.tags() == ["long"], 30, "the job ran again")
    # Then no job counts as running: the supervisor dropped the killed child's gauge
    await cluster.wait_for(lambda: f"{running} 0.0" in scrape(port), 10, "none running")
    worker.terminate()
    assert worker.wait(15) == 0, worker.output()


async def test_children_stop_when_their_supervisor_is_killed(cluster: Cluster) -> None:
    # Given a worker of two processes
    worker = await start_supervised(cluster)
    children = child_pids(worker)
    # When the supervisor is killed with SIGKILL (it can tell no one)
    worker.kill()
    # Then its children notice and exit by themselves
    await cluster.wait_for(lambda: not any(map(alive, children)), 10, "children exited")
    assert worker.output().count(" stopped") == 2


async def test_settings_no_worker_can_run_with_are_refused_before_any_child_starts(
    cluster: Cluster,
) -> None:
    # Given a store the workers cannot share
    # When a worker of two processes starts on it
    worker = await cluster.start_worker("--processes", "2", "--store", "memory", wait=False)
    # Then it refuses at once with exit 2 and one line, starting no child
    assert worker.wait(15) == 2, worker.output()
    assert "cannot see a memory store" in worker.output()
    assert "worker process" not in worker.output()
    assert "supervisor" not in worker.output()


async def test_a_worker_runs_a_process_per_cpu_by_default(cluster: Cluster) -> None:
    # Given no --processes and no ARVEL_FLOW_PROCESSES
    del cluster.env["ARVEL_FLOW_PROCESSES"]
    # When a worker starts
    worker = await cluster.start_worker("--concurrency", "3", wait=False)
    cpus = os.cpu_count() or 1
    if cpus < 2:
        pytest.skip("one CPU: the worker runs in the command's own process")
    await cluster.wait_for(lambda: "concurrency 3 each" in worker.output(), START_TIMEOUT, "up")
    # Then it runs a process per CPU, each with the concurrency given
    first = worker.output().splitlines()[0]
    assert first.endswith(f": {cpus} processes, concurrency 3 each"), first


async def test_a_worker_whose_broker_cannot_be_reached_exits_3_without_restarting(
    cluster: Cluster,
) -> None:
    # Given a broker and store where nothing listens
    url = "redis://127.0.0.1:1/0"
    # When a worker of two processes starts on it
    worker = await cluster.start_worker(
        "--processes", "2", wait=False, ARVEL_FLOW_URL=url, ARVEL_FLOW_STORE=url
    )
    # Then it exits 3 once its first process could not start, restarting none
    assert worker.wait(30) == 3, worker.output()
    assert "it could not start; stopping" in worker.output()
    assert "starting another" not in worker.output()


async def test_metrics_are_summed_over_the_children(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    pytest.importorskip("prometheus_client")
    # Given a worker of two processes serving metrics
    port = free_port()
    worker = await start_supervised(cluster, "--metrics-port", str(port))
    # When ten jobs that take a moment run, spread over both children
    for n in range(10):
        await dispatcher.dispatch(Record(journal=cluster.journal_key, tag=f"j{n}", hold=0.2))
    await cluster.wait_for(lambda: len(cluster.tags()) == 10, 30, "all ran")
    assert len({entry["pid"] for entry in cluster.journal()}) == 2
    directory = multiproc_dir(child_pids(worker)[0])
    assert present(directory)
    # Then the supervisor's /metrics counts all ten, whichever child ran them
    job = 'job="tests.integration.jobs:Record",queue="default"'
    await cluster.wait_for(
        lambda: f'arvel_flow_jobs_total{{{job},status="succeeded"}} 10.0' in scrape(port),
        10,
        "ten counted",
    )
    text = scrape(port)
    assert f"arvel_flow_job_duration_seconds_count{{{job}}} 10.0" in text
    assert 'arvel_flow_jobs_running{queue="default"} 0.0' in text
    assert 'arvel_flow_queue_depth{queue="default"} 0.0' in text  # read from the broker
    # And its private directory of figures is gone once it stopped
    worker.terminate()
    assert worker.wait(15) == 0, worker.output()
    assert not present(directory)


def multiproc_dir(pid: int) -> str:
    """The directory a child writes its figures to (its PROMETHEUS_MULTIPROC_DIR)."""
    with open(f"/proc/{pid}/environ", "rb") as environ:
        variables = dict(v.split(b"=", 1) for v in environ.read().split(b"\0") if b"=" in v)
    return variables[b"PROMETHEUS_MULTIPROC_DIR"].decode()


def present(directory: str) -> bool:
    """Whether ``directory`` exists (read outside the event loop's async code)."""
    return os.path.isdir(directory)
