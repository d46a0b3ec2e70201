"""`JobSettings` is the one declaration: `Job`, the file's keys and the names agree with it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pydantic
import pytest

from arvel_flow.job_settings import (
    DEFAULTS,
    JOB_SETTING_FIELDS,
    RETRY_KEYS,
    SETTINGS,
    STEP_KEYS,
    JobSettings,
    MiddlewareRef,
)
from arvel_flow.pipeline.fields import MAX_BACKOFF_BASE, MAX_RETRIES
from arvel_flow.pipeline.models import DefaultsSpec, JobSettingsSpec, JobStepSpec, JobTemplateSpec
from arvel_flow.pipeline.policies import RetryPolicySpec, SpecModel, with_settings
from arvel_flow.queue import job as job_module
from arvel_flow.queue.job import Job

SAMPLES: dict[str, Any] = {
    "max_retries": 7,
    "backoff": [1, 5, 30],
    "backoff_base": 3,
    "max_backoff": 120.0,
    "jitter": True,
    "queue_name": "slow",
    "timeout_seconds": 45,
    "retry_until": timedelta(minutes=10),
    "max_exceptions": 2,
    "retry_on": (ConnectionError, "myapp.errors.Transient"),
    "dont_retry_on": (KeyError,),
    "unique_for": 60,
    "unique_id": "import-{user_id}",
    "unique_until_processing": True,
}
"""A value other than the default for every setting of `Job`, as a job class writes it."""


def test_the_settings_of_job_are_the_declared_ones_in_order() -> None:
    # Given Job's fields, When the settings among them are listed
    settings = [name for name in Job.model_fields if name in SETTINGS]
    # Then they are JOB_SETTING_FIELDS, every one of them, in declaration order
    assert tuple(settings) == JOB_SETTING_FIELDS
    assert set(SAMPLES) == set(JOB_SETTING_FIELDS)


def test_job_takes_its_defaults_and_docs_from_the_declaration() -> None:
    for name in JOB_SETTING_FIELDS:
        info = Job.model_fields[name]
        assert info.description == SETTINGS[name].doc, name
        assert SETTINGS[name].normalise(info.default) == getattr(DEFAULTS, name), name
    # ... so a job that sets nothing has exactly the declared defaults
    assert JobSettings.of(Job) == DEFAULTS
    assert JobSettings.of(Job()) == DEFAULTS


def test_every_job_field_reads_back_as_the_setting_it_declares() -> None:
    # Given a job class that sets every setting, written as a job class writes it
    job = Job(**SAMPLES)
    # When its settings are read, and turned back into Job field values
    settings = JobSettings.of(job)
    again = Job(**{n: SETTINGS[n].to_job(getattr(settings, n)) for n in JOB_SETTING_FIELDS})
    # Then each one differs from the default, and the round trip changes nothing
    assert all(getattr(settings, n) != getattr(DEFAULTS, n) for n in JOB_SETTING_FIELDS)
    assert settings.retry_until == 600.0
    assert settings.retry_on == ("ConnectionError", "myapp.errors.Transient")
    assert JobSettings.of(again) == settings
    assert JobSettings.from_values(settings.to_dict()) == settings


def test_the_settings_outside_job_are_the_delay_and_the_middleware() -> None:
    assert set(SETTINGS) - set(JOB_SETTING_FIELDS) == {"delay", "middleware"}
    refs = JobSettings.from_values({"middleware": [{"use": "m.X", "kwargs": {"a": 1}}]})
    assert refs.middleware == (MiddlewareRef("m.X", {"a": 1}),)


def test_the_file_has_one_key_per_setting_except_middleware() -> None:
    # Every setting is written somewhere in the file, and has a file type there ...
    for name, setting in SETTINGS.items():
        in_file = setting.in_retry or setting.on_step
        assert in_file == (setting.file_type is not None), name
        assert in_file or name == "middleware", name
    # ... and middleware, which names stacks, is a key of its own on every level
    assert "middleware" in JobSettingsSpec.model_fields


def test_a_retry_policy_has_exactly_the_retry_keys() -> None:
    assert tuple(RetryPolicySpec.model_fields) == RETRY_KEYS
    for name in RETRY_KEYS:
        assert RetryPolicySpec.model_fields[name].description == SETTINGS[name].doc


@pytest.mark.parametrize("model", [JobSettingsSpec, DefaultsSpec, JobTemplateSpec, JobStepSpec])
def test_every_level_has_retry_middleware_and_the_step_keys(model: type[SpecModel]) -> None:
    fields = tuple(model.model_fields)
    assert fields[: 2 + len(STEP_KEYS)] == ("retry", "middleware", *STEP_KEYS)
    for name in STEP_KEYS:
        assert model.model_fields[name].description == SETTINGS[name].doc


def test_only_the_settings_both_levels_share_are_on_the_step_and_in_a_policy() -> None:
    assert set(RETRY_KEYS) & set(STEP_KEYS) == {"timeout_seconds"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_retries", MAX_RETRIES + 1),
        ("max_retries", -1),
        ("backoff_base", MAX_BACKOFF_BASE + 1),
        ("max_exceptions", 0),
        ("retry_on", [""]),
        ("backoff", "linear"),
    ],
)
def test_the_bounds_of_a_retry_key_come_from_the_declaration(key: str, value: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        RetryPolicySpec.model_validate({key: value})


def test_with_settings_gives_any_model_the_declared_keys() -> None:
    # Given a model of the file that takes two settings
    @with_settings(["unique_for", "max_retries"])
    class Probe(SpecModel):
        """A probe."""

    # Then it keeps its name and doc, the keys are optional, durations parse, bounds hold
    assert (Probe.__name__, Probe.__doc__) == ("Probe", "A probe.")
    assert Probe().model_dump() == {"unique_for": None, "max_retries": None}
    assert Probe.model_validate({"unique_for": "2m"}).model_dump()["unique_for"] == 120.0
    with pytest.raises(pydantic.ValidationError):
        Probe.model_validate({"unique_for": 0})


def test_job_settings_stay_importable_from_the_job_module() -> None:
    # SPEC §1 names arvel_flow.queue.job; the declaration moved below the file format.
    assert job_module.JobSettings is JobSettings
    assert job_module.MiddlewareRef is MiddlewareRef
    assert job_module.JOB_SETTING_FIELDS is JOB_SETTING_FIELDS
    assert [f.name for f in dataclasses.fields(JobSettings)] == list(SETTINGS)


def test_the_json_form_has_lists_and_plain_middleware_and_reads_back() -> None:
    settings = JobSettings.from_values(
        {"backoff": [1, 2], "retry_on": ["KeyError"], "middleware": [MiddlewareRef("m.X")]}
    )
    data = settings.to_dict()
    assert list(data) == list(SETTINGS)
    assert data["backoff"] == [1.0, 2.0]
    assert data["retry_on"] == ["KeyError"]
    assert data["dont_retry_on"] == []
    assert data["middleware"] == [{"use": "m.X", "kwargs": {}}]
    assert JobSettings.from_values(data) == settings
