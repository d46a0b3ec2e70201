"""``--metrics-port``: a running command serves Prometheus figures at /metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, free_port, read_lines, scrape, wait_for

pytestmark = pytest.mark.slow


def test_run_serves_metrics_while_the_run_goes_on(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    pytest.importorskip("prometheus_client")
    log, gate = tmp_path / "log", tmp_path / "gate"
    at, door = json.dumps(str(log)), json.dumps(str(gate))
    path = pipeline(
        "metered",
        f"""
version: 1
name: metered
pipeline:
  chain:
    - {{id: first, job: tests.e2e.jobs:Touch, with: {{path: {json.dumps(str(tmp_path / "t"))}}}}}
    - {{id: wait, job: tests.e2e.jobs:Gate, with: {{log: {at}, name: wait, gate: {door}}}}}
""",
    )
    port = free_port()
    running = cli.start(
        "run", str(path), "--store", store, "--output", "plain", "--metrics-port", str(port)
    )
    wait_for(lambda: "start wait" in read_lines(log), what="the gated job to start")
    text = scrape(port)
    job = 'job="tests.e2e.jobs:Touch",queue="default",status="succeeded"'
    assert f"arvel_flow_jobs_total{{{job}}} 1.0" in text
    assert 'arvel_flow_jobs_running{queue="default"} 1.0' in text
    gate.touch()
    assert running.wait().code == 0, running.stderr


@pytest.mark.parametrize("exists", [True, False], ids=["a directory", "no directory"])
def test_run_keeps_its_figures_in_memory_whatever_prometheus_multiproc_dir_says(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str, exists: bool
) -> None:
    pytest.importorskip("prometheus_client")
    # Given PROMETHEUS_MULTIPROC_DIR set (for another program, say) to a directory or not
    directory = tmp_path / "multiproc"
    if exists:
        directory.mkdir()
    cli.env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    log, gate = tmp_path / "log", tmp_path / "gate"
    at, door = json.dumps(str(log)), json.dumps(str(gate))
    path = pipeline(
        "metered",
        f"""
version: 1
name: metered
pipeline:
  chain:
    - {{id: first, job: tests.e2e.jobs:Touch, with: {{path: {json.dumps(str(tmp_path / "t"))}}}}}
    - {{id: wait, job: tests.e2e.jobs:Gate, with: {{log: {at}, name: wait, gate: {door}}}}}
""",
    )
    port = free_port()
    # When a single process runs with --metrics-port
    running = cli.start("run", str(path), "--store", store, "--metrics-port", str(port))
    wait_for(lambda: "start wait" in read_lines(log), what="the gated job to start")
    # Then it serves its own figures
    text = scrape(port)
    job = 'job="tests.e2e.jobs:Touch",queue="default",status="succeeded"'
    assert f"arvel_flow_jobs_total{{{job}}} 1.0" in text
    assert 'arvel_flow_jobs_running{queue="default"} 1.0' in text
    gate.touch()
    result = running.wait()
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    # And wrote nothing in that directory (nor made it)
    assert (list(directory.iterdir()) if exists else directory.exists()) in ([], False)


def test_metrics_port_without_prometheus_client_says_how_to_install(
    cli: Cli, tmp_path: Path, store: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "prometheus_client.py").write_text("raise ImportError('not installed')\n")
    cli.env["PYTHONPATH"] = f"{blocker}:{cli.env['PYTHONPATH']}"
    result = cli("run", "examples/quickstart.yaml", "--store", store, "--metrics-port", "9")
    assert result.code == 2, result
    assert "pip install 'arvel-flow[metrics]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_scheduler_serves_the_runs_it_started(
    cli: Cli, pipeline: Callable[[str, str], Path], tmp_path: Path, store: str
) -> None:
    pytest.importorskip("prometheus_client")
    path = pipeline(
        "ticking",
        f"""
version: 1
name: ticking
schedule:
  - id: often
    every: 1s
pipeline:
  job: tests.e2e.jobs:Touch
  with: {{path: {json.dumps(str(tmp_path / "t"))}}}
""",
    )
    port = free_port()
    running = cli.start("scheduler", str(path), "--store", store, "--metrics-port", str(port))
    wait_for(lambda: "scheduler: ready" in running.stderr, timeout=60, what="scheduler ready")
    wait_for(
        lambda: 'arvel_flow_runs_total{pipeline="ticking",status="succeeded"}' in scrape(port),
        what="a scheduled run counted",
    )
    assert 'arvel_flow_jobs_total{job="tests.e2e.jobs:Touch"' in scrape(port)
    running.stop()
