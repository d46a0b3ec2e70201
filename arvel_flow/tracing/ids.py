"""The ids of a run's trace, derived from the run id, so that every process agrees.

A chain, a batch or the run itself starts in one process and ends in another: the
worker that finishes its last member. Rather than passing span ids around, each is a
hash of the run id and the step key: the process that ends a group emits its span with
the id every child was given as its parent, and with the start time the store recorded
when the group was claimed. The trace id is a hash of the run id too, so a resumed run
goes on in the same trace. Attempts of jobs have random span ids (they begin and end
in one process).
"""

from __future__ import annotations

import hashlib
import re

RUN_SPAN = ""
"""The step key that stands for the run's own span."""

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
SAMPLED = 0x01


def trace_id_of(run_id: str) -> int:
    """The 128-bit trace id of run ``run_id``."""
    return _hash(f"arvel-flow trace {run_id}", 16)


def span_id_of(run_id: str, step: str) -> int:
    """The 64-bit span id of step ``step`` (a chain or batch) of run ``run_id``.

    `RUN_SPAN` gives the run's span.
    """
    return _hash(f"arvel-flow span {run_id}\0{step}", 8)


def format_traceparent(trace_id: int, span_id: int, flags: int = SAMPLED) -> str:
    """The W3C ``traceparent`` of a span: ``00-TRACE-SPAN-FLAGS``."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def parse_traceparent(text: str) -> tuple[int, int, int] | None:
    """``(trace id, span id, flags)`` of a ``traceparent``; None when it is not one."""
    match = _TRACEPARENT.fullmatch(text)
    if match is None:
        return None
    trace_id, span_id, flags = (int(part, 16) for part in match.groups())
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, flags


def _hash(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")
    return value or 1  # zero is "no id" to OpenTelemetry
