"""How envelopes travel through Redis: the keys, and the Taskiq message around each one.

Messages are Taskiq's own: a stream entry ``{data: <TaskiqMessage JSON>}`` whose task
is ``arvel_flow.run_envelope`` and whose only argument is the envelope's JSON, exactly
what ``RedisStreamBroker.kick`` writes. So a job can be sent by bare Taskiq too::

    broker = RedisStreamBroker(url, queue_name="arvel-flow:queue:default")
    await broker.register_task(f, task_name="arvel_flow.run_envelope").kiq(envelope.to_json())

Keys, under the prefix (``arvel-flow:`` by default, the store's)::

    queue:{name}       stream  messages ready to run; consumer group ``arvel-flow``
    delayed:{name}     zset    messages by the time they become ready (backoffs, releases)
    consumers:{name}   zset    worker (consumer) names by their last heartbeat, in ms
    queues             set     every queue name a message was sent to

Reading a message never imports anything: `decode_message` only parses JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from arvel_flow.errors import UnreadableMessageError
from arvel_flow.queue.drivers.taskiq import TASK_NAME
from arvel_flow.queue.envelope import Envelope, new_id

__all__ = [
    "GROUP",
    "TASK_NAME",
    "StreamKeys",
    "decode_message",
    "encode_message",
]

GROUP = "arvel-flow"
"""The consumer group every worker reads through."""
_STR_LABEL = 3  # taskiq.labels.LabelType.STR


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The Redis keys of the broker side, under ``prefix``."""

    prefix: str = "arvel-flow:"

    def stream(self, queue: str) -> str:
        """The stream of ready messages of ``queue``."""
        return f"{self.prefix}queue:{queue}"

    def delayed(self, queue: str) -> str:
        """The sorted set of messages of ``queue`` waiting for their time."""
        return f"{self.prefix}delayed:{queue}"

    def consumers(self, queue: str) -> str:
        """The sorted set of the heartbeats of the workers reading ``queue``."""
        return f"{self.prefix}consumers:{queue}"

    @property
    def queues(self) -> str:
        """The set of queue names messages were sent to."""
        return f"{self.prefix}queues"

    def queue_of(self, stream: str) -> str:
        """The queue name of a stream key."""
        return stream.removeprefix(f"{self.prefix}queue:")


def encode_message(envelope: Envelope, stream: str) -> bytes:
    """The Taskiq message that carries ``envelope`` to ``stream``."""
    return json.dumps(
        {
            "task_id": new_id(),
            "task_name": TASK_NAME,
            "labels": {"queue_name": stream},
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
