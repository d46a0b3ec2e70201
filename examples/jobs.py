"""Jobs for the example pipelines: small, fast and offline.

Each stands in for real work (an import, an email, a cleanup) with a short sleep, so
the examples run in seconds anywhere. Refer to them from a pipeline by dotted path,
``examples.jobs:ImportRows``, running ``arvel-flow`` from the repository root.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import JobMiddleware, NextCall

log = logging.getLogger("examples.jobs")


class DigestBouncedError(Exception):
    """The mail server refused the address: retrying will not help."""


class ImportRows(Job):
    """Import the rows of an export file (simulated) and return how many there were."""

    path: str
    region: str = "eu"
    rows: int = 100
    timeout_seconds: float = 30

    async def handle(self) -> int:
        await asyncio.sleep(0.01)
        log.info("imported %d rows from %s (%s)", self.rows, self.path, self.region)
        return self.rows


class FlakyImport(Job):
    """Import one chunk from an unreliable upstream: fails now and then with ConnectionError."""

    chunk: int
    region: str = "eu"
    failure_rate: float = 0.2

    async def handle(self) -> int:
        await asyncio.sleep(0.005)
        if random.random() < self.failure_rate:
            raise ConnectionError(f"chunk {self.chunk}: upstream reset the connection")
        return self.chunk


class SendWeeklyDigest(Job):
    """Send one user their weekly digest (simulated); ``bounce`` makes the address bounce."""

    user_id: int
    locale: str = "en"
    bounce: bool = False
    queue_name: str = "mail"

    async def handle(self) -> str:
        await asyncio.sleep(0.005)
        if self.bounce:
            raise DigestBouncedError(f"user {self.user_id}: mailbox does not exist")
        return f"digest sent to user {self.user_id} ({self.locale})"


class NotifyDone(Job):
    """Tell a chat channel that the work finished."""

    channel: str = "#ops"
    message: str = "pipeline finished"

    async def handle(self) -> str:
        log.info("%s: %s", self.channel, self.message)
        return self.message


class Alert(Job):
    """Page someone: the work failed."""

    channel: str = "#alerts"
    message: str = "pipeline failed"

    async def handle(self) -> str:
        log.warning("%s: %s", self.channel, self.message)
        return self.message


class Cleanup(Job):
    """Remove temporary files (simulated); runs whether the work succeeded or not."""

    path: str = "tmp/"

    async def handle(self) -> None:
        await asyncio.sleep(0.001)


class Report(Job):
    """Write a summary report (simulated)."""

    title: str = "report"

    async def handle(self) -> str:
        return f"{self.title}: done"


def compact_logs(days: int = 7) -> str:
    """A plain function is a job too: its keyword arguments come from ``with:``."""
    return f"compacted logs older than {days} days"


class Audit(JobMiddleware):
    """Logs each attempt of a job at the given level: a minimal custom middleware."""

    def __init__(self, level: str = "info") -> None:
        levels = logging.getLevelNamesMapping()
        if level.upper() not in levels:
            raise ValueError(f"unknown log level {level!r}")
        self.level = levels[level.upper()]

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        log.log(self.level, "running %s", type(job).__name__)
        return await next_call()
