"""Celery's side of `bench_distributed`: a Redis broker and result backend, a no-op task.

The ``celery -A peer_celery worker`` imports this module (its defaults: prefork, a
process per CPU). Keys live under ``BENCH_PREFIX``; results expire after 10 min.
"""

from __future__ import annotations

import os
import time

from celery import Celery
from celery.result import ResultSet

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = os.environ["BENCH_PREFIX"]

app = Celery("bench", broker=URL, backend=URL)
app.conf.update(
    broker_transport_options={"global_keyprefix": f"{PREFIX}celery:"},
    result_backend_transport_options={"global_keyprefix": f"{PREFIX}celery:"},
    task_default_queue=f"{PREFIX}celery",
    result_expires=600,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop() -> float:
    """Does nothing; returns when it finished."""
    return time.time()


def fan_out(count: int) -> float:
    """Seconds from the first send to the end of the last of ``count`` no-op jobs."""
    start = time.time()
    results = ResultSet([noop.delay() for _ in range(count)])
    ends = results.join_native(timeout=120)
    return max(ends) - start
