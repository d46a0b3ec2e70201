"""Fixtures shared by every test suite."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

# Database 15 keeps tests away from the data of anything else on a developer's Redis.
REDIS_URL = os.environ.get("ARVEL_FLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CI = os.environ.get("CI", "").lower() == "true"
NATS_URL = os.environ.get("ARVEL_FLOW_TEST_NATS_URL", "nats://127.0.0.1:4222")
RABBITMQ_URL = os.environ.get("ARVEL_FLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _reachable_or_skip(url: str, what: str) -> str:
    """``url`` when its server accepts connections; else skip (fail under ``CI=true``)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1):
            pass
    except OSError as exc:
        if CI:
            pytest.fail(
                f"{what} at {parts.hostname}:{parts.port} is unreachable under CI=true: {exc}"
            )
        pytest.skip(f"{what} at {parts.hostname}:{parts.port} is unreachable: {exc}")
    return url


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS server (with JetStream) for tests; skipped when unreachable, except in CI."""
    return _reachable_or_skip(NATS_URL, "NATS")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The RabbitMQ server for tests; skipped when unreachable, except in CI."""
    return _reachable_or_skip(RABBITMQ_URL, "RabbitMQ")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the Redis test database.

    Skips the test when Redis is unreachable, except under ``CI=true``, where a
    missing service is a broken pipeline and fails the test.
    """
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if CI:
            pytest.fail(f"Redis at {REDIS_URL} is unreachable under CI=true: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"arvel-flow-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler: "Exception in callback ...",
    "Task exception was never retrieved"; a test asserts it stays empty.
    """
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: seen.append(context))
    yield seen
    loop.set_exception_handler(None)
