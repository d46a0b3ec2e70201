"""Plain progress lines: throttled to one a second, the last counts always said."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli

pytestmark = pytest.mark.slow

Pipeline = Callable[[str, str], Path]


def test_a_failing_batch_says_its_last_counts_before_it_ends(
    cli: Cli, pipeline: Pipeline, tmp_path: Path
) -> None:
    # Given a batch run one job at a time, whose third job fails, so the rest never start
    touched, never = (json.dumps(str(tmp_path / name)) for name in ("touched", "never"))
    file = pipeline(
        "stops",
        f"""
version: 1
name: stops
pipeline:
  batch:
    - job: tests.e2e.jobs:Touch
      with: {{path: {touched}}}
      each: [{{}}, {{}}]
    - job: tests.e2e.jobs:FailsUntil
      with: {{marker: {never}}}
      retry: {{max_retries: 0}}
    - job: tests.e2e.jobs:Touch
      with: {{path: {touched}}}
      each: [{{}}, {{}}, {{}}, {{}}, {{}}]
  concurrency: 1
""",
    )
    # When it runs with plain output (progress comes faster than once a second)
    result = cli("run", str(file), "--store", "memory", "--output", "plain")
    # Then the last progress line before the batch's end has its final counts
    assert result.code == 1, result
    lines = result.stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if " batch.finished " in line)
    progress = [line for line in lines[:end] if " batch.progress " in line]
    assert progress[-1].endswith("finished=3 failed=1 total=8"), result
