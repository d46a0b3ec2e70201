"""Running the real ``arvel-flow`` command in subprocesses, and reading what it left.

The repository root goes on the subprocess's ``PYTHONPATH`` so that pipelines can
name ``tests.e2e.jobs:...``; ``ARVEL_FLOW_*`` variables of the caller are dropped so
that only the arguments decide the settings.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARVEL_FLOW = Path(sys.executable).parent / "arvel-flow"
RUN_TIMEOUT = 30.0
"""Seconds any one command may take before the test fails."""


@dataclass(frozen=True)
class Result:
    """How one command ended."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Stdout parsed as one JSON document."""
        return json.loads(self.stdout)

    def events(self) -> list[dict[str, Any]]:
        """Stdout parsed as JSON lines."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    def __str__(self) -> str:
        return f"$ arvel-flow {' '.join(self.args)}\n[exit {self.code}]\n{self.stdout}{self.stderr}"


class Running:
    """A command started in the background, its output going to files."""

    def __init__(self, args: tuple[str, ...], cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.args = args
        logs.mkdir(parents=True, exist_ok=True)
        self._out = logs / "stdout"
        self._err = logs / "stderr"
        with self._out.open("wb") as out, self._err.open("wb") as err:
            self.process = subprocess.Popen(
                [str(ARVEL_FLOW), *args], cwd=cwd, env=env, stdout=out, stderr=err
            )

    @property
    def stdout(self) -> str:
        """What the command printed so far."""
        return self._out.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        """What the command wrote on stderr so far."""
        return self._err.read_text(encoding="utf-8")

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the command."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = RUN_TIMEOUT) -> Result:
        """Wait for the command to end (killing it after ``timeout``)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"arvel-flow {' '.join(self.args)} did not end within {timeout}s")
        return Result(self.args, code, self.stdout, self._err.read_text(encoding="utf-8"))

    def stop(self) -> None:
        """Kill the command if it still runs (test teardown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Cli:
    """Runs ``arvel-flow`` in the scratch directory."""

    def __init__(self, cwd: Path, logs: Path) -> None:
        self.cwd = cwd
        self._logs = logs
        self._started: list[Running] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARVEL_FLOW_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        self.env = env

    def __call__(self, *args: str, timeout: float = RUN_TIMEOUT) -> Result:
        """Run a command to its end."""
        try:
            done = subprocess.run(
                [str(ARVEL_FLOW), *args],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"arvel-flow {' '.join(args)} did not end within {timeout}s")
        return Result(args, done.returncode, done.stdout, done.stderr)

    def start(self, *args: str) -> Running:
        """Start a command in the background."""
        running = Running(args, self.cwd, self.env, self._logs / str(len(self._started)))
        self._started.append(running)
        return running

    def stop_all(self) -> None:
        """Kill whatever is still running."""
        for running in self._started:
            running.stop()


def wait_for(condition: Callable[[], bool], *, timeout: float = 15.0, what: str = "") -> None:
    """Poll ``condition`` every 20 ms until it holds; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


def read_lines(path: Path) -> list[str]:
    """The lines of a file, or none when it does not exist yet."""
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def most_at_once(lines: list[str]) -> int:
    """The most jobs running at the same time, from ``start NAME`` / ``NAME`` lines."""
    running = peak = 0
    for line in lines:
        running += 1 if line.startswith("start ") else -1
        peak = max(peak, running)
    return peak


def started_run_id(result: Result | str) -> str:
    """The id in the ``run ID (NAME) started`` line of a run's plain output."""
    stdout = result if isinstance(result, str) else result.stdout
    for line in stdout.splitlines():
        if line.startswith("run ") and line.endswith(") started"):
            return line.split()[1]
    raise AssertionError(f"no 'run ID (NAME) started' line in:\n{stdout}")


def free_port() -> int:
    """A TCP port nothing listens on now (for a command's --metrics-port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> str:
    """The text of ``http://127.0.0.1:PORT/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
