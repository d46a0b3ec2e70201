"""One run, one owner: a run executed in place is resumed by one process at a time.

The pipeline's first step waits for a gate file, so a test holds a run mid-job for as
long as it likes; every job notes ``start NAME`` and then ``NAME`` in a log, so a test
can tell which jobs ran to the end, and how often.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from arvel_flow.store import RunOwner, SqliteStore
from tests.e2e.harness import Cli, Result, Running, read_lines, started_run_id, wait_for

pytestmark = pytest.mark.slow

LEASE = 10.0
"""The owner lease of these tests (renewed every 3.3 s): long enough for a few commands
to run while it lasts, short enough to wait for it to expire."""


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "log"


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def gated(pipeline: Callable[[str, str], Path], log: Path, gate: Path) -> Path:
    """A chain: a job that waits for the gate, then two quick ones."""
    at, door = json.dumps(str(log)), json.dumps(str(gate))
    return pipeline(
        "gated",
        f"""
version: 1
name: gated
pipeline:
  chain:
    - {{id: wait, job: tests.e2e.jobs:Gate, with: {{log: {at}, name: wait, gate: {door}}}}}
    - {{id: next, job: tests.e2e.jobs:Mark, with: {{log: {at}, name: next}}}}
    - {{id: last, job: tests.e2e.jobs:Mark, with: {{log: {at}, name: last}}}}
""",
    )


@pytest.fixture
def owned_cli(cli: Cli) -> Cli:
    """The command with a short owner lease."""
    cli.env["ARVEL_FLOW_OWNER_LEASE"] = str(LEASE)
    return cli


def finished(log: Path) -> Counter[str]:
    """How often each job ran to the end."""
    return Counter(line for line in read_lines(log) if not line.startswith("start "))


def starts(log: Path, name: str) -> int:
    """How often job ``name`` began."""
    return read_lines(log).count(f"start {name}")


def start_waiting_run(cli: Cli, file: Path, store: str, log: Path) -> tuple[Running, str]:
    """Start a run of ``file`` and wait until its first job waits at the gate."""
    running = cli.start("run", str(file), "--store", store)
    wait_for(lambda: starts(log, "wait") == 1, what="the first job to start")
    wait_for(lambda: "started" in running.stdout, what="the run's first line")
    run_id = started_run_id(running.stdout)
    # Writes are committed in groups: wait until the run is there for all to see.
    path = Path(store.removeprefix("sqlite:"))
    wait_for(lambda: asyncio.run(_recorded(path, run_id)), what="the run to be committed")
    return running, run_id


def interrupt(running: Running) -> Result:
    """Ctrl-C twice: the job waiting at the gate is cancelled; the run can be resumed."""
    running.signal(signal.SIGINT)
    time.sleep(0.3)
    running.signal(signal.SIGINT)
    return running.wait()


def test_two_resumes_at_once_one_runs_the_other_is_refused_naming_the_owner(
    owned_cli: Cli, gated: Path, store: str, log: Path, gate: Path
) -> None:
    # Given an interrupted run whose first job had started
    first, run_id = start_waiting_run(owned_cli, gated, store, log)
    assert interrupt(first).code == 130

    # When two resumes start at once
    resumes = [owned_cli.start("run", "--resume", run_id, "--store", store) for _ in range(2)]
    wait_for(lambda: any(r.process.poll() is not None for r in resumes), what="one to end")
    refused = next(r for r in resumes if r.process.poll() is not None).wait()
    winner = next(r for r in resumes if r.process.poll() is None)
    gate.touch()
    won = winner.wait()

    # Then one was refused with exit 2, naming the owner; the other finished the run
    assert refused.code == 2, refused
    assert f"run {run_id} is being executed by pid {winner.process.pid} on " in refused.stderr
    assert socket.gethostname() in refused.stderr
    assert "still running on this host" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "resumed" not in refused.stdout
    assert won.code == 0, won
    # And each job ran to the end exactly once; the refused resume started nothing
    assert finished(log) == Counter(["wait", "next", "last"])
    assert starts(log, "wait") == 2, "once cancelled by Ctrl-C, once by the winner"


def test_a_live_run_cannot_be_resumed_even_with_force(
    owned_cli: Cli, gated: Path, store: str, log: Path, gate: Path
) -> None:
    # Given a run in progress, its first job waiting at the gate
    running, run_id = start_waiting_run(owned_cli, gated, store, log)

    # When it is resumed elsewhere, with and without --force
    plain = owned_cli("run", "--resume", run_id, "--store", store)
    forced = owned_cli("run", "--resume", run_id, "--store", store, "--force")
    gate.touch()
    done = running.wait()

    # Then both are refused, and the run finishes in its own process, each job once
    for refused in (plain, forced):
        assert refused.code == 2, refused
        assert f"pid {running.process.pid} on {socket.gethostname()}" in refused.stderr
    assert "--force never takes over a live process" in forced.stderr
    assert done.code == 0, done
    assert finished(log) == Counter(["wait", "next", "last"])
    assert starts(log, "wait") == 1


def kill_mid_run(cli: Cli, file: Path, store: str, log: Path) -> tuple[int, str]:
    """Start a run, SIGKILL it while its first job waits; its pid and run id."""
    running, run_id = start_waiting_run(cli, file, store, log)
    running.process.kill()
    assert running.wait().code == -signal.SIGKILL
    return running.process.pid, run_id


def test_a_killed_owner_blocks_a_resume_until_forced_then_every_job_runs_once(
    owned_cli: Cli, gated: Path, store: str, log: Path, gate: Path
) -> None:
    # Given a run whose process was killed (SIGKILL) while its lease was live
    pid, run_id = kill_mid_run(owned_cli, gated, store, log)

    # When its status is asked, it is resumed at once, then with --force
    status = owned_cli("status", run_id, "--store", store)
    document = owned_cli("status", run_id, "--store", store, "--format", "json").json()
    plain = owned_cli("run", "--resume", run_id, "--store", store)
    forced = owned_cli.start("run", "--resume", run_id, "--store", store, "--force")
    wait_for(lambda: starts(log, "wait") == 2, what="the forced resume to start the job")
    gate.touch()
    done = forced.wait()

    # Then status names the owner and the command that takes over
    assert f"executed by pid {pid} on {socket.gethostname()}" in status.stdout, status
    assert f"resume with: arvel-flow run --resume {run_id} --store {store} --force" in (
        status.stdout
    )
    assert document["owner"]["pid"] == pid
    # And the plain resume is refused, saying the owner is gone and how to take over
    assert plain.code == 2, plain
    assert f"run {run_id} is being executed by pid {pid} on {socket.gethostname()}" in (
        plain.stderr
    )
    assert "last seen" in plain.stderr
    assert "that process no longer exists; take the run over with --force" in plain.stderr
    # And the forced one takes over, saying from whom, and finishes with each job once
    assert done.code == 0, done
    assert f"took run {run_id} over from pid {pid}" in done.stderr
    assert finished(log) == Counter(["wait", "next", "last"])


def test_a_killed_owner_s_run_resumes_without_force_once_its_lease_expired(
    owned_cli: Cli, gated: Path, store: str, log: Path, gate: Path
) -> None:
    # Given a run whose process was killed, and its lease since expired
    pid, run_id = kill_mid_run(owned_cli, gated, store, log)
    gate.touch()
    path = Path(store.removeprefix("sqlite:"))
    wait_for(
        lambda: asyncio.run(_owner(path, run_id)) is None,
        timeout=LEASE * 2,
        what="the lease to expire",
    )

    # When it is resumed
    resumed = owned_cli("run", "--resume", run_id, "--store", store)

    # Then it finishes, each job once
    assert resumed.code == 0, resumed
    assert f"took run {run_id} over from pid {pid}" in resumed.stderr
    assert finished(log) == Counter(["wait", "next", "last"])


async def _recorded(path: Path, run_id: str) -> bool:
    store = SqliteStore(path)
    try:
        return await store.get_run(run_id) is not None
    finally:
        await store.close()


async def _owner(path: Path, run_id: str) -> RunOwner | None:
    store = SqliteStore(path)
    try:
        return await store.get_run_owner(run_id, time.time())
    finally:
        await store.close()


async def _take_over(path: Path, run_id: str) -> RunOwner:
    """Force the run out of its owner's hands, as a process on another host would."""
    store = SqliteStore(path)
    try:
        current = await store.get_run_owner(run_id, time.time())
        assert current is not None
        now = time.time()
        thief = RunOwner("thief", "elsewhere", 7, now, now, now + LEASE)
        return await store.take_run_owner(run_id, thief, replacing=current.owner_id)
    finally:
        await store.close()


def test_an_owner_whose_run_was_taken_over_stops_and_says_so(
    owned_cli: Cli, gated: Path, store: str, log: Path, gate: Path
) -> None:
    # Given a run in progress, its first job waiting at the gate
    running, run_id = start_waiting_run(owned_cli, gated, store, log)

    # When another host's process takes it over (--force there), and the gate opens
    path = Path(store.removeprefix("sqlite:"))
    assert asyncio.run(_take_over(path, run_id)).owner_id == "thief"
    result = running.wait(timeout=LEASE * 3)

    # Then the old owner stops within a renewal, with exit 130, naming the new owner
    assert result.code == 130, result
    assert f"run {run_id} was taken over by pid 7 on elsewhere" in result.stderr
    assert "this process stopped running it" in result.stderr
    assert "Traceback" not in result.stderr
    # And it cut its running job short and started no other: the new owner runs them
    gate.touch()
    time.sleep(0.3)
    assert finished(log) == Counter()
    status = owned_cli("status", run_id, "--store", store, "--format", "json").json()
    assert status["status"] == "running"
    assert "wait" in status["pending"]
