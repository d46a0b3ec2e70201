"""``arvel-flow plan`` and the pure computations behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from arvel_flow import explain
from arvel_flow.cli.app import cli
from arvel_flow.explain import (
    SHOWN_RETRIES,
    compute_waits,
    compute_warnings,
    compute_worst_case,
)
from arvel_flow.queue.backoff import MAX_WAIT, compute_backoff
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from tests.fixtures.calls import count_calls
from tests.fixtures.spec_paths import EXAMPLES


def count_backoffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the waits the plan computes one by one, from a cold cache."""
    explain._steady_wait_runs.cache_clear()
    return count_calls(monkeypatch, explain, "compute_backoff")


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
            "retry_until 2m 30s passes before the backoff of retry 3 ends: "
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
        "worst case  2m 1s",
        "middleware  examples.jobs:Audit(level='info') → "
        "without_overlapping(key='digest-{user_id}', release_after=1.0, expire_after=60.0) "
        "→ examples.jobs:OncePer(key='digest-{user_id}-{locale}', seconds=3600) "
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
        "  retry: {max_retries: 1}\n"
    )
    result = CliRunner(env={"ARVEL_FLOW_REDELIVERY_TIMEOUT": "3600"}).invoke(
        cli, ["plan", str(path)]
    )
    assert "x: 1 job steps, 0 warnings" in result.stdout


def _brute_force_worst_case(settings: JobSettings) -> float:
    """The worst case as the plan once computed it: one retry at a time."""
    elapsed = 0.0
    for attempt in range(1, settings.max_retries + 1):
        longest = compute_backoff(attempt, settings.replace(jitter=False))
        elapsed += settings.timeout_seconds
        if settings.retry_until is not None and elapsed + longest > settings.retry_until:
            return settings.delay + elapsed
        elapsed += longest
    return settings.delay + elapsed + settings.timeout_seconds


@pytest.mark.parametrize(
    "settings",
    [
        JobSettings(max_retries=500, backoff="exponential", timeout_seconds=7),
        JobSettings(max_retries=500, backoff="exponential", max_backoff=100, timeout_seconds=7),
        JobSettings(max_retries=300, backoff="exponential", backoff_base=1.01, timeout_seconds=1),
        JobSettings(max_retries=40, backoff=(1.0, 5.0, 5.0, 30.0), timeout_seconds=3, delay=2),
        JobSettings(max_retries=90, backoff=(1.0, 2.0), timeout_seconds=3, retry_until=100),
        JobSettings(max_retries=900, backoff=60.0, timeout_seconds=30, retry_until=36000),
        JobSettings(max_retries=900, backoff=0.0, timeout_seconds=30, retry_until=900),
    ],
)
def test_the_worst_case_counts_runs_of_equal_waits_exactly(settings: JobSettings) -> None:
    # Given settings whose waits settle into long runs of the same wait
    # When the worst case is computed run by run / Then it is what one retry at a time gives
    assert compute_worst_case(settings) == pytest.approx(_brute_force_worst_case(settings))


@pytest.mark.parametrize("retries", [10_000, 10**9])
def test_a_long_timeline_is_listed_in_part_and_computed_in_bounded_time(
    retries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job retried a huge number of times, waits growing past any float
    settings = JobSettings(max_retries=retries, backoff="exponential", timeout_seconds=1)
    backoffs = count_backoffs(monkeypatch)
    # When its timeline and worst case are computed
    waits = compute_waits(settings)
    worst = compute_worst_case(settings)
    # Then the first waits are listed, the rest capped at a year
    assert waits == tuple((2.0**n, 2.0**n) for n in range(1, SHOWN_RETRIES + 1))
    assert worst is not None
    assert worst > (retries - 25) * MAX_WAIT
    # And once the waits stop growing (at the cap, 2^25 s) the rest are counted, not walked
    assert backoffs[0] <= 30


def test_retry_until_warning_counts_runs_exactly() -> None:
    # Given 10,000 retries a minute apart and a day to retry in
    settings = JobSettings(max_retries=10_000, backoff=60.0, retry_until=86400)
    # Then the retry whose backoff ends past the day is named
    assert any(
        "passes before the backoff of retry 1441 ends: at most 1440 of 10000" in warning
        for warning in compute_warnings(settings, redelivery_timeout=REDELIVERY)
    )


def test_plan_summarises_an_extreme_but_valid_policy(tmp_path: Path) -> None:
    # Given the longest retry policies a file may declare
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: x\npipeline:\n  job: tests.fixtures.jobs_for_spec:Notify\n"
        "  retry: {max_retries: 10000, backoff: exponential, backoff_base: 100, "
        "timeout_seconds: 365d, retry_until: 365d}\n"
    )
    # When it is planned
    result = CliRunner().invoke(cli, ["plan", str(path)])
    # Then the timeline lists ten waits and summarises the rest, in a few lines
    assert result.exit_code == 0, result.output
    assert "→ 365d → ... 9,990 more, each at most 365d" in result.stdout
    assert len(result.stdout.splitlines()) < 15


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{max_retries: 100000000}", "max_retries: Input should be less than or equal to 10000"),
        (
            "{backoff: exponential, backoff_base: 1e200}",
            "backoff_base: Input should be less than or equal to 100",
        ),
        ("{max_backoff: 1e300}", "max_backoff: Input should be at most 365d"),
    ],
)
def test_plan_refuses_policies_past_the_limits(tmp_path: Path, policy: str, message: str) -> None:
    # Given a policy past a documented limit
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: x\npipeline:\n  job: tests.fixtures.jobs_for_spec:Notify\n"
        f"  retry: {policy}\n"
    )
    # When it is planned / Then validation refuses it, at its position
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 2
    assert "p.yaml:5:" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"timeout_seconds": float("inf"), "retry_until": 10},
        {"timeout_seconds": 5, "retry_until": float("inf")},
        {"timeout_seconds": float("nan"), "backoff": float("nan")},
        {"max_retries": 10**9, "backoff": 1.0, "timeout_seconds": 1, "retry_until": 1e300},
        {"max_retries": 10**9, "backoff": "exponential", "backoff_base": 1.000001},
    ],
)
def test_the_plan_of_unvalidated_settings_is_computed_without_error(
    values: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given settings from the Python API, which no validation bounded
    settings = JobSettings.from_values(values)
    backoffs = count_backoffs(monkeypatch)
    # When the plan's figures are computed / Then they come out
    compute_waits(settings)
    compute_worst_case(settings)
    compute_warnings(settings, redelivery_timeout=REDELIVERY)
    # And a billion retries cost at most the distinct waits computed one by one, once
    assert backoffs[0] <= explain._MAX_DISTINCT_WAITS + 1
