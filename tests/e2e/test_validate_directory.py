"""``validate DIR``: the pipelines directly in a directory, each reported (real command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Cli

pytestmark = pytest.mark.slow

VALID = (
    "version: 1\nname: ok\npipeline:\n  job: tests.e2e.jobs:append_line\n"
    "  with: {path: x, line: y}\n"
)
INVALID = (
    "version: 1\nname: bad\npipeline:\n  job: tests.e2e.jobs:append_line\n"
    "  with: {path: x, line: y}\n  retries: 3\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a pipelines/ directory of two pipelines, a compose file and a nested one."""
    pipelines = tmp_path / "work" / "pipelines"
    (pipelines / "nested").mkdir(parents=True)
    (pipelines / "good.yaml").write_text(VALID, encoding="utf-8")
    (pipelines / "bad.yml").write_text(INVALID, encoding="utf-8")
    (pipelines / "docker-compose.yml").write_text("version: '3'\nservices: {}\n", encoding="utf-8")
    (pipelines / "nested" / "deep.yaml").write_text(INVALID, encoding="utf-8")
    return tmp_path / "work"


def test_validate_dir_reports_each_pipeline_and_exits_with_the_worst(
    project: Path, tmp_path: Path
) -> None:
    # Given a directory of pipelines, one of them invalid
    cli = Cli(project, tmp_path / "logs")
    # When the directory is validated
    result = cli("validate", "pipelines")
    # Then each pipeline is reported, the non-pipeline skipped, and the exit code is 2
    assert result.code == 2, result
    lines = result.stdout.splitlines()
    assert "pipelines/bad.yml:6:3: error: pipeline.retries: unknown key" in lines[0], result
    assert "pipelines/good.yaml: ok" in lines
    assert (
        "pipelines/docker-compose.yml: skipped (not a pipeline: no top-level 'pipeline:' key)"
        in lines
    )
    assert "deep.yaml" not in result.stdout  # one level, like kubectl apply -f DIR
    assert lines[-1] == "1 error in 1 of 2 files"


def test_validate_dir_as_json_lists_files_and_skipped(project: Path, tmp_path: Path) -> None:
    # Given the same directory, the invalid pipeline removed
    (project / "pipelines" / "bad.yml").unlink()
    # When it is validated as JSON, with a file beside it
    result = Cli(project, tmp_path / "logs")(
        "validate", "--format", "json", "pipelines", "pipelines/good.yaml"
    )
    # Then the document lists each file once per argument and the skipped one; exit 0
    assert result.code == 0, result
    document = result.json()
    assert document["valid"] is True
    assert [f["file"] for f in document["files"]] == ["pipelines/good.yaml"] * 2
    assert document["skipped"] == [
        {
            "file": "pipelines/docker-compose.yml",
            "reason": "not a pipeline: no top-level 'pipeline:' key",
        }
    ]
