"""How many messages wait in each queue, and for how long: read from the Redis streams.

A stream says how many messages no worker took yet (the consumer group's lag) and the
id of the oldest of them holds its time. Messages waiting for a backoff or a release
(the delayed set) are not counted: they are not ready to run. Those taken and not
acknowledged yet are the group's pending entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.brokers.redis.keys import GROUP, StreamKeys


def read_queues(
    client: Redis,
    keys: StreamKeys,
    clock: Callable[[], float] = time.time,
    only: Sequence[str] = (),
) -> Iterator[QueueDepth]:
    """Each queue messages were sent to (or only those of ``only``), as a `QueueDepth`.

    The one reading of queue depth and lag on Redis: the queue metrics and ``top``
    share it.
    """
    names = sorted(_text(name) for name in client.smembers(keys.queues))
    for queue in names:
        if only and queue not in only:
            continue
        stream = keys.stream(queue)
        group = _group(client, stream)
        entries: Any = client.xrange(stream, min=f"({group.last}", count=1)
        age = 0.0
        if entries:
            millis = int(_text(entries[0][0]).split("-")[0])
            age = max(0.0, clock() - millis / 1000)
        yield QueueDepth(queue, group.waiting, age, taken=group.pending)


@dataclass(frozen=True, slots=True)
class _Group:
    """What the consumer group of a stream says (all zero before there is one)."""

    waiting: int
    last: str
    pending: int


def _group(client: Redis, stream: str) -> _Group:
    try:
        groups: Any = client.xinfo_groups(stream)
    except ResponseError:  # no stream yet
        return _Group(0, "0-0", 0)
    for group in groups:
        if _text(group["name"]) == GROUP:
            pending = int(group["pending"])
            lag = group.get("lag")
            if lag is None:  # Redis < 7 (or a lag it cannot tell): acked entries are
                # deleted, so the rest of the stream less the taken ones are waiting.
                lag = max(0, int(client.xlen(stream)) - pending)
            return _Group(int(lag), _text(group["last-delivered-id"]), pending)
    return _Group(int(client.xlen(stream)), "0-0", 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
