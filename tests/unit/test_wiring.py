"""Wiring (`arvel_flow.wiring`) and the broker table: default URLs, names on NATS, a
clear error without a broker's extra, one list of broker names."""

from __future__ import annotations

import importlib.util
from typing import get_args

import pytest

from arvel_flow.brokers import BROKERS
from arvel_flow.brokers.nats.transport import JetStreamNames
from arvel_flow.errors import ConfigError
from arvel_flow.pipeline.models import QueueSpec
from arvel_flow.settings import BrokerName, QueueSettings
from arvel_flow.wiring import broker_url, make_queue, make_worker


def test_jetstream_names_come_from_the_prefix_and_escape_what_subjects_forbid() -> None:
    # Given the default prefix and a queue name with dots, a wildcard and a space
    names = JetStreamNames("arvel-flow:")
    # Then the stream is the prefix without its colon, and the queue is one subject token
    assert names.stream == "arvel-flow"
    assert names.subject("default") == "arvel-flow.queue.default"
    assert names.subject("mail.high *x") == "arvel-flow.queue.mail%2Ehigh%20%2Ax"
    assert names.consumer("mail.high") == "mail%2Ehigh"
    # And prefixes that differ only in forbidden characters still name valid streams
    assert JetStreamNames("team a:jobs:").stream == "team_a_jobs"


@pytest.mark.parametrize(
    ("broker", "url"),
    [
        ("nats", "nats://localhost:4222"),
        ("rabbitmq", "amqp://guest:guest@localhost:5672/"),
        ("redis", "redis://localhost:6379/0"),
    ],
)
def test_each_broker_defaults_to_its_server_on_localhost(broker: str, url: str) -> None:
    settings = QueueSettings(broker=broker, store="redis://store.internal:6379/1")  # type: ignore[arg-type]
    expected = "redis://store.internal:6379/1" if broker == "redis" else url
    assert broker_url(settings) == expected


@pytest.mark.parametrize(("broker", "package"), [("nats", "nats"), ("rabbitmq", "aio_pika")])
def test_a_broker_without_its_extra_is_refused_with_the_install_command(
    broker: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the broker's client library is not installed
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a)
    )
    settings = QueueSettings(
        broker=broker,  # type: ignore[arg-type]
        store="redis://localhost:6379/15",
        allowed_modules=("myapp",),
    )
    # When a queue or a worker is made for it
    # Then each refuses, naming the extra to install
    for make in (make_queue, make_worker):
        with pytest.raises(ConfigError) as raised:
            make(settings)
        assert f"pip install 'arvel-flow[{broker}]'" in str(raised.value)


def test_every_broker_name_the_settings_and_the_file_accept_is_in_the_one_table() -> None:
    # Given the broker names settings and pipeline files accept (typed literals)
    settings_names = set(get_args(BrokerName))
    file_names = set(get_args(get_args(QueueSpec.model_fields["broker"].annotation)[0]))
    # Then they are `memory` and the brokers of the one table, nothing more or less
    assert settings_names == file_names == {"memory", *BROKERS}
