"""Jobs the tracing tests run, importable by dotted path (a pipeline file names them).

Each opens a span of its own through OpenTelemetry's global tracer, as an instrumented
HTTP client would: it must nest under the attempt's span with no extra code.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry import trace

from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import JobMiddleware, NextCall, Release

CALLS: Counter[str] = Counter()
"""Attempts per job name, in this process (the ``calls`` fixture empties it)."""


class Work(Job):
    """Fails its first ``fail_times`` attempts; retried at once (no backoff)."""

    max_retries: int = 1
    backoff: int = 0

    name: str
    fail_times: int = 0
    token: str = ""
    """A secret (by its name): no span may show it, even when the error does."""

    async def handle(self) -> str:
        CALLS[self.name] += 1
        with trace.get_tracer("tests").start_as_current_span(f"inner {self.name}"):
            if CALLS[self.name] <= self.fail_times:
                said = f" (token {self.token})" if self.token else ""
                raise RuntimeError(f"{self.name} fails on attempt {CALLS[self.name]}{said}")
        return self.name


class ReleaseOnce(JobMiddleware):
    """Puts each job back once (as a rate limit would), then lets it run."""

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        key = f"released:{job.name}"
        if not CALLS[key]:
            CALLS[key] += 1
            return Release(0.0, f"rate limit secret-{job.token}")
        return await next_call()


class Held(Work):
    """`Work` behind `ReleaseOnce`."""

    def middleware(self) -> list[JobMiddleware]:
        return [ReleaseOnce()]
