"""The live view of a tall pipeline, ETAs that hold, job log lines, flushed progress."""

from __future__ import annotations

import io
import time

from rich.console import Console

from arvel_flow.cli.event_lines import PlainReporter, format_event_line
from arvel_flow.cli.progress import (
    BatchView,
    RichReporter,
    RunView,
    compute_view,
    format_bar,
    format_log_message,
    format_tree,
)
from arvel_flow.queue.events import Event
from arvel_flow.queue.plan import ChainNode, JobNode, Plan, make_batch
from arvel_flow.queue.targets import JobRef

T = 1_700_000_000.0


def tall_plan(steps: int = 70) -> Plan:
    """A chain of ``steps`` jobs, ``s0`` to ``s69``."""
    nodes = tuple(JobNode(f"s{i}", JobRef("pkg.jobs:Step")) for i in range(steps))
    return Plan.of("tall", ChainNode("root", nodes))


def job_event(name: str, step: str, attempt: int = 1, **data: object) -> Event:
    return Event(name, T, "run1", step, "pkg.jobs:Step", attempt, dict(data))


def screen(reporter: RichReporter) -> str:
    """What the live view shows on its console (its size fixed by the test)."""
    console = reporter.console
    with console.capture() as capture:
        console.print(reporter._render())
    return capture.get()


def test_a_tall_chain_keeps_its_running_and_failed_steps_in_view() -> None:
    # Given a 70-step chain on a 24-line terminal, 62 steps done, one failed, one running
    console = Console(width=100, height=24, color_system=None)
    reporter = RichReporter(console, tall_plan())
    for i in range(62):
        reporter(job_event("job.succeeded", f"s{i}"))
    reporter(job_event("job.failed", "s62"))
    reporter(job_event("job.started", "s63"))
    # When the view is drawn
    shown = screen(reporter)
    # Then it fits, the finished steps are one line, and the failed and running ones show
    assert len(shown.splitlines()) <= 24, shown
    assert "✔ 62 steps finished" in shown
    assert "✘ s62" in shown
    assert "▶ s63" in shown


def test_a_tree_that_fits_collapses_nothing() -> None:
    # Given a 5-step chain, two finished
    plan, view = tall_plan(5), RunView()
    for i in range(2):
        view.apply(job_event("job.succeeded", f"s{i}"))
    # When drawn with room to spare, then every step has its line
    tree = format_tree(plan, view, height=40)
    assert len(tree.children[0].children) == 5


def test_a_tree_still_too_tall_folds_pending_steps_too() -> None:
    # Given a 70-step chain whose first step runs, on 10 lines
    plan, view = tall_plan(), RunView()
    view.apply(job_event("job.started", "s0"))
    # When drawn
    tree = format_tree(plan, view, height=10)
    # Then the running step shows, and the 69 pending ones are one line
    chain = tree.children[0].children
    assert [str(child.label) for child in chain][1:] == ["· 69 steps pending"]


def test_a_paused_bar_claims_no_eta() -> None:
    batch = BatchView(total=1000, finished=250, started_at=time.monotonic() - 5)
    for paused in ("waiting", "stopping"):
        text = format_bar(batch, 1000, width=4, paused=paused).plain
        assert "ETA" not in text
        assert text.endswith(paused)
    assert "ETA" not in format_bar(batch, 1000, width=4, paused="interrupted").plain


def test_a_run_is_waiting_when_nothing_runs_and_a_retry_waits() -> None:
    view = RunView()
    view.apply(job_event("job.started", "s0"))
    assert view.paused is None
    view.apply(job_event("job.retrying", "s0", delay=60.0))
    assert view.paused == "waiting"
    view.apply(job_event("job.started", "s0", attempt=2))
    assert view.paused is None


def test_a_stopping_or_interrupted_run_is_paused() -> None:
    view = RunView()
    view.apply(Event("run.stopping", T, "run1"))
    assert view.paused == "stopping"
    view.status = "interrupted"
    assert view.paused == "interrupted"


def test_a_live_batch_bar_shows_waiting_instead_of_an_eta() -> None:
    # Given a batch halfway, whose only job left waits out a retry
    batch = make_batch("b", [JobNode("b.0", JobRef("pkg.jobs:Step"))])
    plan = Plan.of("p", ChainNode("root", (batch,)))
    view = RunView()
    view.apply(Event("batch.progress", T, "run1", "b", data={"finished": 0, "total": 1}))
    view.apply(job_event("job.retrying", "b.0", delay=60.0))
    # When drawn, then the bar says it waits
    console = Console(width=120, color_system=None)
    with console.capture() as capture:
        console.print(format_tree(plan, view))
    assert "waiting" in capture.get()


def test_a_job_log_line_has_time_step_job_level_and_logger() -> None:
    event = job_event("job.log", "s1", level="WARNING", logger="myapp", message="disk\nfull")
    line = format_event_line(event)
    assert line.endswith(" job.log s1 pkg.jobs:Step attempt=1 WARNING myapp: disk\n    full")
    assert format_log_message(event).plain.endswith(" s1 (Step) WARNING myapp: disk\nfull")


def test_a_job_log_changes_no_state() -> None:
    view = RunView()
    view.apply(job_event("job.started", "s1"))
    view.apply(job_event("job.log", "s1", level="INFO", logger="x", message="m"))
    assert (view.states["s1"], view.running) == ("running", {"s1"})


def progress(finished: int, total: int = 10) -> Event:
    return Event("batch.progress", T, "run1", "b", data={"finished": finished, "total": total})


def test_the_last_progress_held_by_the_throttle_is_said_before_the_batch_ends() -> None:
    # Given plain output, and progress faster than once a second
    out = io.StringIO()
    reporter = PlainReporter(out)
    for finished in (1, 2, 3):
        reporter(progress(finished))
    # When the batch ends before all its jobs finished (it failed)
    reporter(Event("batch.finished", T, "run1", "b", data={"status": "failed"}))
    # Then the last counts were said, before its end
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "batch.progress b finished=1 total=10",
        "batch.progress b finished=3 total=10",
        "batch.finished b status=failed",
    ]


def test_held_progress_is_said_before_the_run_ends() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter(progress(1))
    reporter(progress(4))
    reporter(Event("run.interrupted", T, "run1", data={"status": "interrupted"}))
    assert "finished=4 total=10" in out.getvalue().splitlines()[1]


def test_the_live_view_prints_a_jobs_log_line_above_the_tree() -> None:
    # Given the live view on a fixed-size console
    console = Console(width=100, height=24, color_system=None, file=io.StringIO())
    reporter = RichReporter(console, tall_plan(3))
    # When a job's log record arrives
    reporter(job_event("job.log", "s1", level="INFO", logger="myapp", message="fetched 3 rows"))
    # Then it is printed with its time, step, job and level
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert printed.rstrip().endswith(" s1 (Step) INFO myapp: fetched 3 rows"), printed


def test_a_bar_of_stored_counts_says_nothing_of_waiting() -> None:
    # Given counts read from a store (the status command), no rate known
    batch = BatchView(total=10, finished=5, started_at=None)
    # Then no word on waiting: the view does not know what runs
    assert format_bar(batch, 10, width=4, paused="waiting").plain == "[██░░] 5/10"


def chain_plan() -> Plan:
    """``first``; a batch ``group`` of a chain ``inner`` (``a``, ``b``) and ``c``; ``last``."""
    inner = ChainNode(
        "inner", (JobNode("a", JobRef("pkg.jobs:Step")), JobNode("b", JobRef("pkg.jobs:Step")))
    )
    group = make_batch("group", [inner, JobNode("c", JobRef("pkg.jobs:Step"))])
    steps = (
        JobNode("first", JobRef("pkg.jobs:Step")),
        group,
        JobNode("last", JobRef("pkg.jobs:Step")),
    )
    return Plan.of("chain", ChainNode("root", steps))


def live_view(plan: Plan) -> RichReporter:
    """The live view as `run` starts it: counters for every batch, read from an empty store."""
    console = Console(width=100, height=40, color_system=None)
    return RichReporter(console, plan, compute_view(plan, {}, "running"))


def marks(reporter: RichReporter) -> dict[str, str]:
    """Each step of the view by its state's icon: ``{"first": "▶", ...}``."""
    shown = {}
    for line in screen(reporter).splitlines()[1:]:  # (the first is the pipeline's name)
        words = line.strip("│├└─ ").split()
        if len(words) >= 2:
            shown[words[1]] = words[0]
    return shown


def test_a_chain_step_shows_running_once_its_job_started() -> None:
    # Given the live view of a chain whose first step was dispatched
    reporter = live_view(chain_plan())
    reporter(job_event("chain.step", "first"))
    reporter(job_event("job.dispatched", "first"))
    # When its job starts
    reporter(job_event("job.started", "first"))
    # Then the step shows running until it ends; the steps after it are pending
    assert marks(reporter) == {
        "root": "▶",
        "first": "▶",
        "group": "·",
        "inner": "·",
        "a": "·",
        "b": "·",
        "c": "·",
        "last": "·",
    }
    reporter(job_event("job.succeeded", "first"))
    assert marks(reporter)["first"] == "✔"


def test_a_step_of_a_chain_in_a_batch_shows_running_once_its_job_started() -> None:
    # Given the live view, the first step done and the batch begun
    reporter = live_view(chain_plan())
    reporter(job_event("job.succeeded", "first"))
    reporter(job_event("chain.step", "group"))
    for step in ("a", "c"):
        reporter(job_event("job.dispatched", step))
    # When the inner chain's first job starts
    reporter(job_event("job.started", "a"))
    # Then it, its chain and the batch show running; what has not started does not
    shown = marks(reporter)
    assert [shown[key] for key in ("group", "inner", "a", "b", "c", "last")] == [
        "▶",
        "▶",
        "▶",
        "·",
        "·",
        "·",
    ]


def test_a_batch_that_has_not_started_shows_pending_though_it_has_counters() -> None:
    # Given the live view of a run that has only started its first step
    reporter = live_view(chain_plan())
    reporter(job_event("job.started", "first"))
    # Then the batch after it is pending, with its members
    shown = marks(reporter)
    assert (shown["group"], shown["inner"], shown["c"]) == ("·", "·", "·")
