"""``worker --metrics-port`` after a known pipeline: every figure, summed over two processes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from tests.e2e.harness import free_port, scrape
from tests.integration.conftest import Cluster
from tests.integration.test_worker_processes import start_supervised

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _pipeline(cluster: Cluster, path: Path) -> Path:
    """Each way a job attempt ends, a known number of times, then a run that fails."""
    journal = cluster.journal_key
    path.write_text(
        f"""
version: 1
name: metered
defaults:
  retry: {{max_retries: 0}}
pipeline:
  chain:
    - id: ok
      job: tests.integration.jobs:Record
      with: {{journal: "{journal}", tag: ok}}
    - id: flaky
      job: tests.integration.jobs:Flaky
      with: {{journal: "{journal}", tag: flaky, failures: 1}}
      retry: {{max_retries: 1, backoff: [0]}}
    - id: later
      job: tests.integration.jobs:ReleasedOnce
      with: {{journal: "{journal}", tag: later}}
    - id: twice
      batch:
        - job: tests.integration.jobs:Record
          unique_for: 60
          unique_id: "once-{{tag}}"
          each: [{{journal: "{journal}", tag: u}}, {{journal: "{journal}", tag: u}}]
    - id: fails
      job: tests.integration.jobs:Flaky
      with: {{journal: "{journal}", tag: fails, failures: 9}}
"""
    )
    return path


def samples(text: str, name: str) -> dict[str, float]:
    """The samples of metric ``name`` in a scrape, by their labels (``{...}``)."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{[^}}]*\}}) (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


async def test_a_known_pipeline_gives_known_counts_summed_over_two_processes(
    cluster: Cluster, tmp_path: Path
) -> None:
    pytest.importorskip("prometheus_client")
    # Given a worker of two processes serving metrics
    port = free_port()
    await start_supervised(cluster, "--metrics-port", str(port))
    # When a pipeline runs whose jobs succeed, fail, retry, release and repeat a unique one
    run, log = cluster.spawn(
        "run", [str(_pipeline(cluster, tmp_path / "p.yaml")), "--output", "json"]
    )
    assert await asyncio.to_thread(run.wait, 60) == 1, log.read_text()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    run_id = events[0]["run_id"]
    # Then /metrics counts each ending of each job exactly, whichever process ran it
    jobs = "tests.integration.jobs"
    expected = {
        (f"{jobs}:Record", "succeeded"): 2.0,  # ok, and the first of the two unique ones
        (f"{jobs}:Record", "duplicate"): 1.0,
        (f"{jobs}:Flaky", "retried"): 1.0,
        (f"{jobs}:Flaky", "succeeded"): 1.0,
        (f"{jobs}:Flaky", "failed"): 1.0,
        (f"{jobs}:ReleasedOnce", "released"): 1.0,
        (f"{jobs}:ReleasedOnce", "succeeded"): 1.0,
    }
    want = {
        f'{{job="{job}",queue="default",status="{status}"}}': count
        for (job, status), count in expected.items()
    }
    await cluster.wait_for(
        lambda: samples(scrape(port), "arvel_flow_jobs_total") == want, 10, "the counts"
    )
    text = scrape(port)
    assert samples(text, "arvel_flow_runs_total") == {'{pipeline="metered",status="failed"}': 1.0}
    # Each attempt that started is timed once: 7 attempts (the duplicate never started)
    durations = samples(text, "arvel_flow_job_duration_seconds_count")
    assert sum(durations.values()) == 7.0
    assert samples(text, "arvel_flow_jobs_running") == {'{queue="default"}': 0.0}
    # And no label holds a run id or a parameter (the journal key, a tag)
    labels = " ".join(line for line in text.splitlines() if not line.startswith("#"))
    assert run_id not in labels
    assert cluster.journal_key not in labels
    assert "once-u" not in labels
