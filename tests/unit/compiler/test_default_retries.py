"""A step whose retries nobody chose warns when the defaults wait long (plan, validate)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from arvel_flow import Job
from arvel_flow.compiler import load_pipeline
from arvel_flow.errors import ConfigIssue
from arvel_flow.explain import describe_default_retries
from arvel_flow.job_settings import declares_retries
from arvel_flow.queue.job import JobSettings

HERE = "tests.unit.compiler.test_default_retries"


class Plain(Job):
    """Keeps the defaults: 3 retries, 60 s apart."""

    async def handle(self) -> None:
        return None


class OwnField(Job):
    max_retries: int = 1

    async def handle(self) -> None:
        return None


class OwnClassVar(Job):
    backoff_seconds: ClassVar[int] = 5  # not a retry setting
    max_retries: ClassVar[int] = 3  # the default value, but chosen

    async def handle(self) -> None:
        return None


class ArvelStyle:
    """Arvel's plain job class: ``tries`` counts every attempt."""

    tries = 2

    async def handle(self) -> None:
        return None


class ArvelChild(ArvelStyle):
    async def handle(self) -> None:
        return None


async def run_function() -> None:
    return None


def warnings_of(text: str) -> list[ConfigIssue]:
    warnings: list[ConfigIssue] = []
    load_pipeline(text, file="p.yaml", warnings=warnings)
    return warnings


def test_a_step_left_with_the_defaults_warns_at_its_job() -> None:
    # Given a step naming a job class that keeps Arvel's default retries
    text = f"version: 1\nname: p\npipeline:\n  id: import\n  job: {HERE}:Plain\n"
    # When the file is checked
    [warning] = warnings_of(text)
    # Then one warning at the step's job says what will happen and what to do
    assert warning.format() == (
        "p.yaml:5:8: warning: pipeline.job: step 'import': no retry settings: a failing job "
        "retries 3 times 1m apart (worst case 3m of waiting); set retry: on the step (or "
        "tries on the job class) to choose"
    )


@pytest.mark.parametrize(
    "text",
    [
        # retry: on the step, on its template, or in the defaults
        f"pipeline:\n  job: {HERE}:Plain\n  retry: {{max_retries: 3}}\n",
        f"jobs:\n  t: {{class: '{HERE}:Plain', retry: {{backoff: 5}}}}\npipeline:\n  job: t\n",
        f"defaults: {{retry: {{max_retries: 3}}}}\npipeline:\n  job: {HERE}:Plain\n",
        # the class chose: a field, a ClassVar, Arvel's tries (inherited too)
        f"pipeline:\n  job: {HERE}:OwnField\n",
        f"pipeline:\n  job: {HERE}:OwnClassVar\n",
        f"pipeline:\n  job: {HERE}:ArvelStyle\n",
        f"pipeline:\n  job: {HERE}:ArvelChild\n",
        # a function has no retry settings of its own to choose
        f"pipeline:\n  job: {HERE}:run_function\n  retry: {{max_retries: 0}}\n",
    ],
)
def test_retries_chosen_anywhere_do_not_warn(text: str) -> None:
    # Given retries chosen by the file or by the job class
    # When the file is checked
    # Then nothing warns about them
    assert warnings_of(f"version: 1\nname: p\n{text}") == []


def test_without_a_warnings_list_the_trap_is_not_an_error() -> None:
    # Given a step left with the defaults, loaded as run loads it (no warnings list)
    text = f"version: 1\nname: p\npipeline:\n  job: {HERE}:Plain\n"
    # When it is loaded
    spec = load_pipeline(text, file="p.yaml")
    # Then it loads
    assert spec.name == "p"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (JobSettings(max_retries=1, backoff=60), None),  # a minute in all: quiet
        (JobSettings(max_retries=0), None),
        (
            JobSettings(max_retries=1, backoff=90),
            "no retry settings: a failing job retries once (worst case 1m 30s of waiting); "
            "set retry: on the step (or tries on the job class) to choose",
        ),
        (
            JobSettings(max_retries=3, backoff=(10, 100)),
            "no retry settings: a failing job retries 3 times (worst case 3m 30s of waiting); "
            "set retry: on the step (or tries on the job class) to choose",
        ),
    ],
)
def test_the_warning_counts_every_wait(settings: JobSettings, expected: str | None) -> None:
    # Given settings nobody chose, when described, then only long waits warn
    assert describe_default_retries(settings) == expected


def test_arvel_flows_own_job_defaults_are_not_a_choice() -> None:
    # Given classes with and without retry settings of their own
    # Then only those that declare some count as choosing
    assert not declares_retries(Plain)
    assert declares_retries(OwnField)
    assert declares_retries(OwnClassVar)
    assert declares_retries(ArvelChild)
