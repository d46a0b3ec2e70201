"""One trace per run: the span tree of chains, batches, callbacks and attempts."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.result import BatchResult
from arvel_flow.tracing.ids import span_id_of, trace_id_of
from tests.unit.tracing.conftest import Traced
from tests.unit.tracing.jobs import Held, Work

pytestmark = pytest.mark.timeout(20)

JOB = "job tests.unit.tracing.jobs:Work"


async def test_a_chain_of_a_job_and_a_batch_is_one_trace_with_the_right_parents(
    traced: Traced,
) -> None:
    # Given a chain: a job that fails once, then a batch of two with a then callback
    flow = Chain(
        Work(name="first", fail_times=1),
        Batch([Work(name="a"), Work(name="b")], name="fan").then(Work(name="then")),
    )
    # When it runs
    result = await flow.dispatch(SyncQueue())
    assert isinstance(result, BatchResult)
    assert result.status == "succeeded"
    # Then every span is in the run's trace
    spans = traced.spans()
    run = [s for s in spans if s.name.startswith("run ")]
    assert len(run) == 1
    trace_ids = {span.context.trace_id for span in spans if span.context is not None}
    assert trace_ids == {trace_id_of(result.run_id)}
    # And the tree is attempt -> batch -> chain -> run, the then under its batch
    assert traced.parent_name(run[0]) is None
    (chain,) = [s for s in spans if s.name.startswith("chain ")]
    assert traced.parent_name(chain) == run[0].name
    (batch,) = traced.named("batch fan")
    assert traced.parent_name(batch) == chain.name
    attempts = traced.named(JOB)
    parents = [traced.parent_name(span) for span in attempts]
    assert sorted(parents, key=str) == sorted(["batch fan"] * 3 + [chain.name] * 2, key=str)
    # And the first job's two attempts: the first retried (an event), the second succeeded
    first = sorted(
        (s for s in attempts if traced.parent_name(s) == chain.name),
        key=lambda s: s.attributes["arvel_flow.attempt"],
    )
    assert [s.attributes["arvel_flow.outcome"] for s in first] == ["retrying", "succeeded"]
    assert [s.attributes["arvel_flow.attempt"] for s in first] == [1, 2]
    assert [e.name for e in first[0].events] == ["job.retrying"]
    assert first[0].status.status_code is StatusCode.ERROR
    assert first[0].attributes["error.type"] == "RuntimeError"
    assert first[0].attributes["arvel_flow.run_id"] == result.run_id
    # And the span ids of groups are the derived ones, which any process computes alike
    assert batch.context.span_id == span_id_of(result.run_id, batch.attributes["arvel_flow.step"])


async def test_a_jobs_own_spans_nest_under_its_attempt(traced: Traced) -> None:
    # Given a job that opens a span of its own through the global tracer
    # When it runs
    await Chain(Work(name="solo")).dispatch(SyncQueue())
    # Then that span is a child of the attempt's span
    (inner,) = traced.named("inner solo")
    assert traced.parent_name(inner) == JOB


async def test_a_release_is_an_event_and_no_parameter_or_key_shows(traced: Traced) -> None:
    # Given a job put back once by its middleware, whose rate-limit key holds a parameter
    # When it runs
    await Chain(Held(name="held", token="hunter2")).dispatch(SyncQueue())
    # Then its first attempt says it was released, why in general terms only
    released, done = sorted(
        traced.named("job tests.unit.tracing.jobs:Held"),
        key=lambda s: s.start_time or 0,
    )
    assert released.attributes["arvel_flow.outcome"] == "released"
    (event,) = released.events
    assert event.name == "job.released"
    assert event.attributes["arvel_flow.reason"] == "rate limited"
    assert done.attributes["arvel_flow.outcome"] == "succeeded"
    # And no span holds the parameter's value
    assert all("hunter2" not in span.to_json() for span in traced.spans())


async def test_a_failed_run_marks_its_spans_failed_with_the_scrubbed_error(
    traced: Traced,
) -> None:
    # Given a job that fails every attempt, its error message holding a secret parameter
    flow = Chain(Work(name="doomed", fail_times=5, max_retries=0, token="hunter2"))
    # When it runs
    result = await flow.dispatch(SyncQueue())
    assert isinstance(result, BatchResult)
    assert result.status == "failed"
    # Then the attempt failed for good, with its error type and message
    (attempt,) = traced.named(JOB)
    assert attempt.attributes["arvel_flow.outcome"] == "failed"
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.status.description == "RuntimeError: doomed fails on attempt 1 (token ***)"
    # (the job's own span records its exception as it likes: that one is the job's)
    ours = [span for span in traced.spans() if not span.name.startswith("inner ")]
    assert all("hunter2" not in span.to_json() for span in ours)
    # And the chain and the run are marked failed too
    chain_and_run = [s for s in traced.spans() if s.name.split()[0] in ("chain", "run")]
    assert {s.attributes["arvel_flow.outcome"] for s in chain_and_run} == {"failed"}
    assert {s.status.status_code for s in chain_and_run} == {StatusCode.ERROR}


async def test_a_run_started_inside_a_callers_span_is_linked_from_it(traced: Traced) -> None:
    # Given a caller's own span (a web request, say)
    caller = traced.tracer.provider.get_tracer("app")
    with caller.start_as_current_span("POST /imports"):
        # When it starts a run there
        result = await Chain(Work(name="solo")).dispatch(SyncQueue())
    assert isinstance(result, BatchResult)
    # Then a span under the caller's links to the run's span, the root of its own trace
    (start,) = [span for span in traced.spans() if span.name.startswith("start run ")]
    assert traced.parent_name(start) == "POST /imports"
    (link,) = start.links
    (run,) = [span for span in traced.spans() if span.name.startswith("run ")]
    assert link.context.span_id == run.context.span_id
    assert link.context.trace_id == run.context.trace_id
    assert run.parent is None


async def test_a_run_started_outside_any_span_has_no_start_span(traced: Traced) -> None:
    await Chain(Work(name="solo")).dispatch(SyncQueue())
    assert not [span for span in traced.spans() if span.name.startswith("start run ")]
