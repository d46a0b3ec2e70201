"""`simulate` and ``run_pipeline(fail=...)``: the real orchestration on a virtual clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from arvel_flow.errors import FaultSpecError
from arvel_flow.explain import compute_total_wait, compute_worst_case
from arvel_flow.launch import compile_file
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.plan import JobNode, Plan
from arvel_flow.testing import FakeClock, run_pipeline
from arvel_flow.testing.faults import Fault, parse_faults
from arvel_flow.testing.simulation import DEFAULT_RELEASE, compute_release_delay, simulate
from tests.unit.testing.jobs import ImportRows

JOBS = "tests.unit.testing.jobs"


@pytest.fixture(autouse=True)
def _clear_runs() -> None:
    ImportRows.runs.clear()


def _plan(tmp_path: Path, step: str, pipeline: str | None = None) -> Plan:
    text = f"""\
version: 1
name: sim
pipeline:
  {pipeline or "chain"}:
    - id: import
      job: {JOBS}:ImportRows
      with: {{path: rows.csv}}
{step}
    - id: report
      job: {JOBS}:Report
"""
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return compile_file(str(path), {})[0]


POLICIES = {
    "fixed": "retry: {max_retries: 3, backoff: 60, timeout_seconds: 30}",
    "exponential, capped, jitter": (
        "retry: {max_retries: 8, backoff: exponential, backoff_base: 3, max_backoff: 2m, "
        "jitter: true, timeout_seconds: 10}"
    ),
    "list, retry_until": (
        "retry: {max_retries: 5, backoff: [1, 5, 30], retry_until: 10m, timeout_seconds: 20}"
    ),
    "retry_until cuts the retries": (
        "retry: {max_retries: 10, backoff: 100, retry_until: 5m, timeout_seconds: 30}"
    ),
    "delay": "delay: 45s\n      retry: {max_retries: 2, backoff: [10, 20], timeout_seconds: 5}",
}


def _import_settings(plan: Plan):  # type: ignore[no-untyped-def]
    node = plan.nodes["import"]
    assert isinstance(node, JobNode)
    return node.job.settings


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
async def test_a_step_timing_out_every_attempt_takes_plans_worst_case(
    tmp_path: Path, policy: str
) -> None:
    # Given a step's retry policy, as plan computes its worst case
    plan = _plan(tmp_path, f"      {policy}")
    worst = compute_worst_case(_import_settings(plan))
    # When every attempt of it times out in a simulation
    simulation = await simulate(plan, [Fault("import", None, "timeout")])
    # Then the step failed after exactly plan's worst case of virtual time
    assert simulation.steps["import"].state == "failed"
    assert worst is not None
    assert simulation.elapsed == pytest.approx(worst)


@pytest.mark.parametrize(
    "policy", [POLICIES["fixed"], POLICIES["exponential, capped, jitter"], POLICIES["delay"]]
)
async def test_a_step_failing_every_attempt_waits_plans_total_wait(
    tmp_path: Path, policy: str
) -> None:
    # Given a policy without retry_until, When every attempt fails at once
    plan = _plan(tmp_path, f"      {policy}")
    settings = _import_settings(plan)
    simulation = await simulate(plan, [Fault("import")])
    # Then it made every attempt, and the run took the delay and the longest waits
    assert simulation.steps["import"].attempts == settings.max_retries + 1
    assert simulation.elapsed == pytest.approx(settings.delay + compute_total_wait(settings))


async def test_a_three_hour_backoff_timeline_is_simulated_at_once(tmp_path: Path) -> None:
    # Given 13 retries with exponential backoff: over 4.5 hours of waiting
    policy = "      retry: {max_retries: 13, backoff: exponential, backoff_base: 2}"
    plan = _plan(tmp_path, policy)
    clock = FakeClock()
    # When every attempt fails
    began = time.perf_counter()
    simulation = await simulate(plan, [Fault("import")], clock=clock)
    wall = time.perf_counter() - began
    # Then 13 waits went through the clock, virtual time moved over 3 hours, and the
    # run failed (the wall-time bound only guards against a real wait creeping in)
    assert len([s for s in clock.sleeps if s > 0]) == 13
    assert simulation.elapsed >= 3 * 3600
    assert simulation.exit_code == 1
    assert wall < 5.0


async def test_batch_members_time_out_side_by_side(tmp_path: Path) -> None:
    # Given a batch of three members without retries and a 30 s timeout
    step = f"""\
    - id: mail
      batch:
        - id: digests
          job: {JOBS}:SendDigest
          each: [{{user_id: 1}}, {{user_id: 2}}, {{user_id: 3}}]
          retry: {{max_retries: 0, timeout_seconds: 30}}
      allow_failures: true"""
    plan = _plan(tmp_path, step)
    # When each times out
    simulation = await simulate(plan, parse_faults(["digests[*]:timeout"]))
    # Then they ran at once: 30 s in all, not 90 s, and the batch's allowance held
    assert simulation.elapsed == 30
    assert simulation.result.status == "succeeded"
    starts = [e.time for e in simulation.events if e.event == "job.started"]
    assert [at - simulation.started_at for at in starts[1:4]] == [0, 0, 0]


async def test_a_released_attempt_comes_back_after_its_lock_release_delay(tmp_path: Path) -> None:
    step = '      middleware: [{without_overlapping: {key: "k", release_after: 7s}}]'
    plan = _plan(tmp_path, step)
    simulation = await simulate(plan, parse_faults(["import@1:release"]))
    released = [e for e in simulation.events if e.event == "job.released"]
    assert [e.data["delay"] for e in released] == [7.0]
    assert simulation.steps["import"].attempts == 1
    assert simulation.elapsed == 7.0


async def test_a_failure_raises_what_retry_on_names_so_that_it_is_retried(tmp_path: Path) -> None:
    policy = "      retry: {max_retries: 1, backoff: 1, retry_on: [ConnectionError]}"
    plan = _plan(tmp_path, policy)
    simulation = await simulate(plan, parse_faults(["import@1"]))
    retried = [e for e in simulation.events if e.event == "job.retrying"]
    assert retried[0].data["error"] == "ConnectionError: simulated failure of import"
    assert simulation.result.status == "succeeded"


async def test_no_job_code_runs_in_a_simulation(tmp_path: Path) -> None:
    # Report raises if it runs; ImportRows counts its runs
    simulation = await simulate(_plan(tmp_path, ""))
    assert ImportRows.runs == []
    assert simulation.result.status == "succeeded"


async def test_an_unknown_step_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(FaultSpecError, match="the job steps are: import, report"):
        await simulate(_plan(tmp_path, ""), parse_faults(["imprt"]))


async def test_run_pipeline_fails_the_attempts_named_and_runs_the_others(tmp_path: Path) -> None:
    # Given a chain whose report raises if it runs
    plan_file = tmp_path / "p.yaml"
    plan_file.write_text(
        f"""\
version: 1
name: sim
pipeline:
  chain:
    - id: import
      job: {JOBS}:ImportRows
      with: {{path: rows.csv}}
      retry: {{max_retries: 2, backoff: 1h}}
    - id: report
      job: {JOBS}:Report
      retry: {{max_retries: 0}}
"""
    )
    clock = FakeClock()
    # When import's first attempt and every report attempt are failed
    result = await run_pipeline(plan_file, fail={"import": [1], "report": "all"}, clock=clock)
    # Then import ran once for real (its second attempt, an hour later), report never
    assert ImportRows.runs == ["rows.csv"]
    assert result.succeeded == ("import",)
    assert list(result.failed) == ["report"]
    assert clock.sleeps == [3600.0]


async def test_run_pipeline_without_running_jobs_is_the_commands_simulation(
    tmp_path: Path,
) -> None:
    plan_file = tmp_path / "p.yaml"
    plan_file.write_text(
        f"version: 1\nname: s\npipeline: {{id: import, job: {JOBS}:ImportRows, "
        "with: {path: a}}\n"
    )
    result = await run_pipeline(plan_file, fail=["import@1"], run_jobs=False)
    assert result.status == "succeeded"
    assert ImportRows.runs == []


async def test_run_pipeline_refuses_a_queue_with_faults(tmp_path: Path) -> None:
    from arvel_flow.testing import FakeQueue

    with pytest.raises(ValueError, match="not both"):
        await run_pipeline(tmp_path / "p.yaml", queue=FakeQueue(), fail=["x"])


@pytest.mark.parametrize(
    ("middleware", "delay"),
    [
        ([MiddlewareRef("without_overlapping", {"key": "k", "release_after": 3.0})], 3.0),
        ([MiddlewareRef("rate_limited", {"key": "k", "max_attempts": 1, "decay_seconds": 60})], 60),
        ([MiddlewareRef("without_overlapping", {"key": "k"})], DEFAULT_RELEASE),
        ([], DEFAULT_RELEASE),
    ],
)
def test_a_simulated_release_waits_what_the_steps_middleware_would(
    middleware: list[MiddlewareRef], delay: float
) -> None:
    assert compute_release_delay(JobSettings(middleware=tuple(middleware))) == delay
