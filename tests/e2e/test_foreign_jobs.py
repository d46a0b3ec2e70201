"""Foreign job classes (Arvel's plain `Job`, Pydantic models with ``ClassVar`` settings)
run through ``arvel-flow run`` with the settings their classes declare."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, read_lines

pytestmark = pytest.mark.slow


def test_an_arvel_style_class_runs_with_its_tries_timeout_and_failed_hook(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given an Arvel-style plain class: tries = 2, timeout = 1 s, a failed() hook
    log = tmp_path / "log"
    flow = pipeline(
        "arvel",
        f"""
version: 1
name: arvel
pipeline:
  id: sync
  job: tests.e2e.foreign_jobs:ArvelStyle
  with: {{log: {json.dumps(str(log))}, name: sync}}
""",
    )

    # When it runs (each attempt would sleep 30 s without the timeout)
    result = cli("run", str(flow), "--store", store)

    # Then it was tried twice, each attempt timed out, and failed() ran once
    assert result.code == 1, result
    assert read_lines(log) == ["attempt sync", "attempt sync", "failed sync: JobTimeoutError"]


def test_a_pydantic_class_runs_with_its_classvar_settings(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    # Given a Pydantic model with max_retries: ClassVar[int] = 1 and no backoff
    log = tmp_path / "log"
    flow = pipeline(
        "classvar",
        f"""
version: 1
name: classvar
pipeline:
  id: fails
  job: tests.e2e.foreign_jobs:ClassVarModel
  with: {{log: {json.dumps(str(log))}, name: fails}}
""",
    )

    # When it runs
    result = cli("run", str(flow), "--store", store)

    # Then it was tried twice (not four times, 60 s apart), and the plan says so
    assert result.code == 1, result
    assert read_lines(log) == ["attempt fails", "attempt fails"]
    plan = cli("plan", str(flow))
    assert plan.code == 0, plan
    assert "1 retries; backoff 0s" in plan.stdout


def test_validate_strict_reports_settings_a_class_declares_but_cannot_have(
    cli: Cli, pipeline: Callable[[str, str], Path]
) -> None:
    # Given a class with tries = "three" and Laravel's failOnTimeout
    flow = pipeline(
        "unhonoured",
        """
version: 1
name: unhonoured
pipeline: {id: one, job: tests.e2e.foreign_jobs:UnhonouredSettings}
""",
    )

    # When the file is validated without and with importing the class
    plain = cli("validate", "--no-strict", str(flow))
    strict = cli("validate", "--strict", str(flow))

    # Then only the strict check imports the class and names both settings, one line each
    assert plain.code == 0, plain
    assert strict.code == 2, strict
    assert "'tries' must be a whole number of attempts, not 'three'" in strict.stdout
    assert "'failOnTimeout' is not a setting arvel-flow honours" in strict.stdout
    assert "Traceback" not in strict.stdout + strict.stderr
