"""The ``run``, ``status`` and ``runs`` commands: start or resume a run, and look at runs.

``run`` is a shell over the front door (`arvel_flow.launch`): it parses, resolves the
settings, subscribes the reporters, and turns how the run ended into an exit code.
Heavy imports stay inside the command bodies so that ``--help`` stays fast.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from arvel_flow.brokers import BROKERS
from arvel_flow.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    FORMAT_OPTION,
    SET_OPTION,
    STORE_OPTION,
    open_store_for,
    parse_assignments,
    print_renderable,
    settings_for,
    use_working_directory,
)
from arvel_flow.cli.durations import to_seconds
from arvel_flow.cli.env_option import ENV_FILE_OPTION, use_env_file
from arvel_flow.cli.ids import NO_TRUNC_OPTION
from arvel_flow.cli.log_option import LOG_LEVEL_OPTION, level_number
from arvel_flow.cli.metrics_option import check_metrics_available, metrics_options, start_metrics
from arvel_flow.cli.otel_option import OTEL_OPTION, start_tracing

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from arvel_flow.cli.progress import RichReporter
    from arvel_flow.launch import Outcome
    from arvel_flow.queue.events import Event, EventBus
    from arvel_flow.queue.front import Queue
    from arvel_flow.queue.plan import Plan
    from arvel_flow.settings import QueueSettings
    from arvel_flow.store.contracts import StepRecord
    from arvel_flow.testing.faults import Fault


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--resume", "resume_id", metavar="RUN_ID", help="Continue an interrupted or failed run."
)
@click.option("--driver", type=click.Choice(["sync", "null", "taskiq"]), help="Queue driver.")
@click.option(
    "--broker",
    type=click.Choice(["memory", *BROKERS]),
    help="memory (jobs run here) or a broker workers read.",
)
@click.option("--url", help="The broker's URL.")
@STORE_OPTION
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
@SET_OPTION
@click.option("--dry-run", is_flag=True, help="Show what would run; run nothing.")
@click.option(
    "--fail",
    "fail_specs",
    multiple=True,
    metavar="STEP[@ATTEMPTS][:timeout|:release]",
    help="With --dry-run: simulate the run on a virtual clock, failing these attempts "
    "(repeatable; STEP may be a fan-out member such as digests[3] or a glob such as "
    "digests[*]; ATTEMPTS is all (the default) or a list such as 1,2).",
)
@click.option("--detach", is_flag=True, help="Return once dispatched (distributed brokers).")
@click.option(
    "--force",
    is_flag=True,
    help="With --resume: take the run over from an owner process that is gone.",
)
@click.option(
    "--output",
    type=click.Choice(["auto", "rich", "plain", "json"]),
    default="auto",
    show_default=True,
    help="auto: rich on a terminal, plain lines otherwise; json: one event per line.",
)
@click.option(
    "--events",
    "events_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every event to this file, one JSON object per line.",
)
@metrics_options
@OTEL_OPTION
@LOG_LEVEL_OPTION
@ENV_FILE_OPTION
@click.pass_context
def run(ctx: click.Context, /, file: Path | None, resume_id: str | None, **options: Any) -> None:
    """Validate, compile and run a pipeline file (or resume a run), showing progress."""
    from arvel_flow.launch import compile_file
    from arvel_flow.queue.joblogs import capture_job_logs
    from arvel_flow.settings import QueueSettings

    if (file is None) == (resume_id is None):
        raise click.UsageError("give a pipeline FILE or --resume RUN_ID (one of them)")
    if options["force"] and resume_id is None:
        raise click.UsageError("--force takes a run over: it goes with --resume RUN_ID")
    faults = _parse_faults(options["fail_specs"], options["dry_run"], file)
    use_env_file(options["env_file"])
    use_working_directory()
    if faults is not None:
        from arvel_flow.cli.simulate import simulate_file

        assert file is not None
        assignments = parse_assignments(options["assignments"])
        output, events_file = options["output"], options["events_file"]
        ctx.exit(simulate_file(file, assignments, faults, output, events_file))
    check_metrics_available(options["metrics_port"])
    start_tracing(options["otel"], _say_on_stderr)
    flags = _setting_flags(options)
    plan: Plan | None = None
    file_queue: dict[str, Any] = {}
    if file is not None:
        plan, queue_section = compile_file(str(file), parse_assignments(options["assignments"]))
        file_queue = dict(queue_section)
    settings = QueueSettings.resolve(file_queue, flags)
    if file is not None:  # a resume knows its broker once it has read the run's settings
        _refuse_detach_without_broker(settings, options)
    with capture_job_logs(level_number(options["log_level"])):
        code = asyncio.run(_run(settings, plan, resume_id, options))
    ctx.exit(code)


async def _run(
    settings: QueueSettings, plan: Plan | None, resume_id: str | None, options: dict[str, Any]
) -> int:
    from arvel_flow.cli.ids import UnknownRunError, resolve_run_id
    from arvel_flow.errors import RunNotFoundError
    from arvel_flow.launch import Run, describe_drift
    from arvel_flow.launch.pinned import describe_changes, pin, resume_settings
    from arvel_flow.outage import Outage
    from arvel_flow.queue.envelope import new_id
    from arvel_flow.queue.events import EventBus
    from arvel_flow.wiring import make_queue

    # The null driver runs nothing: following such a "run" would wait for nothing.
    dry_run = options["dry_run"] or settings.driver == "null"
    if dry_run and plan is not None:
        _show_dry_run(plan, settings)
        return 0
    events = EventBus()
    start_metrics(events, settings, options["metrics_host"], options["metrics_port"])
    queue = make_queue(settings, events=events)
    handle: Run | None = None
    resumed_how = "resumed"
    try:
        if plan is None:
            assert resume_id is not None
            resume_id = await resolve_run_id(queue.store, resume_id, settings.store)
            try:
                plan = await queue.orchestrator.plan_of(resume_id)
            except RunNotFoundError:
                raise UnknownRunError(resume_id, settings.store) from None
            note = describe_drift(plan)
            if note:
                click.echo(f"note: {note}", err=True)
            pinned, changes = resume_settings(plan, _setting_flags(options), resume_id)
            if pinned != settings:
                settings = pinned
                opened, queue = queue, make_queue(settings, events=events)
                await opened.close()
            changed = describe_changes(changes)
            if changed:
                click.echo(changed, err=True)
            _refuse_detach_without_broker(settings, options)
            record = await queue.store.get_run(resume_id)
            if record is not None and record.status == "failed":
                resumed_how = "continued: the steps that did not succeed run again"
        if dry_run:
            _show_dry_run(plan, settings)
            return 0
        run_id = resume_id or new_id()[:12]
        if resume_id is None:
            plan = pin(plan, settings)
        # A resumed run's live view starts from what was already done (of a continued
        # failed run, what succeeded: the rest runs again).
        done = await queue.store.get_steps(resume_id) if resume_id else {}
        if resumed_how != "resumed":
            done = {key: record for key, record in done.items() if record.state == "succeeded"}
        with _Reporting(events, plan, options, run_id, done) as reporting:
            resumed = f"run {run_id} ({plan.name}) {resumed_how}"
            handle = await Run.begin(
                queue,
                plan,
                run_id,
                resume=resume_id is not None,
                force=options["force"],
                follow=not options["detach"],
                outage=Outage(settings.outage_grace, _say_on_stderr),
                handle_signals=True,
                announce=(lambda: reporting.say(resumed)) if resume_id else None,
                say=_say_on_stderr,
                heartbeat_timeout=settings.heartbeat_timeout,
                observers=settings.observers,
                allowed=settings.allowed_modules or None,
            )
            outcome = await handle.follow()
            if outcome.interrupted:
                await _tell_interrupted(queue, plan, outcome)
            reporting.ended(outcome)
        await _report_end(queue, plan, outcome, reporting, settings)
        return exit_code_of(outcome)
    finally:
        await (queue.close() if handle is None else handle.close())


def _parse_faults(specs: tuple[str, ...], dry_run: bool, file: Path | None) -> list[Fault] | None:
    """The ``--fail`` specs, parsed; None without any (no simulation)."""
    if not specs:
        return None
    if not dry_run or file is None:
        raise click.UsageError(
            "--fail simulates a run of a pipeline FILE: it goes with --dry-run (and no --resume)"
        )
    from arvel_flow.testing.faults import parse_fault

    return [parse_fault(spec) for spec in specs]


def _setting_flags(options: dict[str, Any]) -> dict[str, Any]:
    """The `QueueSettings` fields ``run`` takes as flags (None: not given)."""
    return {k: options[k] for k in ("driver", "broker", "url", "store", "concurrency")}


def _refuse_detach_without_broker(settings: QueueSettings, options: dict[str, Any]) -> None:
    if options["detach"] and (settings.broker == "memory" or settings.driver != "taskiq"):
        raise click.UsageError("--detach needs a broker that outlives this process, such as redis")


async def _tell_interrupted(queue: Queue, plan: Plan, outcome: Outcome) -> None:
    """Emit the closing event of a run no longer followed, with its counts so far.

    ``run.interrupted`` when it stopped here; ``run.detached`` when it goes on in the
    workers and only this process stopped following it.
    """
    from arvel_flow.queue.events import Event
    from arvel_flow.queue.result import compute_result

    run_id = outcome.run_id
    name, status = (
        ("run.detached", "running") if outcome.remote else ("run.interrupted", "interrupted")
    )
    result = compute_result(run_id, status, plan, await queue.store.get_steps(run_id))
    data = {"status": status, "counts": result.counts}
    queue.events.emit(Event(name, queue.clock.now(), run_id, data=data))


def exit_code_of(outcome: Outcome) -> int:
    """0 succeeded (or detached), 1 failed, 130 interrupted (SPEC §5)."""
    if outcome.remote and not outcome.interrupted:
        return EXIT_OK
    if outcome.interrupted or outcome.result is None:
        return EXIT_INTERRUPTED
    return EXIT_OK if outcome.result.ok else EXIT_FAILED


def format_resume_command(run_id: str, store: str) -> str | None:
    """The command that resumes ``run_id`` in ``store``; None when the store keeps nothing.

    ``--store`` is spelled out unless a bare ``--resume`` would open that store anyway:
    a store named by the pipeline file is not known to a resume, which reads no file.
    """
    from arvel_flow.settings import QueueSettings
    from arvel_flow.store.urls import mask_url

    if store == "memory":
        return None
    command = f"arvel-flow run --resume {run_id}"
    if store != QueueSettings().store:
        command += f" --store {shlex.quote(mask_url(store))}"
    return command


def _say_on_stderr(line: str) -> None:
    click.echo(line, err=True)


def _show_dry_run(plan: Plan, settings: QueueSettings) -> None:
    """Each job's effective settings (as ``plan`` shows them) and what would run."""
    from collections import Counter

    from arvel_flow.cli.render import format_plan
    from arvel_flow.explain import compute_reports

    reports = compute_reports(plan, redelivery_timeout=settings.redelivery_timeout)
    print_renderable(format_plan(plan.name, reports))
    jobs = Counter(node.job.target for node in plan.jobs())
    total = sum(jobs.values())
    click.echo(f"dry run of {plan.name}: nothing was executed; it would run {total} job(s):")
    for target, count in jobs.most_common():
        click.echo(f"  {count:>7} x {target}")


class _Reporting:
    """The reporters ``--output`` and ``--events`` ask for, subscribed for one run."""

    def __init__(
        self,
        events: EventBus,
        plan: Plan,
        options: dict[str, Any],
        run_id: str,
        done: Mapping[str, StepRecord],
    ) -> None:
        from arvel_flow.cli.event_lines import JsonReporter, PlainReporter

        self.mode = options["output"]
        if self.mode == "auto":
            self.mode = "rich" if sys.stdout.isatty() else "plain"
        self._files: list[IO[str]] = []
        self._rich: RichReporter | None = None
        self.console: Console | None = None
        """The terminal of the live view (``rich`` mode only)."""
        started = f"run {run_id} ({plan.name}) started"

        def announce(event: Event) -> None:
            # Said once the run is recorded (not before: the store may be unreachable),
            # and ahead of the reporters' lines about it.
            if event.event == "run.started" and event.run_id == run_id:
                self.say(started)

        events.subscribe(announce)
        if self.mode == "rich":
            # rich only for the live view: plain and JSON lines (tools, CI) never load it.
            from rich.console import Console

            from arvel_flow.cli.progress import RichReporter, compute_view

            self.console = Console(force_terminal=True)
            self._rich = RichReporter(self.console, plan, compute_view(plan, done, "running"))
            events.subscribe(self._rich)
        elif self.mode == "plain":
            events.subscribe(PlainReporter(sys.stdout))
        else:
            events.subscribe(JsonReporter(sys.stdout))
        if options["events_file"] is not None:
            from arvel_flow.secrets import ScrubbingStream

            stream = Path(options["events_file"]).open("a", encoding="utf-8")  # noqa: SIM115
            self._files.append(stream)
            events.subscribe(JsonReporter(cast(IO[str], ScrubbingStream(stream))))

    def say(self, message: str) -> None:
        """A line for people (never in JSON output, which stays one event per line)."""
        if self.mode == "json":
            return
        click.echo(message, err=self.mode == "rich")

    def ended(self, outcome: Outcome) -> None:
        """Let the live display show how the run ended before it stops."""
        if self._rich is not None and outcome.interrupted:
            self._rich.view.status = "interrupted"

    def __enter__(self) -> _Reporting:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)
        for stream in self._files:
            stream.close()


async def _report_end(
    queue: Queue,
    plan: Plan,
    outcome: Outcome,
    reporting: _Reporting,
    settings: QueueSettings,
) -> None:
    from arvel_flow.settings import QueueSettings
    from arvel_flow.store.urls import mask_url

    if outcome.remote and outcome.result is None:
        follow = f"arvel-flow status {outcome.run_id}"
        if settings.store != QueueSettings().store:
            follow += f" --store {mask_url(settings.store)}"
        reporting.say(f"run {outcome.run_id} goes on in the workers; follow it with: {follow}")
        return
    if outcome.interrupted:
        command = format_resume_command(outcome.run_id, settings.store)
        if command is None:
            reporting.say(
                f"interrupted: run {outcome.run_id} cannot be resumed: the memory store keeps "
                "nothing (use --store sqlite:PATH for runs that can be resumed)"
            )
        else:
            reporting.say(f"interrupted: run {outcome.run_id} can be resumed with {command}")
        return
    if reporting.mode == "json":
        return
    from arvel_flow.cli.summary import (
        compute_rows,
        format_counts,
        format_failure_lines,
        format_failures,
        format_summary_lines,
        format_summary_table,
    )

    records = await queue.store.get_steps(outcome.run_id)
    rows = compute_rows(plan, records)
    failures = [f for f in await queue.store.list_failed() if f.run_id == outcome.run_id]
    assert outcome.result is not None
    if reporting.console is not None:
        reporting.console.print(format_summary_table(rows))
        if failures:
            reporting.console.print(format_failures(failures))
    else:
        for line in format_summary_lines(rows):
            click.echo(line)
        for line in format_failure_lines(failures):
            click.echo(line)
    reporting.say(f"run {outcome.run_id} {outcome.result.status}: {format_counts(outcome.result)}")


@click.command()
@click.argument("run_id")
@STORE_OPTION
@FORMAT_OPTION
def status(run_id: str, store: str | None, output_format: str) -> None:
    """Show where one run stands: its status, progress and each step.

    RUN_ID may be the start of the id, as long as no other run's id starts the same.
    """
    asyncio.run(_status(run_id, store, output_format))


async def _status(run_id: str, store_url: str | None, output_format: str) -> None:
    import json
    import time

    from arvel_flow.cli.ids import resolve_run_id
    from arvel_flow.cli.records import format_status, status_document
    from arvel_flow.queue.plan_json import plan_from_dict
    from arvel_flow.queue.result import compute_result

    settings = settings_for(store_url)
    store = open_store_for(store_url, read_only=True)
    try:
        run_id = await resolve_run_id(store, run_id, settings.store)
        run = await store.get_run(run_id)
        assert run is not None
        plan = plan_from_dict(await store.load_plan(run_id))
        records = await store.get_steps(run_id)
        result = compute_result(run_id, run.status, plan, records)
        now = time.time()
        owner = await store.get_run_owner(run_id, now)
        if output_format == "json":
            click.echo(json.dumps(status_document(run, result, owner), indent=2))
        else:
            resume = format_resume_command(run_id, settings.store)
            print_renderable(
                format_status(
                    run, plan, result, records, resume_command=resume, owner=owner, now=now
                )
            )
    finally:
        await store.close()


@click.group(invoke_without_command=True)
@STORE_OPTION
@FORMAT_OPTION
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@NO_TRUNC_OPTION
@click.pass_context
def runs(
    ctx: click.Context, store: str | None, output_format: str, limit: int, no_trunc: bool
) -> None:
    """List recent runs, the most recent first (``runs prune`` deletes old ones)."""
    ctx.obj = {"store": store}
    if ctx.invoked_subcommand is None:
        asyncio.run(_runs(store, output_format, limit, no_trunc))


async def _runs(store_url: str | None, output_format: str, limit: int, no_trunc: bool) -> None:
    import json

    from arvel_flow.cli.records import format_runs, run_document

    store = open_store_for(store_url, read_only=True)
    try:
        records = await store.list_runs(limit)
    finally:
        await store.close()
    if output_format == "json":
        click.echo(json.dumps([run_document(r) for r in records], indent=2))
    else:
        shown = settings_for(store_url).store
        print_renderable(format_runs(records, store=shown, full_ids=no_trunc))


@runs.command("prune")
@click.option(
    "--older-than",
    "age",
    callback=to_seconds,
    required=True,
    help="Delete runs that ended longer ago than this: 7d, 12h, 90m, seconds.",
)
@click.option(
    "--interrupted",
    is_flag=True,
    help="Also delete interrupted runs started longer ago (they can no longer be resumed).",
)
@STORE_OPTION
@FORMAT_OPTION
@click.pass_context
def prune(
    ctx: click.Context, age: float, interrupted: bool, store: str | None, output_format: str
) -> None:
    """Delete runs that ended (succeeded or failed) before a cut-off, with their steps.

    A running run is never deleted; an interrupted one only with --interrupted.
    Failed-job records stay: ``failed flush --older-than`` deletes those.
    """
    asyncio.run(_prune(store or ctx.obj["store"], age, interrupted, output_format))


async def _prune(store_url: str | None, age: float, interrupted: bool, output_format: str) -> None:
    import json
    import time

    from arvel_flow.cli.records import format_when
    from arvel_flow.store.urls import mask_url

    before = time.time() - age
    store = open_store_for(store_url)
    try:
        pruned = await store.prune_runs(before, interrupted=interrupted)
    finally:
        await store.close()
    if output_format == "json":
        click.echo(json.dumps({"pruned": pruned, "before": before}, indent=2))
        return
    shown = mask_url(settings_for(store_url).store)
    ended = "ended or were interrupted" if interrupted else "ended"
    click.echo(
        f"pruned {len(pruned)} run(s) that {ended} before {format_when(before)}"
        f" from the store {shown}"
    )
