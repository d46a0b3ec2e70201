"""The sqlite store is private to its owner, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from arvel_flow.store.contracts import RunRecord
from arvel_flow.store.sqlite import SqliteStore


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


@pytest.fixture
def no_umask() -> Iterator[None]:
    """A umask that takes nothing away: files would be 0666 and directories 0777."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("no_umask")
async def test_directories_made_are_0700_and_every_database_file_0600(tmp_path: Path) -> None:
    # Given no store yet, and two directories to make
    path = tmp_path / "made" / "here" / "state.db"
    # When a store is opened and written to (sqlite adds its -wal and -shm files)
    store = SqliteStore(path)
    await store.create_run(RunRecord("r", "n", created_at=1.0), {"format": 1})
    files = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]
    # Then the directories it made are 0700 and the database and its sidecars 0600
    try:
        assert mode(tmp_path / "made") == mode(path.parent) == oct(0o700)
        assert [mode(file) for file in files] == [oct(0o600)] * 3
    finally:
        await store.close()


@pytest.mark.usefixtures("no_umask")
async def test_an_existing_database_is_tightened_and_an_existing_directory_left_alone(
    tmp_path: Path,
) -> None:
    # Given a user's directory (0755) holding a database written world-readable
    directory = tmp_path / "mine"
    directory.mkdir(mode=0o755)
    path = directory / "state.db"
    await SqliteStore(path).close()
    path.chmod(0o644)
    # When it is opened again
    await SqliteStore(path).close()
    # Then the file is 0600 again, and the directory keeps the mode its owner gave it
    assert mode(path) == oct(0o600)
    assert mode(directory) == oct(0o755)
