"""Jobs for the end-to-end tests: each leaves a trace on disk that a test can read.

The subprocess imports them as ``tests.e2e.jobs:Name`` (the repository root is on its
``PYTHONPATH``), so they must stay importable without pytest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import urllib.parse

from pydantic import SecretStr

from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import Release


def append_line(path: str, line: str) -> None:
    """Append one line with a single ``write``: concurrent appends never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


class Mark(Job):
    """Notes ``start NAME`` in ``log``, sleeps, then notes ``NAME``: one line per run.

    With ``marker``, it fails at once, noting nothing, while that file is absent.
    """

    log: str
    name: str
    seconds: float = 0.0
    marker: str | None = None

    async def handle(self) -> str:
        if self.marker is not None and not await asyncio.to_thread(os.path.exists, self.marker):
            raise RuntimeError(f"{os.path.basename(self.marker)} is not there yet")
        append_line(self.log, f"start {self.name}")
        await asyncio.sleep(self.seconds)
        append_line(self.log, self.name)
        return self.name


class Touch(Job):
    """Writes ``touched`` to ``path``: proof that the job ran."""

    path: str

    async def handle(self) -> None:
        append_line(self.path, "touched")


class FailsUntil(Job):
    """Fails while ``marker`` is absent; succeeds once it exists."""

    marker: str

    async def handle(self) -> str:
        if not await asyncio.to_thread(os.path.exists, self.marker):
            raise RuntimeError(f"{os.path.basename(self.marker)} is not there yet")
        return "found it"


class Unlock(Job):
    """Fails while ``marker`` is absent, and unless given the password of the hash."""

    marker: str
    password: str
    password_sha256: str

    async def handle(self) -> str:
        if hashlib.sha256(self.password.encode()).hexdigest() != self.password_sha256:
            raise PermissionError("wrong password")
        if not await asyncio.to_thread(os.path.exists, self.marker):
            raise RuntimeError(f"{os.path.basename(self.marker)} is not there yet")
        return "unlocked"


class Login(Job):
    """Always refused; carries a password field and a `SecretStr` that must stay hidden."""

    user: str
    password: str
    dsn: SecretStr

    async def handle(self) -> None:
        raise PermissionError(f"login refused for {self.user}")


class MarkWhenReady(Job):
    """Fails while ``marker`` is absent; once it exists, notes ``name`` in ``log`` and succeeds.

    It sleeps ``seconds`` after noting, so that concurrent retries overlap.
    """

    marker: str
    log: str
    name: str
    seconds: float = 0.0

    async def handle(self) -> str:
        if not await asyncio.to_thread(os.path.exists, self.marker):
            raise RuntimeError(f"{os.path.basename(self.marker)} is not there yet")
        append_line(self.log, self.name)
        await asyncio.sleep(self.seconds)
        return self.name


class Gate(Job):
    """Notes ``start NAME`` in ``log``, waits until the file ``gate`` exists, notes ``NAME``."""

    log: str
    name: str
    gate: str

    async def handle(self) -> str:
        append_line(self.log, f"start {self.name}")
        # A file made by another process: there is no event to wait on, only polling.
        while not await asyncio.to_thread(os.path.exists, self.gate):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        append_line(self.log, self.name)
        return self.name


def fingerprint(*values: str) -> str:
    """What a job notes about the secrets it received: a hash, never the values."""
    return hashlib.sha256("|".join(values).encode()).hexdigest()


class Leaky(Job):
    """Notes a hash of the secrets it got, logs and prints them, and fails quoting them
    raw, URL-encoded, repr-escaped and base64-encoded, until ``marker`` exists."""

    dsn: str
    note: str
    pepper: str
    journal: str
    marker: str

    async def handle(self) -> str:
        append_line(self.journal, fingerprint(self.dsn, self.note, self.pepper))
        logging.getLogger(__name__).warning("connecting to %s with %s", self.dsn, self.pepper)
        print(f"the note is {self.note}", flush=True)
        if await asyncio.to_thread(os.path.exists, self.marker):
            return "connected"
        encoded = base64.b64encode(self.note.encode()).decode()
        raise ConnectionError(
            f"refused: raw={self.note} url={urllib.parse.quote(self.note, safe='')} "
            f"repr={self.note!r} b64={encoded} pepper={self.pepper} dsn={self.dsn}"
        )


class PathGate(Job):
    """Notes ``gate`` in ``journal``, then waits until ``path`` exists."""

    journal: str
    path: str

    async def handle(self) -> None:
        append_line(self.journal, "gate")
        for _ in range(3_000):  # a minute at most
            if await asyncio.to_thread(os.path.exists, self.path):
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.path} did not appear")


class ApiCall(Job):
    """A job given secrets in Python (a token field, a `SecretStr`); notes each run."""

    max_retries: int = 0
    api_token: str
    signing: SecretStr
    journal: str

    async def handle(self) -> None:
        append_line(self.journal, f"ran {fingerprint(self.api_token)}")
        raise RuntimeError("upstream said no")


class ReleaseOnce(Job):
    """Puts itself back once (``busy``, for ``delay`` seconds), then succeeds.

    ``marker`` is a file of its own: its absence means the first delivery.
    """

    marker: str
    delay: float = 0.2

    async def handle(self) -> Release | str:
        if not await asyncio.to_thread(os.path.exists, self.marker):
            append_line(self.marker, "released")
            return Release(self.delay, "busy")
        return "done"


class Chatty(Job):
    """Logs ``fetched N rows`` (INFO) and a WARNING that quotes its ``token`` (a secret)."""

    rows: int
    token: str

    async def handle(self) -> None:
        log = logging.getLogger("tests.e2e.chatty")
        log.info("fetched %d rows", self.rows)
        log.warning("disk almost full (token %s)", self.token)
