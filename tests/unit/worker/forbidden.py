"""A job module no test imports: the worker's allowlist test checks it stays unimported."""

from __future__ import annotations

from arvel_flow.queue.job import Job


class Forbidden(Job):
    """Must never be imported: its module is outside the worker's allowed prefix."""

    async def handle(self) -> None:
        raise AssertionError("a job outside the allowed modules ran")
