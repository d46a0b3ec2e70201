"""Fixtures for end-to-end runs of the real ``arvel-flow`` command.

Every run works in a scratch directory holding a copy of ``examples/`` and a store
under the test's ``tmp_path``, so nothing touches the repository's ``.arvel-flow/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, Cli


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch working directory with a copy of the examples."""
    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(
        REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


@pytest.fixture
def cli(workspace: Path, tmp_path: Path) -> Iterator[Cli]:
    """The ``arvel-flow`` command; anything left running is killed afterwards."""
    runner = Cli(workspace, tmp_path / "logs")
    yield runner
    runner.stop_all()


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A sqlite store of this test's own."""
    return f"sqlite:{tmp_path / 'state.db'}"


@pytest.fixture
def pipeline(tmp_path: Path) -> Callable[[str, str], Path]:
    """Writes a pipeline file: ``pipeline(name, yaml_text)`` → its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
