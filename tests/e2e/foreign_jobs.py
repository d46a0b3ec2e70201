"""Job classes written as other libraries write them, for the end-to-end tests.

`ArvelStyle` is a plain class in the shape of Arvel's ``arvel.queue.Job`` (``tries``,
``backoff``, ``timeout``, ``failed()``); `ClassVarModel` a Pydantic model declaring
its settings as ``ClassVar``. Each notes its attempts in ``log``.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import BaseModel

from tests.e2e.jobs import append_line


class ArvelStyle:
    """Two attempts in all, each cut short by its one-second timeout, then ``failed()``."""

    queue = "default"
    tries = 2
    backoff = 0
    timeout = 1

    def __init__(self, log: str, name: str, seconds: float = 30.0) -> None:
        self.log = log
        self.name = name
        self.seconds = seconds

    async def handle(self) -> None:
        append_line(self.log, f"attempt {self.name}")
        await asyncio.sleep(self.seconds)

    async def failed(self, exc: BaseException) -> None:
        append_line(self.log, f"failed {self.name}: {type(exc).__name__}")


class ClassVarModel(BaseModel):
    """Fails every time; one retry, no wait, as its class variables say."""

    max_retries: ClassVar[int] = 1
    backoff: ClassVar[float] = 0

    log: str
    name: str

    async def handle(self) -> None:
        append_line(self.log, f"attempt {self.name}")
        raise RuntimeError(f"{self.name} always fails")


class UnhonouredSettings:
    """Declares settings arvel-flow cannot honour: a wrong type and a Laravel-only name."""

    tries = "three"
    failOnTimeout = True

    async def handle(self) -> None:
        return None
