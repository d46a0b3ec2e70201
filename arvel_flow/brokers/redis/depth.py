"""How many messages wait in each queue, and for how long: read from the Redis streams.

A stream says how many messages no worker took yet (the consumer group's lag) and the
id of the oldest of them holds its time. Messages waiting for a backoff or a release
(the delayed set) are not counted: they are not ready to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from redis import Redis
from redis.exceptions import ResponseError

from arvel_flow.brokers.redis.keys import GROUP, StreamKeys


def read_queues(
    client: Redis, keys: StreamKeys, clock: Callable[[], float] = time.time
) -> Iterator[tuple[str, float, float]]:
    """Each queue's name, ready messages and the age in seconds of the oldest of them.

    The one reading of queue depth and lag: the queue metrics and ``top`` share it.
    """
    names = sorted(_text(name) for name in client.smembers(keys.queues))
    for queue in names:
        stream = keys.stream(queue)
        waiting, after = _group(client, stream)
        entries: Any = client.xrange(stream, min=f"({after}", count=1)
        age = 0.0
        if entries:
            millis = int(_text(entries[0][0]).split("-")[0])
            age = max(0.0, clock() - millis / 1000)
        yield queue, float(waiting), age


def _group(client: Redis, stream: str) -> tuple[int, str]:
    """How many entries the group has yet to deliver, and the last it delivered."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except ResponseError:  # no stream yet
        return 0, "0-0"
    for group in groups:
        if _text(group["name"]) == GROUP:
            last = _text(group["last-delivered-id"])
            lag = group.get("lag")
            if lag is None:  # Redis < 7 (or a lag it cannot tell): acked entries are
                # deleted, so the rest of the stream less the taken ones are waiting.
                lag = max(0, int(client.xlen(stream)) - int(group["pending"]))
            return int(lag), last
    return int(client.xlen(stream)), "0-0"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
