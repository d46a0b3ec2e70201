"""What every broker's transport says of itself, without a server."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("arvel_flow.brokers.redis.transport", "RedisStreamTransport"),
        ("arvel_flow.brokers.nats.transport", "NatsTransport"),
        ("arvel_flow.brokers.rabbitmq.transport", "RabbitMQTransport"),
        ("arvel_flow.worker.stub", "StubTransport"),
    ],
)
def test_a_broker_transport_is_remote(module: str, name: str) -> None:
    # Given a broker's transport class
    transport = getattr(importlib.import_module(module), name)
    # Then jobs sent through it run in workers elsewhere (the secret rule applies)
    assert transport.remote is True
