"""Job classes the worker's unit tests run, importable by dotted path (`JOBS` + ``:Name``).

What they did goes into `RAN`, which the tests' fixture empties before each test.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from arvel_flow.queue.job import Job

RAN: Counter[str] = Counter()
"""How many times each job (by name) started its ``handle()``."""

JOBS = __name__


class Step(Job):
    """Counts its start in `RAN`, then holds for ``hold`` seconds."""

    max_retries: int = 0

    name: str
    hold: float = 0.0

    async def handle(self) -> None:
        RAN[self.name] += 1
        if self.hold:
            await asyncio.sleep(self.hold)
