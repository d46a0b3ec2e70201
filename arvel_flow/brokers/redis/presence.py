"""Workers seen in Redis whatever their broker: heartbeats into the store's Redis.

A worker on the Redis broker beats into its consumer sets (`Heartbeat`), and that is how
``arvel-flow top`` lists workers and how ``arvel-flow run`` notices that no worker
consumes a queue. A worker on NATS or RabbitMQ keeps its jobs alive through its own
broker, but with a Redis store it beats into the same keys there too
(`PresenceConsumer`), so that both commands see it the same way; the run side reads
them through `StoreHeartbeats`. These beats only say who is alive: on NATS and
RabbitMQ a dead worker's messages go to others by the broker's own rules, never by them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from arvel_flow.brokers.redis.heartbeat import Heartbeat
from arvel_flow.brokers.redis.keys import StreamKeys
from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.redis_support import redis_errors
from arvel_flow.store.urls import is_redis_url, mask_url
from arvel_flow.worker.consumer import Consumer, Delivery, Host

if TYPE_CHECKING:
    from arvel_flow.settings import QueueSettings


async def read_last_heartbeats(
    client: Redis, keys: StreamKeys, queues: Sequence[str], backend: str
) -> dict[str, float | None]:
    """Seconds since the newest worker heartbeat of each of ``queues`` (None: never seen),
    measured on the Redis server's clock, as the beats are.

    Raises:
        BackendError: Redis could not be reached (named ``backend``).
    """
    with redis_errors(backend):
        async with client.pipeline(transaction=False) as pipe:
            pipe.time()
            for queue in queues:
                pipe.zrevrange(keys.consumers(queue), 0, 0, withscores=True)
            now, *newest = await pipe.execute()
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    return {
        queue: (now_ms - float(beats[0][1])) / 1000 if beats else None
        for queue, beats in zip(queues, newest, strict=True)
    }


SETTLED_FIELD = "settled:"
"""Before a queue's name in a worker's load hash: the messages of it the worker settled."""


class Settled:
    """The messages a worker settled (acknowledged), per queue, since it started.

    Its consumer counts each settle; its heartbeat thread reads the counts (`counts`
    copies them in one step, safe from that thread). ``top`` measures queue rates on
    the difference between two readings.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, queue: str) -> None:
        """Count one message of ``queue`` settled."""
        self._counts[queue] = self._counts.get(queue, 0) + 1

    def counts(self) -> dict[str, int]:
        """A copy of the counts, by queue."""
        return self._counts.copy()


def host_load(host: Host, settled: Settled) -> dict[str, int]:
    """The fields of ``host``'s load hash: its concurrency, the jobs it runs (those
    waiting for a slot not counted) and, per queue, the messages it settled."""
    concurrency = host.options.concurrency
    fields = {
        "concurrency": concurrency,
        "running": min(concurrency, max(0, concurrency - host.free_slots)),
    }
    fields.update({SETTLED_FIELD + queue: n for queue, n in settled.counts().items()})
    return fields


class StoreHeartbeats:
    """The workers' heartbeats in the store's Redis at ``url`` (`Watched`, for ``run``).

    Each reading has a connection of its own, closed after it: ``run`` reads every few
    seconds, and a transport has no say in when its follower ends.
    """

    def __init__(self, url: str, keys: StreamKeys) -> None:
        self.url = url
        self.keys = keys

    async def last_heartbeats(self, queues: Sequence[str]) -> dict[str, float | None]:
        """Seconds since the newest worker heartbeat of each queue (None: never seen)."""
        client = Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=5)
        try:
            return await read_last_heartbeats(client, self.keys, queues, mask_url(self.url))
        finally:
            await client.aclose()


def store_heartbeats(settings: QueueSettings) -> StoreHeartbeats | None:
    """The heartbeats in ``settings``' store, when it is a Redis (where workers beat)."""
    if not is_redis_url(settings.store):
        return None
    return StoreHeartbeats(settings.store, StreamKeys(settings.prefix))


def with_presence(consumer: Consumer, settings: QueueSettings) -> Consumer:
    """``consumer``, its worker beating into ``settings``' store when that is a Redis."""
    if not is_redis_url(settings.store):
        return consumer
    return PresenceConsumer(consumer, settings.store, StreamKeys(settings.prefix))


class PresenceConsumer:
    """``inner`` (a NATS or RabbitMQ consumer), its worker beating into the store's Redis.

    Beats start once ``inner`` is open and stop when the worker leaves, taking its entry
    with them; a beating thread that dies stops the worker, as on the Redis broker.

    Args:
        inner: The consumer that reads the broker.
        url: The store's Redis.
        keys: The keys under the deployment's prefix.
    """

    def __init__(self, inner: Consumer, url: str, keys: StreamKeys) -> None:
        self.inner = inner
        self.url = url
        self.keys = keys
        self._host: Host | None = None
        self._heartbeat: Heartbeat | None = None
        self.settled = Settled()

    @property
    def where(self) -> str:
        """The broker, for people (no password)."""
        return self.inner.where

    @property
    def heartbeat(self) -> Heartbeat:
        """The thread that says the worker is alive."""
        assert self._heartbeat is not None, "bind the consumer to a worker first"
        return self._heartbeat

    def bind(self, host: Host) -> None:
        """Serve ``host``, and beat its name into the sets of its queues."""
        self.inner.bind(host)
        self._host = host
        self._heartbeat = Heartbeat(
            self.url,
            [self.keys.consumers(queue) for queue in host.options.queues],
            host.name,
            host.options.heartbeat_seconds,
            host.outage,
            load=(self.keys.worker(host.name), lambda: host_load(host, self.settled)),
        )

    async def open(self) -> None:
        """Open ``inner``, then start beating (`BackendError` if the store's Redis is away)."""
        await self.inner.open()
        try:
            await asyncio.to_thread(self.heartbeat.start)
        except BackendError:
            self.heartbeat.close()
            raise

    async def read(self, count: int) -> list[Delivery]:
        """``inner``'s new messages."""
        return await self.inner.read(count)

    async def settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """``inner`` sends ``outbox`` and acknowledges ``delivery``; counted once done."""
        await self.inner.settle(delivery, outbox)
        self.settled.add(delivery.queue)

    async def wake(self) -> None:
        """Wake ``inner``'s read."""
        await self.inner.wake()

    async def leave(self, unfinished: Sequence[Delivery]) -> None:
        """Stop beating and take the worker out of the sets, then let ``inner`` leave."""
        await asyncio.to_thread(self.heartbeat.stop)
        await asyncio.to_thread(self.heartbeat.remove)
        await self.inner.leave(unfinished)

    async def disconnect(self) -> None:
        """Close ``inner``'s connections and the beats' client."""
        try:
            await self.inner.disconnect()
        finally:
            self.heartbeat.close()

    def maintenance(self) -> list[Coroutine[Any, Any, None]]:
        """``inner``'s loops, and one that stops the worker if the beating thread died."""
        return [*self.inner.maintenance(), self._watch_beats()]

    async def _watch_beats(self) -> None:
        assert self._host is not None
        host = self._host
        while not host.stopping:
            self.heartbeat.check()
            await host.pause(host.options.heartbeat_seconds)
