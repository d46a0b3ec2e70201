"""The front door as the README shows it: ``examples/embed.py`` runs, and the README shows it.

A fenced block in README.md preceded by ``<!-- example: PATH -->`` must be the file at
PATH, verbatim, so that the README's Python API example is the one this test runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.e2e.harness import REPO

pytestmark = pytest.mark.slow

_SHOWN = re.compile(r"<!-- example: (?P<path>\S+) -->\s*```python\n(?P<code>.*?)```", re.DOTALL)


def test_the_embedding_example_runs_both_pipelines() -> None:
    # Given the example, run from the repository root with no ARVEL_FLOW_* variables
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARVEL_FLOW_")}
    # When it runs
    done = subprocess.run(
        [sys.executable, "-m", "examples.embed"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then both runs succeed, the second through a handle with an id
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "quickstart succeeded: 2/2 jobs"
    assert re.fullmatch(r"started run [0-9a-f]{12}", lines[1]), lines
    # (its flaky chunks may, rarely, fail past their allowance)
    assert re.fullmatch(r"import-fanout (succeeded|failed): \d+ chunk\(s\) failed", lines[-1])
    assert "Traceback" not in done.stderr


def test_examples_the_readme_shows_are_the_files_verbatim() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for shown in _SHOWN.finditer(readme):
        path = REPO / shown["path"]
        assert path.read_text(encoding="utf-8") == shown["code"], f"README shows {path} stale"
