"""Jobs for the example pipelines: small, fast and offline.

Each stands in for real work (an import, an email, a cleanup) with a short sleep, so
the examples run in seconds anywhere. Refer to them from a pipeline by dotted path,
``examples.jobs:ImportRows``, running ``arvel-flow`` from the repository root.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from arvel_flow.queue.context import current_context
from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import JobMiddleware, NextCall, Release, resolve_key

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
    """Send one user their weekly digest (simulated); ``bounce`` makes the address bounce.

    Each digest sent is a line in ``outbox`` (relative to the working directory), so
    that you can count the mails.
    """

    user_id: int
    locale: str = "en"
    bounce: bool = False
    queue_name: str = "mail"
    outbox: str = "outbox/digests.txt"

    async def handle(self) -> str:
        await asyncio.sleep(0.005)
        if self.bounce:
            raise DigestBouncedError(f"user {self.user_id}: mailbox does not exist")
        sent = f"digest sent to user {self.user_id} ({self.locale})"
        await asyncio.to_thread(_append_line, Path(self.outbox), sent)
        return sent


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


class CrashOnce(Job):
    """Transform rows (simulated), killing this process the first time it runs in a run.

    As ``kill -9`` or a power cut would: nothing is cleaned up. When the run is
    resumed (``arvel-flow run --resume RUN_ID``) it runs to the end. Which runs it
    crashed already is kept in a marker file in the temporary directory, removed when
    it succeeds.
    """

    rows: int = 100
    seconds: float = 0.5

    async def handle(self) -> int:
        run_id = current_context().envelope.run_id
        marker = Path(tempfile.gettempdir()) / f"arvel-flow-crashed-{run_id}"
        # Working a while first: the store commits what happened so far meanwhile (a
        # crash loses at most the last `commit_interval` of writes).
        await asyncio.sleep(self.seconds)
        if not marker.exists():
            marker.touch()
            log.warning("transform: crashing the process, as a power cut would")
            # What was printed so far stays visible, and the terminal's cursor (hidden
            # by the live view) shown, which a real crash would not do; then the
            # process dies at once.
            if sys.stdout.isatty():
                sys.stdout.write("\n\x1b[?25h")
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        marker.unlink(missing_ok=True)
        return self.rows


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


class OncePer(JobMiddleware):
    """Runs a job at most once per ``seconds`` for each key: a later copy is skipped.

    A unique job (``unique_for``) is refused only while another copy is queued or
    running: once it finished, the same job may run again. This middleware remembers
    that it ran: it takes a lock on the key for ``seconds`` before the job runs and
    keeps it when the job succeeds. The lock is in the store, so with a store kept on
    disk (the default sqlite one) it holds across runs; with ``--store memory`` it
    lasts as long as the process. A job that fails gives the lock back, so its retry
    (or the next run) sends it.
    """

    def __init__(self, key: str, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be > 0")
        self.key = key
        self.seconds = float(seconds)

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        context = current_context()
        key = "once:" + resolve_key(self.key, job)
        owner = context.envelope.id
        if not await context.lock.acquire(key, owner, self.seconds):
            log.info("skipped: %s already ran in the last %gs", key, self.seconds)
            return None
        try:
            result = await next_call()
        except BaseException:
            await context.lock.release(key, owner)
            raise
        if isinstance(result, Release):  # it did not run: it will ask again
            await context.lock.release(key, owner)
        return result
