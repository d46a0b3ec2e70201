"""Locks kept in Redis, shared by every worker that talks to the same server.

Expiry is Redis's own (``SET NX PX``), so it follows the server's clock and a dead
holder's lock disappears without anyone cleaning up. ``release`` and ``extend``
compare the owner and act in one Lua script, so they never touch a lock that expired
and was taken by someone else in between.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arvel_flow.redis_support import Coalescer, describe_client, redis_errors, ttl_to_ms

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
        commands: Where taking and reading a lock go, to share round trips with other
            commands on ``client`` (the store's); one of its own by default.
    """

    def __init__(
        self, client: Redis, prefix: str = "arvel-flow:lock:", commands: Coalescer | None = None
    ) -> None:
        self._client = client
        self._commands = commands or Coalescer(client)
        self._prefix = prefix
        self._backend = describe_client(client)
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``owner`` if nobody holds it (``SET NX PX``)."""
        with redis_errors(self._backend):
            taken = await self._commands.call(
                "SET", self._key(key), owner, "NX", "PX", ttl_to_ms(ttl)
            )
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
            value = await self._commands.call("GET", self._key(key))
        return _text(value)
