"""``arvel-flow plan`` and the pure computations behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from arvel_flow.cli.app import cli
from arvel_flow.explain import compute_waits, compute_warnings, compute_worst_case, format_seconds
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from tests.fixtures.spec_paths import EXAMPLES

REDELIVERY = 600.0


@pytest.mark.parametrize(
    ("settings", "waits"),
    [
        (
            JobSettings(max_retries=3, backoff="exponential", backoff_base=2),
            ((2, 2), (4, 4), (8, 8)),
        ),
        (JobSettings(max_retries=2, backoff="exponential", jitter=True), ((1, 2), (2, 4))),
        (JobSettings(max_retries=3, backoff=(1.0, 5.0)), ((1, 1), (5, 5), (5, 5))),
        (JobSettings(max_retries=2, backoff=100.0, max_backoff=30.0), ((30, 30), (30, 30))),
        (JobSettings(max_retries=0), ()),
    ],
)
def test_backoff_timeline(settings: JobSettings, waits: tuple[tuple[float, float], ...]) -> None:
    assert compute_waits(settings) == waits


@pytest.mark.parametrize(
    ("settings", "worst"),
    [
        (JobSettings(max_retries=2, backoff=5.0, timeout_seconds=10), 40.0),
        (JobSettings(max_retries=2, backoff=5.0, timeout_seconds=10, delay=3), 43.0),
        (JobSettings(max_retries=5, backoff=5.0, timeout_seconds=10, retry_until=20), 25.0),
        (JobSettings(timeout_seconds=0), None),
    ],
)
def test_worst_case_duration(settings: JobSettings, worst: float | None) -> None:
    assert compute_worst_case(settings) == worst


@pytest.mark.parametrize(
    ("settings", "warning"),
    [
        (
            JobSettings(timeout_seconds=900),
            "timeout 15m is longer than the broker's redelivery timeout (10m)",
        ),
        (
            JobSettings(timeout_seconds=0),
            "no timeout: on a broker that redelivers unacknowledged jobs (after 10m)",
        ),
        (
            JobSettings(max_retries=5, backoff=60.0, retry_until=150),
            "retry_until 2m30s passes before the backoff of retry 3 ends: "
            "at most 2 of 5 retries can run",
        ),
        (
            JobSettings(
                timeout_seconds=0, middleware=(MiddlewareRef("without_overlapping", {"key": "k"}),)
            ),
            "lock 'k' has no expire_after and the job no timeout: "
            "if its worker dies, the lock is held for 1h",
        ),
        (
            JobSettings(
                middleware=(
                    MiddlewareRef("without_overlapping", {"key": "k", "expire_after": 30.0}),
                )
            ),
            "lock 'k' expires after 30s, before the timeout (5m): two copies may overlap",
        ),
        (JobSettings(unique_id="x-{a}"), "unique_id has no effect without unique_for"),
        (JobSettings(unique_for=60), "the unique lock expires after 1m but the job can take 23m"),
    ],
)
def test_each_trap_is_warned_about(settings: JobSettings, warning: str) -> None:
    warnings = compute_warnings(settings, redelivery_timeout=REDELIVERY)
    assert any(text.startswith(warning) for text in warnings), warnings


def test_sensible_settings_raise_no_warning() -> None:
    settings = JobSettings(timeout_seconds=30, unique_for=3600, unique_id="u-{id}")
    assert compute_warnings(settings, redelivery_timeout=REDELIVERY) == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "0.5s"), (59, "59s"), (90, "1m30s"), (3600, "1h"), (90061, "1d1h1m1s")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_plan_prints_effective_settings_of_every_job() -> None:
    result = CliRunner().invoke(cli, ["plan", str(EXAMPLES / "weekly_digest.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "weekly-digest: 8 job steps, 0 warnings"
    start = lines.index("digests.0 examples.jobs:SendWeeklyDigest x 6")
    assert lines[start + 1 : start + 7] == [
        "retry       3 retries; backoff 0.1s, 0.5s (max 10s, jitter); timeout 30s; never on "
        "examples.jobs:DigestBouncedError",
        "backoff     0.05s..0.1s → 0.25s..0.5s → 0.25s..0.5s",
        "worst case  2m1s",
        "middleware  examples.jobs:Audit(level='info') → "
        "without_overlapping(key='digest-{user_id}', release_after=1.0, expire_after=60.0) "
        "→ the class's own middleware()",
        "queue       mail",
        "unique      digest-{user_id}-{locale} for 1h",
    ]


def test_plan_warns_and_reads_the_redelivery_timeout_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: x\nqueue: {redelivery_timeout: 1m}\npipeline:\n"
        "  job: tests.fixtures.jobs_for_spec:Notify\n  timeout_seconds: 2m\n"
    )
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 0
    assert (
        "warning     timeout 2m is longer than the broker's redelivery timeout (1m)"
        in result.stdout
    )


def test_the_environment_beats_the_file_for_the_redelivery_timeout(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: x\nqueue: {redelivery_timeout: 1m}\npipeline:\n"
        "  job: tests.fixtures.jobs_for_spec:Notify\n  timeout_seconds: 2m\n"
    )
    result = CliRunner(env={"ARVEL_FLOW_REDELIVERY_TIMEOUT": "3600"}).invoke(
        cli, ["plan", str(path)]
    )
    assert "x: 1 job steps, 0 warnings" in result.stdout
