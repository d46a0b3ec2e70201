"""The Taskiq message around each envelope, on every broker.

A message is Taskiq's own JSON: task ``arvel_flow.run_envelope`` with the envelope's
JSON as its only argument, exactly what ``kiq`` on a Taskiq task of that name sends.
So a job can be sent by bare Taskiq too, and a worker reads what Taskiq sent.

Reading a message never imports anything: `decode_message` only parses JSON.
"""

from __future__ import annotations

import json
from typing import Any

from arvel_flow.errors import UnreadableMessageError
from arvel_flow.queue.envelope import Envelope, new_id

__all__ = ["TASK_NAME", "decode_message", "encode_message"]

TASK_NAME = "arvel_flow.run_envelope"
"""The Taskiq task every message names: what a worker runs, on every broker."""

AVAILABLE_AT = "arvel-available-at"
"""The message header (NATS, RabbitMQ) with the envelope's ``available_at``, so that a
worker can tell a message that came early without decoding it."""
_STR_LABEL = 3  # taskiq.labels.LabelType.STR


def encode_message(envelope: Envelope, queue_name: str, task_id: str | None = None) -> bytes:
    """The Taskiq message that carries ``envelope``, labelled with ``queue_name``.

    ``task_id`` is Taskiq's id of the message (a fresh one by default).
    """
    return json.dumps(
        {
            "task_id": task_id or new_id(),
            "task_name": TASK_NAME,
            "labels": {"queue_name": queue_name},
            "labels_types": {"queue_name": _STR_LABEL},
            "args": [envelope.to_json()],
            "kwargs": {},
        },
        separators=(",", ":"),
    ).encode()


def decode_message(data: bytes | str | None) -> Envelope:
    """The envelope a message carries; raises `UnreadableMessageError` when there is none."""
    if data is None:
        raise UnreadableMessageError("the stream entry has no 'data' field")
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise UnreadableMessageError("not valid JSON") from None
    if not isinstance(message, dict):
        raise UnreadableMessageError("not a Taskiq message (a JSON object)")
    task_name = message.get("task_name")
    if task_name != TASK_NAME:
        raise UnreadableMessageError(f"task {_short(task_name)} is not {TASK_NAME}")
    payload = _payload(message)
    try:
        envelope = Envelope.from_json(payload)
    except ValueError as error:
        raise UnreadableMessageError(str(error)) from None
    _check_types(envelope)
    return envelope


def _payload(message: dict[str, Any]) -> str:
    args, kwargs = message.get("args"), message.get("kwargs")
    if isinstance(args, list) and len(args) == 1 and isinstance(args[0], str):
        return args[0]
    if isinstance(kwargs, dict) and isinstance(kwargs.get("payload"), str):
        return str(kwargs["payload"])
    raise UnreadableMessageError("its argument is not an envelope (one JSON string)")


def _check_types(envelope: Envelope) -> None:
    """Refuse envelopes whose fields have the wrong types, before anything uses them."""
    ref = envelope.job
    checks = (
        (isinstance(ref.target, str), "job.target"),
        (isinstance(ref.params, dict), "job.params"),
        (envelope.run_id is None or isinstance(envelope.run_id, str), "run_id"),
        (envelope.step is None or isinstance(envelope.step, str), "step"),
        (envelope.trace is None or isinstance(envelope.trace, str), "trace"),
        (isinstance(ref.settings.max_retries, int), "settings.max_retries"),
        (isinstance(ref.settings.queue_name, str), "settings.queue_name"),
        (all(isinstance(n, str) for n in ref.settings.retry_on), "settings.retry_on"),
        (all(isinstance(n, str) for n in ref.settings.dont_retry_on), "settings.dont_retry_on"),
        (all(isinstance(m.use, str) for m in ref.settings.middleware), "settings.middleware"),
    )
    for ok, name in checks:
        if not ok:
            raise UnreadableMessageError(f"malformed envelope: {name} has the wrong type")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
