"""Jobs for the tests of `arvel_flow.testing`; pipelines refer to them by dotted path."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import PrivateAttr, SecretStr

from arvel_flow.queue.job import Job


class ImportRows(Job):
    """Counts its runs in ``runs`` (a class-level list the test clears)."""

    path: str
    runs: ClassVar[list[str]] = []

    async def handle(self) -> str:
        ImportRows.runs.append(self.path)
        return self.path


class SendDigest(Job):
    """Records the user it ran for."""

    user_id: int
    runs: ClassVar[list[int]] = []

    async def handle(self) -> int:
        SendDigest.runs.append(self.user_id)
        return self.user_id


class Report(Job):
    """Never meant to run in these tests: raises if it does."""

    title: str = "daily"

    async def handle(self) -> None:
        raise AssertionError("Report ran")


class Login(Job):
    """A job with a secret parameter."""

    user: str
    password: SecretStr

    async def handle(self) -> None:
        return None


class Flaky(Job):
    """Fails its first ``failures`` attempts; backs off an hour between attempts."""

    failures: int = 2
    backoff: Any = 3600
    attempts: ClassVar[list[int]] = []

    async def handle(self) -> str:
        Flaky.attempts.append(len(Flaky.attempts) + 1)
        if len(Flaky.attempts) <= self.failures:
            raise ConnectionError("upstream reset")
        return "done"


class ImportAll(Job):
    """Dispatches one `ImportRows` per path, and a `Report` after them."""

    paths: list[str]
    _queue: Any = PrivateAttr(default=None)

    async def handle(self) -> None:
        for path in self.paths:
            await self._queue.dispatch(ImportRows(path=path))
        await self._queue.later(60, Report(title="imports"))


CLEANED: list[str] = []


def cleanup(path: str = "tmp/") -> None:
    """A plain function job: notes the path in `CLEANED`."""
    CLEANED.append(path)
