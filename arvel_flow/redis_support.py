"""What the Redis lock, store and broker share: the server named for people (never its
password), "Redis cannot be reached" as `BackendError`, times to live in Redis's
milliseconds, and `Coalescer`, which sends the commands of many jobs in one round trip.

redis is imported only when an exception is matched or a client named: importing it
costs ~100 ms, and a caller that has a client has imported it already.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from arvel_flow.batching import TurnBatcher
from arvel_flow.errors import BackendError, BackendFullError

if TYPE_CHECKING:
    from redis.asyncio import Redis


def ttl_to_ms(ttl: float) -> int:
    """Convert a time to live in seconds to Redis milliseconds, never below 1.

    Rounds up so a lock never lives shorter than asked; Redis refuses ``PX 0``.
    """
    return max(1, math.ceil(ttl * 1000))


def describe_client(client: Redis) -> str:
    """Name the server a client talks to, for error messages (never the password)."""
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host = kwargs.get("host", "localhost")
    port = kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


def _connection_errors() -> tuple[type[Exception], ...]:
    # Evaluated only when an exception is being matched: by then redis is imported.
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


def _out_of_memory() -> type[Exception]:
    from redis.exceptions import OutOfMemoryError

    return OutOfMemoryError


OUT_OF_MEMORY = "used memory is over maxmemory"
"""Why a Redis at its ``maxmemory`` (with ``noeviction``) refuses a write."""


@contextmanager
def redis_errors(backend: str) -> Iterator[None]:
    """Turn "Redis cannot be reached" errors into `BackendError` naming ``backend``.

    A Redis out of memory (``maxmemory`` with ``noeviction``) refuses writes: that is
    `BackendFullError`, an outage like the others (see `arvel_flow.outage`).
    """
    try:
        yield
    except _connection_errors() as exc:
        raise BackendError(backend=backend, reason=str(exc) or type(exc).__name__) from exc
    except _out_of_memory():
        raise BackendFullError(backend, OUT_OF_MEMORY) from None


class Coalescer:
    """Sends the commands issued in one turn of the event loop as one pipeline.

    The store's scripts and locks go through one, so the jobs a worker runs at once
    share round trips (see `arvel_flow.batching`). No ``MULTI``: each command is as
    atomic as it was alone, and they run in the order issued.

    Args:
        client: The client whose pool the pipelines use; the coalescer does not close it.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._batcher: TurnBatcher[tuple[Any, ...], Any] = TurnBatcher(self._execute)

    async def call(self, *command: Any) -> Any:
        """``command``'s reply (its error raised), sent with the others of this turn."""
        return await self._batcher.submit(command)

    async def _execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies
