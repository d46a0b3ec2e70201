"""`OtelTracer`: the spans of runs, chains, batches and attempts, through OpenTelemetry.

The tree of one run (one trace; `arvel_flow.tracing.ids` says how its ids are made)::

    run nightly-import                     (ended by the process that finishes the run)
    └── chain pipeline                     (the root step, when it is a chain)
        ├── job myapp.jobs:ImportRows      (attempt 1: retried, event job.retrying)
        ├── job myapp.jobs:ImportRows      (attempt 2)
        └── batch digests
            ├── job myapp.jobs:Digest      (each member's attempts)
            └── job myapp.jobs:NotifyDone  (the batch's then)

An attempt's span is current while its middleware and ``handle()`` run, so the job's
own spans (an instrumented HTTP client, a database driver) are its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
)

from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.plan import BatchNode, ChainNode, Plan
from arvel_flow.queue.runner import Failed, Outcome, Released, Retrying, Succeeded, exception_path
from arvel_flow.store.contracts import RunStatus, StepState
from arvel_flow.tracing.ids import (
    RUN_SPAN,
    SAMPLED,
    format_traceparent,
    parse_traceparent,
    span_id_of,
    trace_id_of,
)

logger = logging.getLogger(__name__)

_PRESET: ContextVar[tuple[int, int] | None] = ContextVar("arvel_flow_preset_ids", default=None)


class PresetIds(IdGenerator):
    """Random ids, except for a span whose ids were derived beforehand (`preset`)."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        """The preset span id, or a random one."""
        preset = _PRESET.get()
        return self._random.generate_span_id() if preset is None else preset[1]

    def generate_trace_id(self) -> int:
        """The preset trace id (asked for a span without a parent), or a random one."""
        preset = _PRESET.get()
        return self._random.generate_trace_id() if preset is None else preset[0]


@contextlib.contextmanager
def preset(trace_id: int, span_id: int) -> Iterator[None]:
    """Within: the span started next gets these ids (`PresetIds`)."""
    token = _PRESET.set((trace_id, span_id))
    try:
        yield
    finally:
        _PRESET.reset(token)


class OtelTracer:
    """The `arvel_flow.queue.spans.SpanHooks` of a process that traces.

    ``tracer`` must come from a provider whose id generator is `PresetIds`: the spans
    of groups and runs are given ids every process derives alike.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def attempt(
        self, envelope: Envelope, run: Callable[[Envelope], Awaitable[Outcome]]
    ) -> Outcome:
        """Run the attempt in its span, current while it runs; describe how it ended."""
        number = envelope.attempts + 1
        attributes: dict[str, Any] = {
            "arvel_flow.step": envelope.label,
            "arvel_flow.job": envelope.job.target,
            "arvel_flow.attempt": number,
            "arvel_flow.queue": envelope.job.settings.queue_name,
        }
        if envelope.run_id is not None:
            attributes["arvel_flow.run_id"] = envelope.run_id
        span = self._tracer.start_span(
            f"job {envelope.job.target}", _parent_of(envelope), attributes=attributes
        )
        # Current while the attempt runs (what start_as_current_span does, at less cost).
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            outcome = await run(envelope)
        except BaseException as error:
            # Not the job's failure (the runner turns those into outcomes): the worker
            # stopping, or its store failing. Said without the message.
            cancelled = isinstance(error, asyncio.CancelledError)
            span.set_attribute("arvel_flow.outcome", "cancelled" if cancelled else "error")
            span.set_attribute("error.type", exception_path(error))
            span.set_status(Status(StatusCode.ERROR))
            raise
        else:
            _describe(span, outcome, number)
            return outcome
        finally:
            otel_context.detach(token)
            span.end()

    def traceparent(self, run_id: str, plan: Plan | None, step: str) -> str:
        """The span of the step's chain or batch (of the run, without the plan)."""
        parent = None if plan is None else plan.parent(step)
        return _traceparent_of(run_id, RUN_SPAN if parent is None else parent[0].key)

    def run_started(self, run_id: str, name: str) -> None:
        """Inside a span of the caller's (a request's, say): a span there, linked to the run.

        The run is the root of a trace of its own (its ids depend on the run id only),
        so a caller's trace shows where it started the run and leads to it.
        """
        if not trace.get_current_span().get_span_context().is_valid:
            return
        run = SpanContext(
            trace_id_of(run_id),
            span_id_of(run_id, RUN_SPAN),
            is_remote=True,
            trace_flags=TraceFlags(SAMPLED),
        )
        attributes = {"arvel_flow.run_id": run_id, "arvel_flow.pipeline": name}
        self._tracer.start_span(f"start run {name}", attributes=attributes, links=[Link(run)]).end()

    def group_finished(
        self,
        run_id: str,
        group: ChainNode | BatchNode,
        state: StepState,
        *,
        parent: str | None,
        started_at: float | None,
        ended_at: float,
    ) -> None:
        """Emit the chain's or batch's span, begun when the store says it was claimed.

        A span that cannot be made is logged, never raised: the run goes on.
        """
        try:
            self._emit_group(
                run_id, group, state, parent=parent, started_at=started_at, ended_at=ended_at
            )
        except Exception:
            logger.exception("traces: no span for %s of run %s", group.key, run_id)

    def _emit_group(
        self,
        run_id: str,
        group: ChainNode | BatchNode,
        state: StepState,
        *,
        parent: str | None,
        started_at: float | None,
        ended_at: float,
    ) -> None:
        kind = "chain" if isinstance(group, ChainNode) else "batch"
        label = group.name if isinstance(group, BatchNode) and group.name else group.key
        attributes: dict[str, Any] = {
            "arvel_flow.run_id": run_id,
            "arvel_flow.step": group.key,
            "arvel_flow.outcome": state,
        }
        if isinstance(group, BatchNode):
            attributes["arvel_flow.batch.total"] = group.total
        trace_id = trace_id_of(run_id)
        context = _remote(trace_id, span_id_of(run_id, RUN_SPAN if parent is None else parent))
        begun = ended_at if started_at is None else started_at
        with preset(trace_id, span_id_of(run_id, group.key)):
            span = self._tracer.start_span(
                f"{kind} {label}", context, attributes=attributes, start_time=_ns(begun)
            )
        if state == "failed":
            span.set_status(Status(StatusCode.ERROR, f"the {kind} failed"))
        span.end(_ns(ended_at))

    def run_finished(
        self, run_id: str, name: str, status: RunStatus, *, started_at: float, ended_at: float
    ) -> None:
        """Emit the run's span, the root of its trace, begun when the run was created.

        A span that cannot be made is logged, never raised: the run has ended anyway.
        """
        try:
            self._emit_run(run_id, name, status, started_at=started_at, ended_at=ended_at)
        except Exception:
            logger.exception("traces: no span for run %s", run_id)

    def _emit_run(
        self, run_id: str, name: str, status: RunStatus, *, started_at: float, ended_at: float
    ) -> None:
        attributes = {
            "arvel_flow.run_id": run_id,
            "arvel_flow.pipeline": name,
            "arvel_flow.outcome": status,
        }
        with preset(trace_id_of(run_id), span_id_of(run_id, RUN_SPAN)):
            span = self._tracer.start_span(
                f"run {name}", Context(), attributes=attributes, start_time=_ns(started_at)
            )
        if status == "failed":
            span.set_status(Status(StatusCode.ERROR, "the run failed"))
        span.end(_ns(ended_at))


def _parent_of(envelope: Envelope) -> Context | None:
    """The context an attempt's span is begun in.

    The ``traceparent`` the envelope carries; without one (an older message, or sent by
    a process that did not trace), the run's span; outside a run, the current context.
    """
    if envelope.trace is not None:
        context = _context_of(envelope.trace)
        if context is not None:
            return context
    if envelope.run_id is not None:
        return _context_of(_traceparent_of(envelope.run_id, RUN_SPAN))
    return None


# The members of a batch share their parent: its id and context are made once.
@functools.lru_cache(maxsize=1024)
def _traceparent_of(run_id: str, group: str) -> str:
    return format_traceparent(trace_id_of(run_id), span_id_of(run_id, group))


@functools.lru_cache(maxsize=1024)
def _context_of(traceparent: str) -> Context | None:
    parsed = parse_traceparent(traceparent)
    return None if parsed is None else _remote(*parsed)


def _remote(trace_id: int, span_id: int, flags: int = SAMPLED) -> Context:
    parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def _describe(span: Span, outcome: Outcome, number: int) -> None:
    """How the attempt ended, as attributes, status and events (messages are scrubbed)."""
    if isinstance(outcome, Succeeded):
        span.set_attribute("arvel_flow.outcome", "succeeded")
    elif isinstance(outcome, Retrying):
        span.set_attribute("arvel_flow.outcome", "retrying")
        span.set_attribute("error.type", exception_path(outcome.error))
        span.set_status(Status(StatusCode.ERROR, outcome.message))
        delay = max(0.0, outcome.envelope.available_at - time.time())
        max_attempts = outcome.envelope.job.settings.max_retries + 1
        span.add_event(
            "job.retrying",
            {
                "arvel_flow.delay": round(delay, 3),
                "arvel_flow.next_attempt": number + 1,
                "arvel_flow.max_attempts": max_attempts,
            },
        )
    elif isinstance(outcome, Released):
        span.set_attribute("arvel_flow.outcome", "released")
        delay = max(0.0, outcome.envelope.available_at - time.time())
        span.add_event(
            "job.released",
            {"arvel_flow.delay": round(delay, 3), "arvel_flow.reason": _release_kind(outcome)},
        )
    elif isinstance(outcome, Failed):
        span.set_attribute("arvel_flow.outcome", "failed")
        span.set_attribute("arvel_flow.failure_reason", outcome.reason)
        span.set_attribute("error.type", exception_path(outcome.error))
        span.set_status(Status(StatusCode.ERROR, outcome.message))


def _release_kind(outcome: Released) -> str:
    """Why the job was put back, without the key (a key may be built from parameters)."""
    if outcome.reason.startswith("rate limit "):
        return "rate limited"
    if outcome.reason.startswith("overlapping "):
        return "lock busy"
    return "middleware"


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
