"""A worker's heartbeat: proof, every few seconds, that its jobs are still being run.

It beats from a thread of its own with a blocking Redis client, so a job that blocks
the event loop (CPU-bound code in ``handle()``) does not make its worker look dead and
its jobs run twice. Beat times are the Redis server's.

Beats that fail (Redis away, or out of memory) are said once per outage, and once
when they resume. A thread that dies of anything else is a bug the worker must not
run on with: `Heartbeat.check` raises it in the worker's loop (others would otherwise
take this worker's jobs while they run).

Given a ``load`` key, each beat also writes the worker's concurrency, running jobs and
the messages it settled per queue there (a hash that expires unless beaten again), for
``arvel-flow top``. The sorted
sets are as before: a worker that writes no load is still seen, with its load unknown.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis

from arvel_flow.brokers.redis.scripts import HEARTBEAT
from arvel_flow.errors import BackendError
from arvel_flow.outage import Beats, Outage
from arvel_flow.redis_support import redis_errors
from arvel_flow.store.urls import mask_url

logger = logging.getLogger(__name__)

LOAD_TTL = 30.0
"""Seconds at least a worker's load hash outlives its last beat (ten beats if longer)."""


class Heartbeat:
    """Beats ``name`` into the consumer sets ``keys`` every ``interval`` seconds.

    Args:
        url: The Redis server.
        keys: One sorted set per queue the worker reads (`StreamKeys.consumers`).
        name: The worker's consumer name.
        interval: Seconds between beats.
        outage: Where failing beats are reported (the worker's, so that one outage is
            said once); one of its own by default.
        load: The key of the worker's load hash, and what tells its fields (read from
            the beating thread: it must be safe there; see `host_load`).
    """

    def __init__(
        self,
        url: str,
        keys: Sequence[str],
        name: str,
        interval: float,
        outage: Outage | None = None,
        load: tuple[str, Callable[[], Mapping[str, int]]] | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self._keys = list(keys)
        self._backend = mask_url(url)
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=max(5.0, 2 * interval)
        )
        self._script = self._client.register_script(HEARTBEAT)
        self._load = load
        self._load_ttl_ms = int(max(LOAD_TTL, 10 * interval) * 1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {name}", daemon=True)
        self._beats = Beats(outage or Outage(math.inf, self._say))
        self.failure: BaseException | None = None
        """What killed the beating thread, if anything did."""

    def start(self) -> None:
        """Beat once now (raising `BackendError` if Redis cannot be reached), then keep on."""
        with redis_errors(self._backend):
            self.beat()
        self._thread.start()

    def beat(self, score: str = "") -> None:
        """One beat (``score`` in server milliseconds; empty for now), with the load if any."""
        if self._load is None:
            self._script(keys=self._keys, args=[self.name, score])
            return
        key, read = self._load
        fields = read()
        with self._client.pipeline(transaction=False) as pipe:
            self._script(keys=self._keys, args=[self.name, score], client=pipe)
            if score == "0":  # marked dead: no load to show
                pipe.delete(key)
            else:
                mapping: dict[Any, Any] = dict(fields)  # redis-py's keys: a union
                pipe.hset(key, mapping=mapping)
                pipe.pexpire(key, self._load_ttl_ms)
            pipe.execute()

    def stop(self) -> None:
        """Stop beating (the last beat stays until the worker leaves or is found dead)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def mark_dead(self) -> None:
        """Say this worker is dead now, so others take over what it leaves pending."""
        try:
            self.beat("0")
        except redis.RedisError as error:
            logger.warning("could not mark worker %s dead: %s", self.name, error)

    def remove(self) -> None:
        """Take this worker out of the sets and drop its load: it left (a warning line if
        Redis is away: its beats then age until it counts as dead)."""
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key in self._keys:
                    pipe.zrem(key, self.name)
                if self._load is not None:
                    pipe.delete(self._load[0])
                pipe.execute()
        except redis.RedisError as error:
            logger.warning("could not remove worker %s from the heartbeats: %s", self.name, error)

    def close(self) -> None:
        """Close the Redis client."""
        self._client.close()

    def check(self) -> None:
        """Raise `HeartbeatError` if the beating thread died."""
        if self.failure is not None:
            raise HeartbeatError(self.name) from self.failure

    def _say(self, line: str) -> None:
        logger.warning("heartbeat of %s: %s", self.name, line)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._beat_through_outages()
        except BaseException as error:
            self.failure = error
            logger.error("the heartbeat thread of %s died", self.name, exc_info=error)

    def _beat_through_outages(self) -> None:
        try:
            with redis_errors(self._backend):
                self.beat()
        except BackendError as error:
            # Others take over this worker's jobs if this lasts past the timeout.
            self._beats.failed(error)
        else:
            self._beats.succeeded()


class HeartbeatError(RuntimeError):
    """A worker's heartbeat thread died (a bug): the worker stops rather than run unseen."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the heartbeat of worker {name} stopped")
