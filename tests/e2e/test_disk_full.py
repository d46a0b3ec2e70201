"""A disk that fills up under a run: exit 3 with one message, then ``--resume`` finishes it.

The store lives on a small tmpfs of the test's own (mounting needs root, which the test
machines and CI have); the test fills it from outside while the run goes, as another
program filling the disk would. The jobs' journal lives outside the tmpfs.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CI
from tests.e2e.harness import Cli, started_run_id, wait_for
from tests.e2e.test_interrupts import CALLBACKS, NAMES, batch_pipeline, finished

pytestmark = pytest.mark.slow

DISK_SIZE = "4m"
"""Room for the run's store (its write-ahead log grows to a few hundred KiB here)."""


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"{reason} (CI=true: these tests must run)")
    pytest.skip(reason)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of `DISK_SIZE` mounted for this test only, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        _unavailable("mounting a small tmpfs to fill needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        _unavailable(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        # Lazy: a command killed by the test may still hold the store open.
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """Write zeros to a file on ``disk`` until no byte more fits; the file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            _write_until_full(fd, size)
    finally:
        os.close(fd)
    return filler


def _write_until_full(fd: int, size: int) -> None:
    try:
        while True:
            os.write(fd, bytes(size))
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise


def test_a_disk_that_fills_mid_run_stops_it_with_exit_3_and_resume_finishes_it(
    cli: Cli, pipeline: Callable[[str, str], Path], small_disk: Path, tmp_path: Path
) -> None:
    # Given a run of 30 jobs (then callbacks and a last step) whose store is on a small disk
    log = tmp_path / "log"
    database = small_disk / "state.db"
    store = f"sqlite:{database}"
    running = cli.start("run", str(batch_pipeline(pipeline, log)), "--store", store)
    wait_for(lambda: len(finished(log)) >= 6, what="6 jobs to finish")

    # When the disk fills up
    filler = fill(small_disk)
    stopped = running.wait()  # (the hang guard: RUN_TIMEOUT)

    # Then the command exits 3, with one message and no traceback
    assert stopped.code == 3, stopped
    assert "Traceback" not in stopped.stdout + stopped.stderr, stopped
    message = f"the state store {database} could not be written: database or disk is full"
    assert stopped.stderr.splitlines() == [f"error: {message}"], stopped
    # And nothing more ran after it stopped
    run_id = started_run_id(stopped)
    ran = len(finished(log))
    assert ran < len(NAMES)

    # When space is freed and the run resumed, taking over from the stopped process
    # (its owner lease could not be released on a full disk)
    filler.unlink()
    resumed = cli("run", "--resume", run_id, "--store", store, "--force")

    # Then it finishes: every job has run (those whose finish was lost, twice at most)
    # and each callback and the last step exactly once
    assert resumed.code == 0, resumed
    runs = Counter(finished(log))
    assert set(NAMES) <= set(runs)
    assert max(runs[name] for name in NAMES) <= 2
    assert [runs[name] for name in CALLBACKS] == [1, 1, 1]
    status = cli("status", run_id, "--store", store, "--format", "json").json()
    assert status["status"] == "succeeded"
    assert status["progress"]["finished"] == status["progress"]["total"]


def test_a_run_started_on_a_full_disk_exits_3_with_one_message_and_runs_nothing(
    cli: Cli, pipeline: Callable[[str, str], Path], small_disk: Path, tmp_path: Path
) -> None:
    # Given a store on a disk that is full (the store itself exists already)
    database = small_disk / "state.db"
    store = f"sqlite:{database}"
    # (read-only commands such as `runs` create no store: `failed flush` writes)
    assert cli("failed", "flush", "--store", store).code == 0
    fill(small_disk)
    log = tmp_path / "log"

    # When a run starts
    stopped = cli("run", str(batch_pipeline(pipeline, log, jobs=3)), "--store", store)

    # Then it exits 3 with the one message (opening needs room too), and no job ran
    assert stopped.code == 3, stopped
    message = (
        f"the state store {database} could not be opened: "
        "disk I/O error (no space left on the device)"
    )
    assert stopped.stderr.splitlines() == [f"error: {message}"], stopped
    assert "Traceback" not in stopped.stdout, stopped
    assert finished(log) == []
