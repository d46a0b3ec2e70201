"""Events from the runner and the orchestration (SPEC §5 names and fields)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.result import BatchResult
from arvel_flow.store import MemoryStore
from tests.unit.queue.flow_harness import T0, Events, FakeClock, Harness
from tests.unit.queue.flow_jobs import JOBS, Journal, Secretive, Step

pytestmark = pytest.mark.timeout(10)

JOB_EVENTS = ("job.dispatched", "job.started", "job.retrying", "job.succeeded")


async def test_job_events_carry_time_run_step_job_and_attempt(
    memory_harness: Harness, events: Events
) -> None:
    # Given a chain whose second step fails once and is retried after 5 s
    chain = Chain(Step(name="a"), Step(name="b", fail_times=1, max_retries=1, backoff=5))
    # When it runs
    result = await chain.dispatch(memory_harness.queue())
    assert isinstance(result, BatchResult)
    # Then each job event of that step names the run, the step, the job and the attempt, at its time
    seen = [
        (e.event, e.time, e.run_id, e.step, e.job, e.attempt) for e in events if e.step == "root.1"
    ]
    run = result.run_id
    assert [s for s in seen if s[0] in JOB_EVENTS] == [
        ("job.dispatched", T0, run, "root.1", f"{JOBS}:Step", 1),
        ("job.started", T0, run, "root.1", f"{JOBS}:Step", 1),
        ("job.retrying", T0, run, "root.1", f"{JOBS}:Step", 1),
        ("job.started", T0 + 5, run, "root.1", f"{JOBS}:Step", 2),
        ("job.succeeded", T0 + 5, run, "root.1", f"{JOBS}:Step", 2),
    ]


async def test_the_json_form_of_a_job_event_has_the_required_keys(
    memory_harness: Harness, events: Events
) -> None:
    # Given a job that ran in a chain
    await Chain(Step(name="a")).dispatch(memory_harness.queue())
    # When its events are written as JSON lines
    [started] = events.named("job.started")
    line = json.loads(json.dumps(started.to_dict()))
    # Then each has event, time, run_id, step, job and attempt
    assert {"event", "time", "run_id", "step", "job", "attempt"} <= set(line)
    assert (line["event"], line["step"], line["job"], line["attempt"]) == (
        "job.started",
        "root.0",
        f"{JOBS}:Step",
        1,
    )


async def test_a_run_announces_its_start_and_its_end_once(harness: Harness, events: Events) -> None:
    # Given a failing chain
    # When it runs
    result = await Chain(Step(name="a", fail_times=-1)).dispatch(harness.queue())
    assert isinstance(result, BatchResult)
    # Then run.started and run.finished came once each, for that run, with its status
    [started] = events.named("run.started")
    [finished] = events.named("run.finished")
    assert started.run_id == finished.run_id == result.run_id
    assert finished.data["status"] == "failed"
    assert events.index(started) == 0
    assert events.index(finished) == len(events) - 1


async def test_a_finished_run_is_read_once_for_its_event_and_its_result(
    memory_harness: Harness, events: Events
) -> None:
    # Given a store that counts how often a whole run's steps are read
    class CountingStore(MemoryStore):
        whole_reads = 0

        async def get_steps(self, run_id: str, steps: Any = None) -> Any:
            CountingStore.whole_reads += steps is None
            return await super().get_steps(run_id, steps)

    # When a batch of three runs to its end and is waited for, with a listener
    result = await Batch([Step(name=n) for n in "abc"]).dispatch(
        memory_harness.queue(store=CountingStore())
    )
    # Then the steps were read once: for run.finished's counts and the result alike
    assert isinstance(result, BatchResult)
    [finished] = events.named("run.finished")
    assert finished.data["counts"] == result.counts
    assert result.succeeded == ("root.0", "root.1", "root.2")
    assert CountingStore.whole_reads == 1


async def test_chain_step_events_follow_the_chain(memory_harness: Harness, events: Events) -> None:
    # Given a chain of a job, a batch and a job
    chain = Chain(Step(name="a"), Batch([Step(name="b")]), Step(name="c"))
    # When it runs
    await chain.dispatch(memory_harness.queue())
    # Then each step was announced as it started, in order
    steps = [(e.step, e.data["chain"]) for e in events.named("chain.step")]
    assert steps == [("root.0", "root"), ("root.1", "root"), ("root.2", "root")]


async def test_job_failed_event_points_at_the_failed_job_record(
    memory_harness: Harness, events: Events
) -> None:
    # Given a job that fails for good
    queue = memory_harness.queue()
    # When it runs
    await memory_harness.run(Step(name="x", fail_times=-1), queue=queue)
    # Then job.failed says why and names the record in the failed-jobs store
    [failed] = events.named("job.failed")
    assert failed.data["error"] == "RuntimeError: x failed on attempt 1"
    record = await queue.store.get_failed(failed.data["failed_id"])
    assert record is not None
    assert record.job == failed.job


async def test_a_lone_job_reports_its_class_path_as_step(
    memory_harness: Harness, events: Events
) -> None:
    # Given a job dispatched outside any flow / When it runs
    await memory_harness.run(Step(name="x"))
    # Then its events have no run, and the class path as step
    [succeeded] = events.named("job.succeeded")
    assert (succeeded.run_id, succeeded.step, succeeded.job) == (
        None,
        f"{JOBS}:Step",
        f"{JOBS}:Step",
    )


async def test_events_never_carry_secrets(harness: Harness, events: Events) -> None:
    # Given a job with secret fields that fails in a batch
    # When it runs
    await Batch([Secretive(user="ann", max_retries=1, backoff=1)]).dispatch(harness.queue())
    # Then no event, in its JSON form, holds any of the secret values
    text = "\n".join(json.dumps(e.to_dict(), default=str) for e in events)
    assert "cannot import for ann" in text
    for secret in ("hunter2", "ak-123", "tok-456", "cs-789", "postgres://u:pw@db/app"):
        assert secret not in text


async def test_every_listener_gets_every_event(clock: FakeClock, journal: Journal) -> None:
    # Given a queue with two listeners, the first of which raises on every event
    received: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    queue = SyncQueue(store=MemoryStore(), clock=clock, events=EventBus(broken, received.append))
    # When a job runs
    await queue.dispatch(Step(name="x"))
    # Then the job ran and the second listener got all the events
    assert journal.entries == ["x"]
    assert [e.event for e in received] == ["job.dispatched", "job.started", "job.succeeded"]


def test_an_event_read_back_from_its_json_form_is_the_same_event() -> None:
    # Given a job event and a run event, as another process writes them (SPEC §5 JSON)
    job = Event("job.retrying", 12.5, "r1", "s1", "m:Job", 2, {"delay": 3.0, "error": "x"})
    run = Event("run.finished", 13.0, "r1", data={"status": "succeeded", "counts": {"a": 1}})
    for event in (job, run):
        text = json.dumps(event.to_dict())
        # When it is read back
        # Then it is the same event
        assert Event.from_dict(json.loads(text)) == event


async def test_a_run_started_by_a_trigger_says_so(harness: Harness, events: Events) -> None:
    # Given a plan a schedule trigger starts for its tick at T0
    plan = dataclasses.replace(
        Chain(Step(name="a")).to_plan("nightly"), trigger="nightly/berlin", scheduled_at=T0
    )
    queue = harness.queue()
    # When it runs
    run_id = await queue.start(plan)
    await queue.wait(run_id)
    # Then run.started names the trigger and the tick, and so does the run's record
    [started] = events.named("run.started")
    assert (started.data["trigger"], started.data["scheduled_at"]) == ("nightly/berlin", T0)
    record = await queue.store.get_run(run_id)
    assert record is not None
    assert (record.trigger, record.scheduled_at) == ("nightly/berlin", T0)
