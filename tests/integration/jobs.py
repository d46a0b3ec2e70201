"""Job classes the integration tests run in real worker processes.

Each job writes what it did to a Redis list (its ``journal``), so the test process can
read who ran what, when and where. Workers find Redis in ``ARVEL_FLOW_TEST_JOURNAL``, else
``ARVEL_FLOW_STORE`` (fault tests keep the journal away from the Redis they break).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import JobMiddleware, RateLimited, Release

_clients: dict[str, Redis] = {}


def _client() -> Redis:
    url = os.environ.get("ARVEL_FLOW_TEST_JOURNAL") or os.environ["ARVEL_FLOW_STORE"]
    if url not in _clients:
        # Blocking: a worker may run more jobs at once than a default pool holds.
        _clients[url] = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=64))
    return _clients[url]


async def write(journal: str, **entry: Any) -> None:
    """Append one entry (with this process's id) to the journal list."""
    entry.setdefault("pid", os.getpid())
    await _client().rpush(journal, json.dumps(entry))


class Record(Job):
    """Holds for ``hold`` seconds, then journals its tag with start and end times.

    A job that holds first sets ``{journal}:started:{tag}``, so a test can tell that
    it runs (a message pending at the broker may still be on its way to the job).
    """

    journal: str
    tag: str
    hold: float = 0.0

    async def handle(self) -> None:
        start = time.time()
        if self.hold:
            await _client().set(f"{self.journal}:started:{self.tag}", start)
            await asyncio.sleep(self.hold)
        await write(self.journal, tag=self.tag, start=start, end=time.time())


class Gated(Job):
    """Sets ``{journal}:started:{tag}``, then runs until ``{journal}:release:{tag}`` is set.

    Gives up after ``within`` seconds (so a failing test cannot hang a worker), failing.
    """

    journal: str
    tag: str
    within: float = 30.0

    async def handle(self) -> None:
        client = _client()
        await client.set(f"{self.journal}:started:{self.tag}", time.time())
        deadline = time.monotonic() + self.within
        while not await client.exists(f"{self.journal}:release:{self.tag}"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.tag} was not released within {self.within}s")
            await asyncio.sleep(0.05)
        await write(self.journal, tag=self.tag, start=time.time())


class Flaky(Job):
    """Fails its first ``failures`` attempts (counted in Redis), then journals."""

    journal: str
    tag: str
    failures: int = 1

    async def handle(self) -> None:
        attempt = await _client().incr(f"{self.journal}:attempts:{self.tag}")
        await write(self.journal, tag=self.tag, attempt=attempt, start=time.time())
        if attempt <= self.failures:
            raise RuntimeError(f"attempt {attempt} fails on purpose")


class ReleasedOnce(Job):
    """Puts itself back for ``delay`` seconds the first time it runs, then journals."""

    journal: str
    tag: str
    delay: float = 0.1

    async def handle(self) -> Release | None:
        if await _client().incr(f"{self.journal}:runs:{self.tag}") == 1:
            return Release(self.delay, "not yet")
        await write(self.journal, tag=self.tag, start=time.time())
        return None


class Limited(Job):
    """Journals its start, under a rate limit of ``per_second`` runs per second."""

    journal: str
    tag: str
    per_second: int = 5

    def middleware(self) -> list[JobMiddleware]:
        return [RateLimited(f"{self.journal}:limit", self.per_second, 1.0)]

    async def handle(self) -> None:
        await write(self.journal, tag=self.tag, start=time.time())


class Blocking(Job):
    """Blocks its worker's event loop for ``hold`` seconds (CPU-bound code would)."""

    journal: str
    tag: str
    hold: float = 1.0

    async def handle(self) -> None:
        start = time.time()
        time.sleep(self.hold)  # noqa: ASYNC251 - blocking the loop is the point
        await write(self.journal, tag=self.tag, start=start, end=time.time())


class Crash(Job):
    """Kills its own worker process (as the OOM killer would), every time it runs."""

    journal: str
    tag: str

    async def handle(self) -> None:
        await write(self.journal, tag=self.tag, start=time.time())
        os._exit(1)


class Chatty(Job):
    """Logs ``fetched 3 rows`` (INFO) and ``disk almost full`` (WARNING), then journals its tag."""

    journal: str
    tag: str

    async def handle(self) -> None:
        log = logging.getLogger("tests.integration.chatty")
        log.info("fetched 3 rows")
        log.warning("disk almost full")
        await write(self.journal, tag=self.tag)
