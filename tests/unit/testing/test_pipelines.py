"""`run_pipeline`: a whole pipeline run in-process, on a test queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from arvel_flow.compiler import load_pipeline
from arvel_flow.errors import ConfigError
from arvel_flow.testing import FakeQueue, run_pipeline
from tests.unit.testing.jobs import Flaky, ImportRows, Report

JOBS = "tests.unit.testing.jobs"

PIPELINE = f"""\
version: 1
name: nightly
vars:
  file: rows.csv
queue:
  driver: taskiq
  store: sqlite:never-opened.db
pipeline:
  chain:
    - id: import
      job: {JOBS}:ImportRows
      with: {{path: "${{vars.file}}"}}
    - id: report
      job: {JOBS}:Report
"""


@pytest.fixture(autouse=True)
def _clear_runs() -> None:
    ImportRows.runs.clear()
    Flaky.attempts.clear()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


async def test_a_pipeline_file_runs_here_on_a_sync_queue_not_its_queue_section(
    tmp_path: Path,
) -> None:
    # Given a chain whose report raises; its queue: section names taskiq and sqlite
    path = write(tmp_path, PIPELINE)
    # When it is run for a test
    result = await run_pipeline(path)
    # Then it ran here, in order, and the chain stopped at the report
    assert ImportRows.runs == ["rows.csv"]
    assert result.succeeded == ("import",)
    assert list(result.failed) == ["report"]
    assert result.status == "failed"
    assert not (tmp_path / "never-opened.db").exists()


async def test_vars_are_given_as_set_gives_them(tmp_path: Path) -> None:
    await run_pipeline(write(tmp_path, PIPELINE), vars={"file": "other.csv"})
    assert ImportRows.runs == ["other.csv"]


async def test_a_loaded_spec_runs_too(tmp_path: Path) -> None:
    spec = load_pipeline(write(tmp_path, PIPELINE))
    result = await run_pipeline(spec)
    assert result.succeeded == ("import",)


async def test_on_a_fake_queue_the_pipeline_is_recorded_and_nothing_runs(tmp_path: Path) -> None:
    # Given a fake queue
    queue = FakeQueue()
    # When the pipeline runs on it
    result = await run_pipeline(write(tmp_path, PIPELINE), queue=queue)
    # Then its chain is recorded, no job ran, and each counts as succeeded
    queue.assert_chained([ImportRows(path="rows.csv"), Report])
    assert ImportRows.runs == []
    assert result.succeeded == ("import", "report")
    # and the queue is left open, its store readable
    assert await queue.store.get_steps(result.run_id)


async def test_hours_of_backoff_cost_nothing(tmp_path: Path) -> None:
    # Given a job failing every attempt, an hour apart
    text = f"""\
version: 1
name: flaky
pipeline:
  job: {JOBS}:Flaky
  with: {{failures: 10}}
  retry: {{max_retries: 3, backoff: 1h}}
"""
    # When the pipeline runs, Then all four attempts were made and the job failed
    result = await run_pipeline(write(tmp_path, text))
    assert Flaky.attempts == [1, 2, 3, 4]
    assert len(result.failed) == 1


async def test_an_invalid_file_raises_config_error_with_positions(tmp_path: Path) -> None:
    text = f"version: 1\nname: bad\npipeline:\n  job: {JOBS}:ImportRows\n  retries: 3\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        await run_pipeline(path)
    assert f"{path}:5:3:" in str(raised.value)
