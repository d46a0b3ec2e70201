"""The allowed module of the allowlist tests: real jobs, and everything a forger would reach.

Nothing here may run under a test: the allowlist must refuse every bait below, and the
legitimate ones are only resolved, never called.
"""

from __future__ import annotations

import asyncio  # noqa: F401  (bait: a module, reachable as an attribute chain)
import functools
import logging  # noqa: F401  (bait: ``logging.os.popen``)
import os  # noqa: F401  (bait: ``os.system``)
from json import JSONDecodeError  # noqa: F401  (bait: an exception defined elsewhere)
from os import popen  # noqa: F401  (bait: a Python function defined elsewhere)
from subprocess import Popen  # noqa: F401  (bait: a class defined elsewhere)

from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import JobMiddleware, NextCall, RateLimited  # noqa: F401


class Import(Job):
    """A legitimate job."""

    path: str = "rows.csv"

    async def handle(self) -> None:
        """Never called by these tests."""

    def helper(self) -> None:
        """Bait: a method, reachable as ``Import.helper``."""


async def send(to: str = "x") -> None:
    """A legitimate function job."""


class Guard(JobMiddleware):
    """A legitimate middleware."""

    async def handle(self, job: object, next_call: NextCall) -> object:
        return await next_call()


class QuotaError(Exception):
    """A legitimate exception for ``retry_on``."""


class Jobs:
    """Holds a nested job class (``module:Jobs.Nested``)."""

    class Nested(Job):
        """A legitimate nested job."""

        async def handle(self) -> None:
            """Never called by these tests."""


Alias = Import
"""Bait: another name for a class defined here."""
evaluate = eval
"""Bait: a builtin under a name of this module."""
partial_send = functools.partial(send, to="evil")
"""Bait: a partial of a legitimate function."""
bound = Import().helper
"""Bait: a bound method."""
lambda_job = lambda: None  # noqa: E731
"""Bait: a lambda (its ``__qualname__`` is ``<lambda>``)."""
NUMBER = 3
"""Bait: not a class or function."""
