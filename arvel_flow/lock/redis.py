"""Locks kept in Redis, shared by every worker that talks to the same server.

Expiry is Redis's own (``SET NX PX``), so it follows the server's clock and a dead
holder's lock disappears without anyone cleaning up. ``release`` and ``extend``
compare the owner and act in one Lua script, so they never touch a lock that expired
and was taken by someone else in between.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from arvel_flow.errors import BackendError, BackendFullError

if TYPE_CHECKING:
    # Only for annotations: importing redis costs ~100 ms, and a caller that builds
    # a RedisLock has imported it already.
    from redis.asyncio import Redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


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


def _text(value: bytes | str | None) -> str | None:
    """Clients may or may not decode responses; accept both."""
    if isinstance(value, bytes):
        return value.decode()
    return value


class RedisLock:
    """A `LockContract` in Redis: one string key per lock, holding its owner.

    Args:
        client: An asyncio Redis client; the lock does not close it.
        prefix: Put before every lock key, so locks do not collide with other data.
    """

    def __init__(self, client: Redis, prefix: str = "arvel-flow:lock:") -> None:
        self._client = client
        self._prefix = prefix
        self._backend = describe_client(client)
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``owner`` if nobody holds it (``SET NX PX``)."""
        with redis_errors(self._backend):
            taken = await self._client.set(self._key(key), owner, nx=True, px=ttl_to_ms(ttl))
        return bool(taken)

    async def release(self, key: str, owner: str) -> bool:
        """Delete ``key`` if ``owner`` holds it, in one script."""
        with redis_errors(self._backend):
            deleted = await self._release(keys=[self._key(key)], args=[owner])
        return bool(deleted)

    async def extend(self, key: str, owner: str, ttl: float) -> bool:
        """Reset the expiry of ``key`` if ``owner`` holds it, in one script."""
        with redis_errors(self._backend):
            extended = await self._extend(keys=[self._key(key)], args=[owner, ttl_to_ms(ttl)])
        return bool(extended)

    async def owner(self, key: str) -> str | None:
        """Who holds ``key`` now, or None."""
        with redis_errors(self._backend):
            value = await self._client.get(self._key(key))
        return _text(value)
