"""A supervised worker's side: it stops when its supervisor is gone.

A supervisor killed with ``kill -9`` cannot tell its children anything, and a child
left alone would go on taking jobs that nobody can stop with one signal. So a child
(`arvel_flow.worker.supervisor` names its supervisor in `SUPERVISOR_VARIABLE`) asks
Linux for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, as Celery's billiard
does), and `watch_parent` also polls ``os.getppid()``, which covers other systems and a
supervisor that died before the request was made. Either way the child stops as on a
first SIGTERM: it finishes its running jobs, and exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping

from arvel_flow.queue.clock import Clock, SystemClock
from arvel_flow.worker.supervisor import READY_VARIABLE, SUPERVISOR_VARIABLE

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.5


def supervisor_pid(environ: Mapping[str, str] | None = None) -> int | None:
    """The pid of this process's supervisor, or ``None`` when it runs on its own."""
    value = (os.environ if environ is None else environ).get(SUPERVISOR_VARIABLE, "")
    return int(value) if value.isdigit() else None


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; whether it did."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    except (OSError, AttributeError):  # no libc to load, or no prctl in it
        return False


def tell_ready(environ: Mapping[str, str] | None = None) -> None:
    """Tell the supervisor (if any) that this worker is connected and reading."""
    value = (os.environ if environ is None else environ).get(READY_VARIABLE, "")
    if not value.isdigit():
        return
    try:
        os.write(int(value), b"r")
        os.close(int(value))
    except OSError as error:  # the supervisor is gone: `watch_parent` sees to that
        logger.warning("could not tell the supervisor this worker is ready: %s", error)


async def watch_parent(
    parent: int,
    on_gone: Callable[[], None],
    *,
    every: float = PARENT_POLL_SECONDS,
    clock: Clock | None = None,
) -> None:
    """Call ``on_gone`` once ``parent`` is no longer this process's parent, then return."""
    clock = clock or SystemClock()
    while os.getppid() == parent:
        await clock.sleep(every)
    logger.warning("supervisor %d is gone: stopping", parent)
    on_gone()
