"""An allowed module that re-exports what a forged message would like to run.

A worker under test may import it (it is on ``--allow``); the allowlist must still
refuse every name below, because none is defined here.
"""

from __future__ import annotations

from asyncio.subprocess import create_subprocess_shell  # noqa: F401
from json import JSONDecodeError  # noqa: F401
from os import popen  # noqa: F401

from arvel_flow.queue.middleware import RateLimited  # noqa: F401
