"""`QueueSettings.resolve`: flags beat ``ARVEL_FLOW_*`` beat the file beat the defaults."""

from __future__ import annotations

import os

import pytest

from arvel_flow.errors import ConfigError
from arvel_flow.settings import QueueSettings


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tuple(os.environ):
        if name.startswith("ARVEL_FLOW_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("file", "env", "flag", "expected"),
    [
        (None, None, None, 16),
        ("4", None, None, 4),
        ("4", "8", None, 8),
        ("4", "8", "2", 2),
        (None, None, "2", 2),
        (None, "8", None, 8),
    ],
)
def test_the_strongest_source_of_a_setting_wins(
    monkeypatch: pytest.MonkeyPatch,
    file: str | None,
    env: str | None,
    flag: str | None,
    expected: int,
) -> None:
    # Given a concurrency from any of the four places
    if env is not None:
        monkeypatch.setenv("ARVEL_FLOW_CONCURRENCY", env)
    file_queue = {} if file is None else {"concurrency": int(file)}
    flags = {"concurrency": None if flag is None else int(flag), "store": None}

    # When the settings are resolved
    settings = QueueSettings.resolve(file_queue, flags)

    # Then the strongest source wins
    assert settings.concurrency == expected


def test_each_setting_resolves_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the store from the environment and the concurrency from the file
    monkeypatch.setenv("ARVEL_FLOW_STORE", "memory")
    settings = QueueSettings.resolve({"concurrency": 3, "store": "sqlite:x.db"}, {"driver": "sync"})

    # Then each comes from its own strongest source, the rest from the defaults
    assert (settings.store, settings.concurrency, settings.driver) == ("memory", 3, "sync")
    assert settings.broker == "memory"


def test_none_counts_as_unset_in_the_file_and_the_flags() -> None:
    # Given a file and flags that leave the store unset (None)
    settings = QueueSettings.resolve({"store": None}, {"store": None, "concurrency": 5})

    # Then the default store is used
    assert (settings.store, settings.concurrency) == (QueueSettings().store, 5)


def test_nothing_given_is_the_defaults() -> None:
    assert QueueSettings.resolve() == QueueSettings()


def test_a_list_from_the_file_and_text_from_the_environment_both_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given allowed modules as a list in the file, and queues as text in the environment
    monkeypatch.setenv("ARVEL_FLOW_QUEUES", "high, low")
    settings = QueueSettings.resolve({"allowed_modules": ["myapp.jobs."]})

    # Then both come out as tuples, the prefix normalised
    assert settings.allowed_modules == ("myapp.jobs",)
    assert settings.queues == ("high", "low")


def test_observers_of_the_environment_replace_those_of_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given observers in the file, and others as comma-separated text in the environment
    file = {"observers": ("myapp.hooks:audit",)}
    assert QueueSettings.resolve(file).observers == ("myapp.hooks:audit",)
    monkeypatch.setenv("ARVEL_FLOW_OBSERVERS", "ops.hooks:Slack, ops.hooks:page")
    # Then the environment's list is the one in force
    assert QueueSettings.resolve(file).observers == ("ops.hooks:Slack", "ops.hooks:page")


def test_an_invalid_value_is_one_issue_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an invalid concurrency in the environment and a valid one in the file
    monkeypatch.setenv("ARVEL_FLOW_CONCURRENCY", "zero")
    # When the settings are resolved
    with pytest.raises(ConfigError) as raised:
        QueueSettings.resolve({"concurrency": 4})
    # Then the error names the setting, once
    assert [issue.path for issue in raised.value.issues] == ["concurrency"]
