"""The ids every process derives alike for a run's trace, and the traceparent form."""

from __future__ import annotations

from arvel_flow.tracing.ids import (
    RUN_SPAN,
    format_traceparent,
    parse_traceparent,
    span_id_of,
    trace_id_of,
)


def test_ids_depend_on_the_run_and_the_step_only() -> None:
    assert trace_id_of("3f2a9c1d04be") == trace_id_of("3f2a9c1d04be")
    assert trace_id_of("3f2a9c1d04be") != trace_id_of("3f2a9c1d04bf")
    ids = {span_id_of("3f2a9c1d04be", key) for key in (RUN_SPAN, "root", "root.1", "root.2")}
    assert len(ids) == 4
    assert 0 < trace_id_of("x") < 2**128
    assert 0 < span_id_of("x", "root") < 2**64


def test_a_traceparent_reads_back() -> None:
    text = format_traceparent(trace_id_of("r"), span_id_of("r", "root"))
    assert text.startswith("00-")
    assert text.endswith("-01")
    assert parse_traceparent(text) == (trace_id_of("r"), span_id_of("r", "root"), 1)


def test_what_is_not_a_traceparent_reads_as_none() -> None:
    for text in ("", "garbage", "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "01-zz"):
        assert parse_traceparent(text) is None
