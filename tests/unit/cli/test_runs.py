"""``run``, ``status``, ``runs``: usage errors, settings precedence, and the pure formatters.

Commands go through `CliRunner`; what they show is checked on the pure ``format_*`` and
``compute_*`` functions of `arvel_flow.cli.progress`, `.event_lines`, `.summary` and `.records`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from arvel_flow.cli.app import cli
from arvel_flow.cli.durations import format_duration
from arvel_flow.cli.event_lines import (
    format_event_json,
    format_event_line,
    format_releases,
    format_stopping,
)
from arvel_flow.cli.progress import (
    BatchView,
    RunView,
    compute_view,
    format_bar,
    format_tree,
)
from arvel_flow.cli.records import failed_document, format_runs, run_document, status_document
from arvel_flow.cli.runs import format_resume_command
from arvel_flow.cli.summary import (
    MAX_FAILURES_SHOWN,
    compute_failure_groups,
    compute_rows,
    compute_user_traceback,
    format_counts,
    format_failure_lines,
    format_summary_table,
)
from arvel_flow.queue.events import Event
from arvel_flow.queue.plan import ChainNode, FanOutNode, JobNode, Plan, make_batch
from arvel_flow.queue.result import compute_result
from arvel_flow.queue.targets import JobRef
from arvel_flow.settings import QueueSettings
from arvel_flow.store.contracts import FailedJob, RunRecord, StepRecord

UNREACHABLE = "redis://127.0.0.1:1/0"
NAP = """
version: 1
name: nap
pipeline:
  id: nap
  job: asyncio:sleep
  with: {delay: 0}
"""


@pytest.fixture(autouse=True)
def no_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets comes from ``ARVEL_FLOW_*`` variables."""
    for name in QueueSettings.model_fields:
        monkeypatch.delenv(f"ARVEL_FLOW_{name.upper()}", raising=False)


@pytest.fixture
def nap(tmp_path: Path) -> Path:
    path = tmp_path / "nap.yaml"
    path.write_text(NAP, encoding="utf-8")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_usage_error(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


# Usage errors -------------------------------------------------------------------------


def test_run_needs_a_file_or_a_run_id() -> None:
    assert_usage_error(invoke("run"), "give a pipeline FILE or --resume RUN_ID")


def test_run_refuses_both_a_file_and_a_run_id(nap: Path) -> None:
    assert_usage_error(invoke("run", str(nap), "--resume", "abc"), "(one of them)")


def test_resuming_an_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    # Given an empty store, When a run that is not there is resumed
    store = f"sqlite:{tmp_path / 'state.db'}"
    result = invoke("run", "--resume", "nope", "--store", store)

    # Then the message names the run and the store
    assert_usage_error(result, f"no run 'nope' in the store {store}")


def test_status_of_an_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("status", "nope", "--store", f"sqlite:{tmp_path / 'state.db'}")
    assert_usage_error(result, "no run 'nope' in the store")


def test_detach_needs_a_broker_that_outlives_the_process(nap: Path) -> None:
    result = invoke("run", str(nap), "--store", "memory", "--detach")
    assert_usage_error(result, "--detach needs a broker that outlives this process")


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("region", "'region' is not NAME=VALUE"), ("region=us", "--set region: no such variable")],
)
def test_a_bad_set_is_a_usage_error(nap: Path, assignment: str, message: str) -> None:
    result = invoke("run", str(nap), "--store", "memory", "--set", assignment)
    assert_usage_error(result, message)


@pytest.mark.parametrize(
    "command",
    [
        ("run", "{nap}", "--store", UNREACHABLE),
        ("run", "{nap}", "--broker", "redis", "--store", UNREACHABLE),
        ("run", "--resume", "abc", "--store", UNREACHABLE),
        ("status", "abc", "--store", UNREACHABLE),
        ("runs", "--store", UNREACHABLE),
        ("failed", "list", "--store", UNREACHABLE),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_an_unreachable_store_exits_3_with_a_message(nap: Path, command: tuple[str, ...]) -> None:
    # When a command needs a store that cannot be reached
    result = invoke(*(part.format(nap=nap) for part in command))

    # Then it exits 3 at once, saying which store, without a traceback or a "started"
    # line (a server never reached is no outage to ride through)
    assert result.exit_code == 3, result.output
    assert f"{UNREACHABLE} could not be reached" in result.output
    assert "Traceback" not in result.output
    assert " started" not in result.output
    assert "retrying" not in result.output


def test_the_null_driver_is_a_dry_run(nap: Path) -> None:
    result = invoke("run", str(nap), "--store", "memory", "--driver", "null")
    assert result.exit_code == 0, result.output
    assert "dry run of nap: nothing was executed; it would run 1 job(s)" in result.output


def test_a_run_prints_plain_lines_without_a_terminal(nap: Path) -> None:
    # When a pipeline runs under CliRunner (no terminal)
    result = invoke("run", str(nap), "--store", "memory")

    # Then it announces the run, lists the step and ends with the verdict
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    run_id = lines[0].split()[1]
    assert lines[0] == f"run {run_id} (nap) started"
    assert "nap asyncio:sleep succeeded attempts=1" in result.output
    assert lines[-1] == f"run {run_id} succeeded: 1 succeeded of 1 job"


def test_the_resume_command_names_the_store_only_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = QueueSettings().store
    assert format_resume_command("r1", default) == "arvel-flow run --resume r1"
    assert format_resume_command("r1", "sqlite:/tmp/a b.db") == (
        "arvel-flow run --resume r1 --store 'sqlite:/tmp/a b.db'"
    )
    assert format_resume_command("r1", "redis://u:pw@host/0") == (
        "arvel-flow run --resume r1 --store 'redis://u:***@host/0'"
    )
    assert format_resume_command("r1", "memory") is None
    monkeypatch.setenv("ARVEL_FLOW_STORE", "sqlite:/env.db")
    assert format_resume_command("r1", "sqlite:/env.db") == "arvel-flow run --resume r1"


# Progress: RunView and event lines ----------------------------------------------------


def job_event(name: str, step: str, attempt: int = 1, **data: object) -> Event:
    return Event(name, 1_700_000_000.0, "run1", step, "pkg.jobs:Import", attempt, dict(data))


def test_run_view_follows_a_job_through_its_events() -> None:
    view = RunView()
    view.apply(job_event("job.dispatched", "load"))
    assert view.states["load"] == "queued"
    view.apply(job_event("job.started", "load"))
    assert view.states["load"] == "running"
    view.apply(job_event("job.retrying", "load", error="E: x", delay=1.0))
    assert view.states["load"] == "retrying"
    view.apply(job_event("job.succeeded", "load", attempt=2))
    assert view.states["load"] == "succeeded"


def test_run_view_counts_batches_groups_and_the_run() -> None:
    # When a batch reports progress and finishes, a chain step starts and the run ends
    view = RunView()
    view.apply(
        Event("batch.progress", 1.0, "run1", "b", data={"finished": 3, "failed": 1, "total": 5})
    )
    view.apply(Event("batch.finished", 2.0, "run1", "b", data={"status": "failed"}))
    view.apply(Event("chain.step", 2.0, "run1", "next", data={"chain": "root"}))
    view.apply(Event("run.finished", 3.0, "run1", data={"status": "failed"}))

    # Then the view holds the counters, the states and the run's status
    assert (view.batches["b"].finished, view.batches["b"].failed, view.batches["b"].total) == (
        3,
        1,
        5,
    )
    assert view.states == {"b": "failed", "next": "running"}
    assert view.status == "failed"


def test_run_view_keeps_fan_out_counts_as_members_move() -> None:
    view = RunView()
    for index in range(3):
        view.apply(job_event("job.started", f"rows[{index}]"))
    view.apply(job_event("job.succeeded", "rows[0]"))
    view.apply(job_event("job.failed", "rows[1]"))
    assert dict(view.fan_outs["rows"]) == {"running": 1, "succeeded": 1, "failed": 1}


def test_a_chain_step_event_does_not_undo_a_known_state() -> None:
    view = RunView(states={"next": "succeeded"})
    view.apply(Event("chain.step", 1.0, "run1", "next"))
    assert view.states["next"] == "succeeded"


def test_an_event_line_has_time_event_step_job_attempt_and_details() -> None:
    event = job_event("job.released", "rows[2]", attempt=2, reason="busy", delay=0.8155133)
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    assert format_event_line(event) == (
        f"{stamp} job.released rows[2] pkg.jobs:Import attempt=2 reason=busy delay=0.8s"
    )


def test_a_retry_line_says_when_and_which_attempt_comes_next() -> None:
    event = job_event(
        "job.retrying", "rows[2]", attempt=2, error="E: x", delay=57.6, max_attempts=4
    )
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    assert format_event_line(event) == (
        f"{stamp} job.retrying rows[2] pkg.jobs:Import attempt=2 error=E: x"
        " retrying in 58s (attempt 3 of 4)"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.8155133724212646, "0.8s"), (2.0, "2s"), (42.4, "42s"), (125, "2m 5s"), (3600, "1h")],
)
def test_durations_are_written_for_people(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_run_event_line_has_no_job_part() -> None:
    line = format_event_line(Event("run.finished", 1.0, "run1", data={"status": "succeeded"}))
    assert line.endswith(" run.finished status=succeeded")


def test_json_events_carry_the_spec_fields_then_the_details() -> None:
    event = job_event("job.failed", "rows[2]", attempt=3, error="E: x", failed_id="f1")
    document = json.loads(format_event_json(event))
    assert list(document) == [
        "event",
        "time",
        "run_id",
        "step",
        "job",
        "attempt",
        "error",
        "failed_id",
    ]
    assert document["attempt"] == 3
    assert "\n" not in format_event_json(event)


def test_json_run_events_have_no_job_fields() -> None:
    document = json.loads(format_event_json(Event("run.started", 1.5, "run1", data={"name": "n"})))
    assert document == {"event": "run.started", "time": 1.5, "run_id": "run1", "name": "n"}


# Progress: bars -----------------------------------------------------------------------


def test_a_bar_before_any_progress_is_empty() -> None:
    assert format_bar(None, 10, width=10).plain == "[░░░░░░░░░░] 0/10"


def test_a_bar_fills_in_proportion_and_shows_failures() -> None:
    batch = BatchView(total=10, finished=5, failed=2, started_at=None)
    assert format_bar(batch, 10, width=10).plain == "[█████░░░░░] 5/10 failed 2"


def test_a_live_bar_shows_the_rate_and_the_time_left() -> None:
    batch = BatchView(total=1000, finished=250, started_at=time.monotonic() - 5)
    text = format_bar(batch, 1000, width=4).plain
    assert text.startswith("[█░░░] 250/1,000  ")
    assert " 50/s  ETA 15s" in text


def test_a_full_bar_has_no_time_left() -> None:
    batch = BatchView(total=4, finished=4, started_at=time.monotonic() - 1)
    assert "ETA" not in format_bar(batch, 4, width=4).plain


def test_an_empty_batch_bar_is_full() -> None:
    assert format_bar(None, 0, width=4).plain == "[████] 0/0"


# Summaries: rows, views and failures --------------------------------------------------


def ref(target: str = "pkg.jobs:Import") -> JobRef:
    return JobRef(target)


def fan_out_plan() -> Plan:
    """A chain: a batch (a 3-item fan-out and a job, with ``then``), then a report."""
    batch = make_batch(
        "rows",
        [FanOutNode("rows.0", ref(), [{"n": 1}, {"n": 2}, {"n": 3}]), JobNode("extra", ref())],
        then=JobNode("rows.then", ref("pkg.jobs:Notify")),
    )
    root = ChainNode("root", (batch, JobNode("report", ref("pkg.jobs:Report"))))
    return Plan.of("demo", root)


def record(step: str, state: str, attempts: int, start: float, end: float) -> StepRecord:
    return StepRecord(step, state, attempts, None, start, end)  # type: ignore[arg-type]


RECORDS = {
    "root": StepRecord("root", "running", started_at=0.0),
    "rows": StepRecord("rows", "running", started_at=0.0),
    "rows.0[0]": record("rows.0[0]", "succeeded", 1, 1.0, 2.0),
    "rows.0[1]": record("rows.0[1]", "failed", 3, 1.5, 4.5),
    "extra": record("extra", "succeeded", 1, 1.0, 1.5),
}


def test_rows_aggregate_a_fan_out_into_one_row() -> None:
    # When the rows of a run with a fan-out are computed
    rows = {row.key: row for row in compute_rows(fan_out_plan(), RECORDS)}

    # Then the fan-out is one row counting its members' states, attempts and span
    fan_out = rows["rows.0[*]"]
    assert fan_out.what == "pkg.jobs:Import x3"
    assert fan_out.state == "1 succeeded, 1 failed, 1 not run"
    assert fan_out.attempts == 4
    assert fan_out.seconds == pytest.approx(3.5)


def test_rows_follow_the_plan_and_skip_callbacks_that_never_ran() -> None:
    rows = compute_rows(fan_out_plan(), RECORDS)
    assert [row.key for row in rows] == ["root", "rows", "rows.0[*]", "extra", "report"]
    assert (rows[3].state, rows[3].attempts, rows[3].seconds) == ("succeeded", 1, 0.5)
    assert (rows[4].state, rows[4].seconds) == ("not run", None)


def test_the_summary_table_names_jobs_by_class() -> None:
    text = "\n".join(_render(format_summary_table(compute_rows(fan_out_plan(), RECORDS))))
    assert "Import x3" in text
    assert "batch" in text
    assert "pkg.jobs:" not in text


def test_a_view_from_records_counts_each_batch() -> None:
    view = compute_view(fan_out_plan(), RECORDS, "interrupted")
    batch = view.batches["rows"]
    assert (batch.finished, batch.failed, batch.total, batch.started_at) == (3, 1, 4, None)
    assert dict(view.fan_outs["rows.0"]) == {"succeeded": 1, "failed": 1}


def test_a_finished_batch_shows_full_even_with_cancelled_members() -> None:
    records = {**RECORDS, "rows": record("rows", "failed", 0, 0.0, 5.0)}
    assert compute_view(fan_out_plan(), records, "failed").batches["rows"].finished == 4


def test_the_tree_marks_states_and_counts_fan_outs() -> None:
    # Given a finished run whose report was never reached
    records = {**RECORDS, "rows": record("rows", "failed", 0, 0.0, 5.0)}
    view = compute_view(fan_out_plan(), records, "failed")

    # When it is drawn
    text = "\n".join(line.rstrip() for line in _render(format_tree(fan_out_plan(), view)))

    # Then each step has its mark, the fan-out its counts, and unreached steps are skipped
    assert "demo  failed" in text
    assert "✘ rows  batch of 4  [" in text
    assert "rows.0[0..2]  pkg.jobs:Import x3  ✔ 1  ✘ 1" in text
    assert "then - rows.then  pkg.jobs:Notify" in text
    assert "- report  pkg.jobs:Report" in text


def _render(renderable: object) -> list[str]:
    from rich.console import Console

    console = Console(width=200, color_system=None, record=True)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get().splitlines()


def failure(step: str, traceback: str, at: float, attempts: int = 1) -> FailedJob:
    return FailedJob(
        id=f"id-{step}",
        job="pkg.jobs:Import",
        queue="default",
        payload={"n": 1},
        exception="RuntimeError",
        message="boom",
        traceback=traceback,
        attempts=attempts,
        failed_at=at,
        run_id="run1",
        step=step,
        settings={},
    )


def test_alike_failures_are_grouped_earliest_first() -> None:
    failures = [failure("b", "tb-1", 2.0), failure("c", "tb-2", 3.0), failure("a", "tb-1", 1.0)]
    groups = compute_failure_groups(failures)
    assert [[f.step for f in group] for group in groups] == [["a", "b"], ["c"]]


def test_failure_lines_show_each_kind_once_then_a_count() -> None:
    # Given more kinds of failure than are shown
    failures = [failure(f"s{i}", f"tb-{i}", float(i)) for i in range(MAX_FAILURES_SHOWN + 2)]
    failures.append(failure("again", "tb-0", 99.0))

    # When they are turned into lines
    lines = format_failure_lines(failures)

    # Then the first kind names both of its jobs, and the overflow is counted
    assert lines[0] == (
        "failed: s0 and 1 more (pkg.jobs:Import) failed after 1 attempt(s) "
        "(failed id id-s0, id-again)"
    )
    assert lines[1] == "tb-0"
    assert lines[-1] == "... and 2 more failed job(s): arvel-flow failed list"


def test_a_user_traceback_folds_the_frames_inside_arvel_flow() -> None:
    # Given a traceback through arvel-flow's runner into user code
    import arvel_flow

    package = Path(arvel_flow.__file__).resolve().parent
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{package}/queue/runner.py", line 1, in attempt\n'
        "    result = await self._run_once(job, envelope)\n"
        "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        f'  File "{package}/queue/middleware.py", line 2, in call\n'
        "    return await core()\n"
        '  File "/app/jobs.py", line 9, in handle\n'
        "    raise RuntimeError('boom')\n"
        "RuntimeError: boom\n"
    )

    # Then the user's frame and the error stay, arvel-flow's frames become one line
    assert compute_user_traceback(text).splitlines() == [
        "Traceback (most recent call last):",
        "  [2 frame(s) inside arvel-flow hidden]",
        '  File "/app/jobs.py", line 9, in handle',
        "    raise RuntimeError('boom')",
        "RuntimeError: boom",
    ]


def test_a_traceback_ending_inside_arvel_flow_says_so() -> None:
    import arvel_flow

    package = Path(arvel_flow.__file__).resolve().parent
    text = f'Traceback:\n  File "{package}/queue/runner.py", line 1, in x\n    y()\nE: z\n'
    assert compute_user_traceback(text).splitlines() == [
        "Traceback:",
        "  [1 frame(s) inside arvel-flow hidden]",
        "E: z",
    ]


# Records ------------------------------------------------------------------------------


def test_counts_tell_allowed_failures_from_those_that_failed_the_run() -> None:
    # Given a batch allowed one failure, with one member failed and two succeeded
    plan = Plan.of("p", make_batch("b", [JobNode(f"b.{i}", ref()) for i in range(3)]))
    records = {
        "b": record("b", "succeeded", 0, 0.0, 1.0),
        "b.0": record("b.0", "succeeded", 1, 0.0, 1.0),
        "b.1": record("b.1", "succeeded", 1, 0.0, 1.0),
        "b.2": record("b.2", "failed", 1, 0.0, 1.0),
    }

    # Then the failure counts as allowed, and the line says so
    result = compute_result("run1", "succeeded", plan, records)
    assert result.counts["failed_allowed"] == 1
    assert format_counts(result) == "2 succeeded, 1 failed (allowed) of 3 jobs"
    # And in a batch that failed, the same failure is not allowed
    records["b"] = record("b", "failed", 0, 0.0, 1.0)
    failed = compute_result("run1", "failed", plan, records)
    assert format_counts(failed) == "2 succeeded, 1 failed of 3 jobs"


def test_releases_and_stopping_read_as_sentences() -> None:
    assert format_releases({"rate limited": 300, "busy": 19}) == (
        "319 times (rate limited: 300, busy: 19)"
    )
    wait = Event("run.stopping", 1.0, "run1", data={"action": "wait"})
    assert format_stopping(wait, 1) == (
        "stopping: waiting for 1 running job (Ctrl-C again to cancel them)"
    )
    cancel = Event("run.stopping", 1.0, "run1", data={"action": "cancel"})
    assert format_stopping(cancel, 2) == "cancelling 2 running jobs"


def test_status_document_holds_the_run_its_progress_and_its_jobs() -> None:
    run = RunRecord("run1", "demo", "interrupted", created_at=1.0, source="p.yaml")
    result = compute_result("run1", run.status, fan_out_plan(), RECORDS)
    document = status_document(run, result)
    assert document["run_id"] == "run1"
    assert document["status"] == "interrupted"
    assert document["progress"] == {"finished": 3, "total": 5}
    assert document["succeeded"] == ["rows.0[0]", "extra"]
    assert list(document["failed"]) == ["rows.0[1]"]
    assert document["pending"] == ["rows.0[2]", "report"]
    assert json.loads(json.dumps(document)) == document


def test_run_document_is_json_ready() -> None:
    run = RunRecord("run1", "demo", "succeeded", created_at=1.0, finished_at=2.0)
    assert run_document(run) == {
        "run_id": "run1",
        "name": "demo",
        "status": "succeeded",
        "created_at": 1.0,
        "finished_at": 2.0,
        "source": None,
        "trigger": None,
        "scheduled_at": None,
    }


def test_a_run_started_by_a_trigger_names_it() -> None:
    # Given a run a schedule trigger started for its tick at 100.0
    run = RunRecord("run1", "demo", trigger="demo/often", scheduled_at=100.0)
    # Then its document and the runs table name the trigger
    assert run_document(run)["trigger"] == "demo/often"
    assert run_document(run)["scheduled_at"] == 100.0
    console = Console(width=200, record=True)
    console.print(format_runs([run, RunRecord("run2", "demo")]))
    text = console.export_text()
    assert "trigger" in text
    assert "demo/often" in text


def test_a_failed_document_has_the_traceback_only_when_asked() -> None:
    record_ = failure("s", "tb", 1.0)
    assert failed_document(record_)["traceback"] == "tb"
    assert "traceback" not in failed_document(record_, with_traceback=False)
    assert failed_document(record_)["payload"] == {"n": 1}
