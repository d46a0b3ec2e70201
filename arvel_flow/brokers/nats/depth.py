"""How many messages wait in each queue, and for how long: read from JetStream.

Each queue's durable consumer says how many of its messages it has not delivered yet
(``num_pending``: the depth) and how many it delivered that are not acknowledged
(``num_ack_pending``: running, or given back to wait out a delay). The oldest message
not delivered yet is the first of the queue's subject after the last one the consumer
delivered; its time in the stream gives the lag. A queue without a consumer yet (no
worker ever read it) counts every message of its subject.

A delayed message (a backoff, a release, ``later``) is published at once on NATS, so
it counts as waiting until a worker first receives it and gives it back until its
time; from then on it counts as taken.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.brokers.nats.transport import JetStreamNames


async def read_queues(
    js: JetStreamContext,
    names: JetStreamNames,
    only: Sequence[str] = (),
    clock: Callable[[], float] = time.time,
) -> list[QueueDepth]:
    """Each queue with a consumer or messages in the stream (or those of ``only``).

    Raises:
        nats.errors.Error: NATS did not answer (the caller turns it into `BackendError`).
    """
    try:
        consumers = {info.name: info for info in await js.consumers_info(names.stream)}
        stream = await js.stream_info(names.stream, subjects_filter=f"{names.stream}.queue.*")
    except NotFoundError:  # no stream yet: nothing was ever sent
        return [QueueDepth(queue, 0, 0.0, taken=0) for queue in sorted(only)]
    counts = stream.state.subjects or {}
    queues = set(only) or {
        *(_queue_of(info) for info in consumers.values()),
        *(_untoken(subject.rpartition(".")[2]) for subject in counts),
    }
    depths = []
    for queue in sorted(queues):
        subject = names.subject(queue)
        info = consumers.get(names.consumer(queue))
        if info is None:
            waiting, taken, after = int(counts.get(subject, 0)), 0, 0
        else:
            waiting, taken = int(info.num_pending or 0), int(info.num_ack_pending or 0)
            after = (info.delivered.stream_seq or 0) if info.delivered else 0
        lag = await _age_of_next(js, names.stream, subject, after, clock) if waiting else 0.0
        depths.append(QueueDepth(queue, waiting, lag, taken=taken))
    return depths


async def _age_of_next(
    js: JetStreamContext, stream: str, subject: str, after: int, clock: Callable[[], float]
) -> float:
    """Seconds since the first message of ``subject`` after sequence ``after`` was stored."""
    try:
        message = await js.get_msg(stream, seq=after + 1, subject=subject, next=True)
    except NotFoundError:  # taken or acknowledged meanwhile
        return 0.0
    if message.time is None:
        return 0.0
    return max(0.0, clock() - message.time.timestamp())


def _queue_of(info: ConsumerInfo) -> str:
    subject = info.config.filter_subject or info.name
    return _untoken(subject.rpartition(".")[2])


def _untoken(token: str) -> str:
    """The queue name a subject token or consumer name was made from (`_token` undone;
    exact for names in Latin-1, the characters it writes with two hex digits)."""
    return re.sub(r"%([0-9A-F]{2})", lambda match: chr(int(match.group(1), 16)), token)
