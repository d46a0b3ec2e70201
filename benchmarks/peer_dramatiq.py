"""Dramatiq's side of `bench_distributed`: a Redis broker, a no-op actor with results.

The ``dramatiq peer_dramatiq`` worker imports this module (its defaults: a process per
CPU, 8 threads each). Names live under ``BENCH_PREFIX``; results expire after 10 min.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = os.environ["BENCH_PREFIX"]

broker = RedisBroker(url=URL, namespace=f"{PREFIX}dramatiq")
broker.add_middleware(Results(backend=RedisBackend(url=URL, namespace=f"{PREFIX}dramatiq-r")))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0, result_ttl=600_000)
def noop() -> float:
    """Does nothing; returns when it finished."""
    return time.time()


def fan_out(count: int) -> float:
    """Seconds from the first send to the end of the last of ``count`` no-op jobs."""
    start = time.time()
    messages = [noop.send() for _ in range(count)]
    ends = [message.get_result(block=True, timeout=120_000) for message in messages]
    return max(ends) - start
