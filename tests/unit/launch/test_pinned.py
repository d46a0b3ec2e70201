"""Settings pinned with a run's plan: what is kept, what never is, and how a resume reads them."""

from __future__ import annotations

import json

import pytest

from arvel_flow.errors import ConfigError
from arvel_flow.launch.pinned import describe_changes, pin, resume_settings
from arvel_flow.queue.plan import JobNode, Plan
from arvel_flow.queue.plan_json import plan_from_dict, plan_to_dict
from arvel_flow.queue.targets import JobRef
from arvel_flow.settings import QueueSettings


def a_plan() -> Plan:
    return Plan.of("one", JobNode("only", JobRef("tests.unit.queue.flow_jobs:Step", {})))


def stored(plan: Plan) -> Plan:
    """``plan`` through the store's JSON and back."""
    return plan_from_dict(json.loads(json.dumps(plan_to_dict(plan))))


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONCURRENCY", "URL", "BROKER", "DRIVER", "ALLOWED_MODULES", "OWNER_LEASE"):
        monkeypatch.delenv(f"ARVEL_FLOW_{name}", raising=False)


def test_pinned_settings_survive_the_store_and_come_back_unchanged() -> None:
    # Given a plan started with a concurrency, a commit interval and allowed modules
    settings = QueueSettings(concurrency=3, commit_interval=0.5, allowed_modules=["myapp"])
    # When it is stored and read back, then resumed with nothing chosen
    resumed, changes = resume_settings(stored(pin(a_plan(), settings)), {}, "r1")
    # Then the resume has the same settings, and says nothing changed
    assert (resumed.concurrency, resumed.commit_interval) == (3, 0.5)
    assert resumed.allowed_modules == settings.allowed_modules
    assert changes == []
    assert describe_changes(changes) is None


def test_a_flag_overrides_a_pinned_setting_and_the_change_is_named() -> None:
    plan = stored(pin(a_plan(), QueueSettings(concurrency=4)))
    resumed, changes = resume_settings(plan, {"concurrency": 8, "url": None}, "r1")
    assert resumed.concurrency == 8
    assert describe_changes(changes) == "resuming with concurrency 8 (was 4)"


def test_a_plan_stored_without_settings_resumes_with_the_defaults() -> None:
    # Given a plan stored before settings were pinned (no "settings" key)
    data = plan_to_dict(a_plan())
    assert "settings" not in data
    plan = plan_from_dict(data)
    # When it is resumed, then the settings are what a run with no file gets
    resumed, changes = resume_settings(plan, {"store": "memory"}, "r1")
    assert resumed == QueueSettings.resolve(flags={"store": "memory"})
    assert changes == []


def test_a_broker_url_with_a_password_is_stored_masked_and_must_be_given_again() -> None:
    # Given a run started on a broker whose URL holds a password
    settings = QueueSettings(broker="redis", url="redis://app:s3cret@cache:6379/0")
    data = plan_to_dict(pin(a_plan(), settings))
    # Then the stored plan holds the URL masked, never the password
    assert "s3cret" not in json.dumps(data)
    assert data["settings"]["url_masked"] == "redis://app:***@cache:6379/0"
    # And a resume with no URL is refused in one issue naming the masked URL
    with pytest.raises(ConfigError) as refused:
        resume_settings(plan_from_dict(data), {}, "r1")
    assert "redis://app:***@cache:6379/0" in str(refused.value)
    assert "--url" in str(refused.value)
    # While one given the URL again resumes on that broker
    again = {"url": "redis://app:s3cret@cache:6379/0"}
    resumed, _ = resume_settings(plan_from_dict(data), again, "r1")
    assert (resumed.broker, resumed.url) == ("redis", again["url"])


def test_store_and_prefix_are_not_pinned() -> None:
    # They locate the run: a resume is told them, it cannot read them from the run
    settings = QueueSettings(store="sqlite:elsewhere.db", prefix="mine:")
    data = plan_to_dict(pin(a_plan(), settings))
    assert not {"store", "prefix"} & set(data["settings"])
