"""The pre-commit hooks this repository offers other projects."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.fixtures.spec_paths import REPO

HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_both_hooks_run_validate() -> None:
    assert {hook["id"]: hook["entry"] for hook in HOOKS} == {
        "arvel-flow-validate": "arvel-flow validate --no-strict",
        "arvel-flow-validate-strict": "arvel-flow validate --strict",
    }
    assert {hook["id"]: hook["language"] for hook in HOOKS} == {
        "arvel-flow-validate": "python",
        "arvel-flow-validate-strict": "system",
    }


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        ("pipelines/nightly.yaml", True),
        ("ops/pipeline/import.yml", True),
        ("jobs/import.flow.yaml", True),
        ("config.yaml", False),
        (".github/workflows/ci.yml", False),
    ],
)
def test_hooks_look_at_pipeline_files_only(path: str, matched: bool) -> None:
    assert all(bool(re.search(hook["files"], path)) == matched for hook in HOOKS)
