"""Which files of a directory are pipelines: ``*.yaml`` / ``*.yml`` with a ``pipeline:`` key."""

from __future__ import annotations

from pathlib import Path

from arvel_flow.pipeline.discover import find_pipeline_files


def test_only_yaml_files_with_a_top_level_pipeline_key_are_pipelines(tmp_path: Path) -> None:
    # Given pipelines (one with a syntax error), non-pipeline YAML, other files, a subdirectory
    (tmp_path / "b.yml").write_text("version: 1\npipeline:\n  job: [unclosed\n")
    (tmp_path / "a.yaml").write_text("# a comment\n'pipeline' : {job: x}\n")
    (tmp_path / "compose.yaml").write_text("services:\n  pipeline: {}\n")
    (tmp_path / "notes.txt").write_text("pipeline: no\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("pipeline: {}\n")
    # When the directory is searched
    found = find_pipeline_files(tmp_path)
    # Then the pipelines are listed sorted, the other YAML skipped with why, nothing below
    assert found.pipelines == (tmp_path / "a.yaml", tmp_path / "b.yml")
    assert found.skipped == (
        (tmp_path / "compose.yaml", "not a pipeline: no top-level 'pipeline:' key"),
    )
