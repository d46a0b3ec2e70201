"""``arvel-flow top --once``: one snapshot of a store, and a broker that cannot be reached."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Cli, wait_for

pytestmark = pytest.mark.slow


def test_top_once_shows_the_recent_failures_of_a_store(
    cli: Cli, pipeline: Callable[[str, str], Path], store: str, tmp_path: Path
) -> None:
    # Given a finished run whose one job failed for good
    marker = json.dumps(str(tmp_path / "marker"))
    failing = pipeline(
        "failing",
        f"""
version: 1
name: failing
defaults:
  retry: {{max_retries: 0}}
pipeline:
  id: only
  job: tests.e2e.jobs:FailsUntil
  with: {{marker: {marker}}}
""",
    )
    assert cli("run", str(failing), "--store", store).code == 1

    # When top prints one snapshot, as JSON and as text (no broker: the store alone)
    document = cli("top", "--once", "--store", store, "--format", "json")
    text = cli("top", "--once", "--store", store)

    # Then the failure is there, and no run is in progress nor any worker seen
    assert document.code == 0, document
    snapshot = document.json()
    assert (snapshot["runs"], snapshot["workers"], snapshot["queues"]) == ([], [], [])
    [failure] = snapshot["failures"]
    assert failure["job"] == "tests.e2e.jobs:FailsUntil"
    assert failure["message"] == "marker is not there yet"
    assert text.code == 0, text
    assert "recent failures" in text.stdout
    assert "RuntimeError: marker is not there yet" in text.stdout


@pytest.mark.parametrize(
    ("broker", "url", "named"),
    [
        ("redis", "redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"),
        ("nats", "nats://127.0.0.1:1", "NATS nats://127.0.0.1:1"),
        ("rabbitmq", "amqp://guest:secret@127.0.0.1:1/", "abbitMQ amqp://guest:***@127.0.0.1:1/"),
    ],
)
def test_a_broker_that_cannot_be_reached_exits_3_naming_it_without_its_password(
    cli: Cli, store: str, broker: str, url: str, named: str
) -> None:
    result = cli("top", "--once", "--store", store, "--broker", broker, "--url", url)
    assert result.code == 3, result
    assert named in result.stderr
    assert "secret" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr  # said once, no traceback


def test_json_needs_once(cli: Cli, store: str) -> None:
    result = cli("top", "--store", store, "--format", "json")
    assert result.code == 2, result
    assert "--format json prints one snapshot: give --once too" in result.stderr


def test_the_live_view_refreshes_until_ctrl_c_then_exits_0(cli: Cli, store: str) -> None:
    # Given top watching a store
    running = cli.start("top", "--store", store, "--interval", "0.1")
    wait_for(lambda: "recent failures" in running.stdout, what="the first view")
    # When Ctrl-C comes
    running.signal(signal.SIGINT)
    result = running.wait()
    # Then it leaves quietly
    assert result.code == 0, result
    assert "Traceback" not in result.stderr
