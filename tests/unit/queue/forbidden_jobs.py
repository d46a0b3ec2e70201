"""A job module that no test imports: the allow-list test checks it stays unimported."""

from __future__ import annotations

from arvel_flow.queue.job import Job


class Forbidden(Job):
    """Must never be imported when its module is not allowed."""

    async def handle(self) -> None:
        raise AssertionError("a job outside the allowed modules ran")
