"""The models: field types parsed once, strictness, and documentation on every field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from arvel_flow.pipeline import models
from arvel_flow.pipeline.fields import Allowance, Backoff, Duration
from arvel_flow.pipeline.models import JobStepSpec, PipelineSpec, QueueSpec
from arvel_flow.settings import QueueSettings


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
    ],
)
def test_durations_become_float_seconds(raw: Any, seconds: float) -> None:
    assert TypeAdapter(Duration).validate_python(raw) == seconds


@pytest.mark.parametrize("raw", ["90", "10 minutes", "1w", -1, True, float("inf"), None, [1]])
def test_anything_else_is_not_a_duration(raw: Any) -> None:
    with pytest.raises(ValidationError, match="duration such as 90s"):
        TypeAdapter(Duration).validate_python(raw)


@pytest.mark.parametrize("raw", [True, False, 0, 3, "10%", "12.5%", "100%"])
def test_allowances(raw: Any) -> None:
    assert TypeAdapter(Allowance).validate_python(raw) == raw


@pytest.mark.parametrize("raw", [-1, "101%", "10", "ten%", 1.5, None])
def test_bad_allowances(raw: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Allowance).validate_python(raw)


@pytest.mark.parametrize(
    ("raw", "value"),
    [(5, 5.0), ("1m", 60.0), ([1, "2s"], [1.0, 2.0]), ("exponential", "exponential")],
)
def test_backoff_forms(raw: Any, value: Any) -> None:
    assert TypeAdapter(Backoff).validate_python(raw) == value


def test_models_are_strict_and_closed() -> None:
    # Given a quoted number and an unknown key
    data = {
        "version": 1,
        "name": "x",
        "queue": {"concurrency": "8", "colour": 1},
        "pipeline": {"job": "a.b"},
    }
    # Then both are refused: YAML typed the value already, and unknown keys are errors
    with pytest.raises(ValidationError) as caught:
        PipelineSpec.model_validate(data)
    assert {error["type"] for error in caught.value.errors()} == {"int_type", "extra_forbidden"}


def test_keyword_fields_use_their_yaml_names() -> None:
    step = JobStepSpec.model_validate({"job": "a.b", "with": {"x": 1}})
    assert step.with_ == {"x": 1}
    with pytest.raises(ValidationError):
        JobStepSpec.model_validate({"job": "a.b", "with_": {"x": 1}})


def _spec_models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, models.SpecModel)
    ]


@pytest.mark.parametrize("model", _spec_models(), ids=lambda model: model.__name__)
def test_every_field_is_described_and_every_model_closed(model: type[BaseModel]) -> None:
    # Field descriptions become the hover text of the JSON Schema in editors
    assert model.model_config.get("extra") == "forbid"
    assert model.__doc__
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name}"


def test_the_queue_section_maps_onto_queue_settings() -> None:
    assert set(QueueSpec.model_fields) <= set(QueueSettings.model_fields)
