"""The wire format and the refusal rules, without a broker (pure functions)."""

from __future__ import annotations

import json

import pytest

from arvel_flow.brokers.redis.keys import StreamKeys
from arvel_flow.cli.worker import format_event
from arvel_flow.errors import UnreadableMessageError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.events import Event
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.wire import TASK_NAME, decode_message, encode_message
from arvel_flow.worker.refusals import compute_refusal


def envelope(target: str = "myapp.jobs:Import", **settings: object) -> Envelope:
    ref = JobRef(target, {"path": "rows.csv"}, JobSettings.from_values(dict(settings)))
    return Envelope(ref, "e1", run_id="r1", step="import", attempts=2)


def test_an_encoded_envelope_is_a_taskiq_message_that_decodes_to_the_same_envelope() -> None:
    # Given an envelope
    sent = envelope(max_retries=5)
    # When it is encoded for a stream and read back
    data = encode_message(sent, "arvel-flow:queue:default")
    message = json.loads(data)
    received = decode_message(data)
    # Then it is Taskiq's message for our task, carrying the very envelope
    assert message["task_name"] == TASK_NAME
    assert message["labels"] == {"queue_name": "arvel-flow:queue:default"}
    assert received == sent


def test_the_trace_context_travels_and_an_envelope_without_it_still_reads() -> None:
    # Given an envelope with a traceparent, and the same as an older sender wrote it
    traced = envelope().next(trace="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
    old = json.loads(envelope().to_json())
    # When both are encoded and read back
    received = decode_message(encode_message(traced, "default"))
    payload = json.dumps({"task_name": TASK_NAME, "args": [json.dumps(old)], "kwargs": {}})
    # Then the trace context is kept, and the old one reads with none
    assert received.trace == traced.trace
    assert "trace" not in old
    assert decode_message(payload).trace is None


def test_a_trace_context_of_the_wrong_type_is_refused() -> None:
    data = json.loads(envelope().to_json())
    data["trace"] = 42
    message = json.dumps({"task_name": TASK_NAME, "args": [json.dumps(data)], "kwargs": {}})
    with pytest.raises(UnreadableMessageError, match="trace has the wrong type"):
        decode_message(message)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "no 'data' field"),
        (b"{nope", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1]", "not a Taskiq message"),
        (json.dumps({"task_name": "other", "args": []}).encode(), "task 'other' is not"),
        (json.dumps({"task_name": TASK_NAME, "args": [1]}).encode(), "not an envelope"),
        (json.dumps({"task_name": TASK_NAME, "args": ["{}"]}).encode(), "version 1"),
        (
            json.dumps({"task_name": TASK_NAME, "args": [json.dumps({"v": 1})]}).encode(),
            "malformed envelope",
        ),
    ],
)
def test_anything_else_is_unreadable_with_a_reason(data: bytes | None, reason: str) -> None:
    # When a message that is not an envelope is decoded
    with pytest.raises(UnreadableMessageError) as raised:
        decode_message(data)
    # Then the error says why, without echoing the message
    assert reason in raised.value.reason


def test_an_envelope_with_a_setting_of_the_wrong_type_is_unreadable() -> None:
    # Given an envelope whose max_retries is text
    data = json.loads(encode_message(envelope(), "s"))
    inner = json.loads(data["args"][0])
    inner["job"]["settings"]["max_retries"] = "three"
    data["args"] = [json.dumps(inner)]
    # When it is decoded, then it is refused before anything runs it
    with pytest.raises(UnreadableMessageError, match=r"settings\.max_retries"):
        decode_message(json.dumps(data).encode())


JOBS = "tests.unit.queue.allowlist_jobs"


@pytest.mark.parametrize(
    ("target", "settings", "refused"),
    [
        (f"{JOBS}:Import", {}, None),
        (f"{JOBS}.Import", {}, None),
        (f"{JOBS}x:Import", {}, f"{JOBS}x:Import"),
        ("os:system", {}, "os:system"),
        (f"{JOBS}:os.system", {}, f"{JOBS}:os.system"),
        (f"{JOBS}:Import", {"retry_on": ["ConnectionError"]}, None),
        (f"{JOBS}:Import", {"retry_on": ["evil.Error"]}, "evil.Error"),
        (f"{JOBS}:Import", {"retry_on": ["eval"]}, "eval"),
        (f"{JOBS}:Import", {"dont_retry_on": ["evil:Error"]}, "evil:Error"),
        (f"{JOBS}:Import", {"middleware": [MiddlewareRef("rate_limited", {})]}, None),
        (f"{JOBS}:Import", {"middleware": [MiddlewareRef("evil.Guard", {})]}, "evil.Guard"),
        (f"{JOBS}:Import", {"middleware": [MiddlewareRef("print", {})]}, "print"),
    ],
)
def test_every_dotted_path_in_an_envelope_must_be_allowed(
    target: str, settings: dict[str, object], refused: str | None
) -> None:
    # When an envelope is screened against the allowed modules
    error = compute_refusal(envelope(target, **settings), (JOBS,))
    # Then the first path the allowlist refuses is named (builtin middleware and
    # builtin exceptions pass)
    assert (error.path if error is not None else None) == refused


def test_stream_keys_sit_under_the_prefix() -> None:
    keys = StreamKeys("p:")
    assert keys.stream("mail") == "p:queue:mail"
    assert keys.delayed("mail") == "p:delayed:mail"
    assert keys.consumers("mail") == "p:consumers:mail"
    assert keys.queue_of("p:queue:mail") == "mail"


def test_a_worker_prints_an_event_as_one_plain_line() -> None:
    event = Event("job.failed", 0.0, "r1", "import", "myapp.jobs:Import", 3, {"error": "boom"})
    assert format_event(event) == "job.failed run r1 import (attempt 3): boom"
    assert format_event(Event("run.finished", 0.0, "r1", data={"status": "failed"})) == (
        "run.finished run r1: failed"
    )


def test_a_forged_path_cannot_print_a_line_of_its_own() -> None:
    # Given an event for a forged job whose path holds a newline and a fake status line
    forged = "myapp.jobs:X\nworker w1: ready\x1b[2J"
    event = Event("job.failed", 0.0, None, None, forged, 0, {"error": "refused"})
    # When the worker prints it, then it is one line, the control characters escaped
    line = format_event(event)
    assert line.splitlines() == [line]
    assert line == "job.failed myapp.jobs:X\\nworker w1: ready\\x1b[2J (attempt 0): refused"
