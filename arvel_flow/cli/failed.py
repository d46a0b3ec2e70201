"""The ``failed`` commands: list, show, retry, forget and flush permanently failed jobs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from arvel_flow.cli.common import (
    FORMAT_OPTION,
    STORE_OPTION,
    open_store_for,
    print_renderable,
    settings_for,
    use_working_directory,
)
from arvel_flow.cli.durations import to_seconds
from arvel_flow.cli.env_option import ENV_FILE_OPTION, use_env_file
from arvel_flow.cli.ids import NO_TRUNC_OPTION, UnknownFailedJobError
from arvel_flow.cli.otel_option import OTEL_OPTION, start_tracing

if TYPE_CHECKING:
    from arvel_flow.queue.front import Queue
    from arvel_flow.queue.targets import JobRef
    from arvel_flow.store.contracts import FailedJob, StoreContract


_REFUSED = "arvel_flow.errors.ImportTargetError"
"""The exception of a record whose job, middleware or ``retry_on`` path was refused."""


@click.group()
def failed() -> None:
    """Look at, retry or forget the jobs that failed for good."""


@failed.command("list")
@STORE_OPTION
@FORMAT_OPTION
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@click.option("--run", "run_id", metavar="RUN_ID", help="Only the failed jobs of this run.")
@NO_TRUNC_OPTION
def list_failed(
    store: str | None, output_format: str, limit: int | None, run_id: str | None, no_trunc: bool
) -> None:
    """List failed jobs, the most recent first."""
    from arvel_flow.cli.records import failed_document, format_failed_list

    async def listed(backend: StoreContract) -> tuple[str | None, list[FailedJob]]:
        run = None if run_id is None else await _run_filter(backend, run_id, store)
        return run, await backend.list_failed(limit, run_id=run)

    run, records = asyncio.run(_with_store(store, listed, read_only=True))
    if output_format == "json":
        documents = [failed_document(r, with_traceback=False) for r in records]
        click.echo(json.dumps(documents, indent=2))
    else:
        shown = settings_for(store).store
        print_renderable(format_failed_list(records, store=shown, run_id=run, full_ids=no_trunc))


@failed.command("show")
@click.argument("failed_id")
@STORE_OPTION
@FORMAT_OPTION
def show_failed(failed_id: str, store: str | None, output_format: str) -> None:
    """Show one failed job: its payload (secrets redacted), error and traceback.

    FAILED_ID may be the start of the id, as long as no other failed job's id starts
    the same.
    """
    from arvel_flow.cli.records import failed_document, format_failed_detail

    async def shown(backend: StoreContract) -> FailedJob | None:
        return await backend.get_failed(await _failed_id(backend, failed_id, store))

    record = asyncio.run(_with_store(store, shown, read_only=True))
    if record is None:  # forgotten since it was found
        raise UnknownFailedJobError(failed_id, settings_for(store).store)
    if output_format == "json":
        click.echo(json.dumps(failed_document(record), indent=2))
    else:
        print_renderable(format_failed_detail(record))


@failed.command("retry")
@click.argument("failed_ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed job.")
@STORE_OPTION
@OTEL_OPTION
@ENV_FILE_OPTION
@click.pass_context
def retry_failed(
    ctx: click.Context,
    failed_ids: tuple[str, ...],
    retry_all: bool,
    store: str | None,
    otel: bool,
    env_file: Path | None,
) -> None:
    """Run failed jobs again through the configured driver and report how each ended.

    With the embedded default the jobs run here, in-process; with a distributed broker
    they are dispatched to the workers. Each retried job leaves the failed-jobs store;
    one that fails again is recorded anew. Each job is claimed before it is retried,
    so retries running at once never run one job twice: a job claimed by another retry
    (or already retried) is skipped. An id may be given by its first characters. The
    job's ``${NAME}`` references are resolved here, from ``.env`` too, as by ``run``.
    """

    if bool(failed_ids) == retry_all:
        raise click.UsageError("give failed job IDs or --all (one of them)")
    use_env_file(env_file)
    use_working_directory()
    start_tracing(otel)
    ctx.exit(asyncio.run(_retry(failed_ids, retry_all, store)))


@failed.command("forget")
@click.argument("failed_ids", nargs=-1, required=True)
@STORE_OPTION
def forget_failed(failed_ids: tuple[str, ...], store: str | None) -> None:
    """Delete failed jobs from the store (an id may be given by its first characters)."""

    async def forget(backend: StoreContract) -> None:
        ids = [await _failed_id(backend, failed_id, store) for failed_id in failed_ids]
        for failed_id in ids:
            if not await backend.forget_failed(failed_id):
                raise UnknownFailedJobError(failed_id, settings_for(store).store)
            click.echo(f"forgot {failed_id}")

    asyncio.run(_with_store(store, forget))


@failed.command("flush")
@click.option(
    "--older-than",
    "age",
    callback=to_seconds,
    help="Only jobs that failed longer ago than this: 7d, 12h, 90m, seconds.",
)
@click.option("--run", "run_id", metavar="RUN_ID", help="Only the failed jobs of this run.")
@click.option("--job", metavar="PATH", help="Only the failed jobs of this job class path.")
@STORE_OPTION
def flush_failed(age: float | None, run_id: str | None, job: str | None, store: str | None) -> None:
    """Delete failed jobs from the store: every one, or those the filters name (all of them)."""
    import time

    before = None if age is None else time.time() - age

    async def flush(backend: StoreContract) -> int:
        run = None if run_id is None else await _run_filter(backend, run_id, store)
        return await backend.flush_failed(before=before, run_id=run, job=job)

    count = asyncio.run(_with_store(store, flush))
    click.echo(f"flushed {count} failed job(s)")


async def _with_store(store_url: str | None, action: Any, *, read_only: bool = False) -> Any:
    store = open_store_for(store_url, read_only=read_only)
    try:
        return await action(store)
    finally:
        await store.close()


async def _failed_id(store: StoreContract, text: str, store_url: str | None) -> str:
    """The failed job's whole id, from the id or its first characters."""
    from arvel_flow.cli.ids import resolve_failed_id

    return await resolve_failed_id(store, text, settings_for(store_url).store)


async def _run_filter(store: StoreContract, text: str, store_url: str | None) -> str:
    """The run a ``--run`` filter names: a run's id or its first characters.

    A run that is no longer in the store (pruned) may still have failed jobs: a text
    that starts no run id is taken as a whole id as it is.
    """
    from arvel_flow.cli.ids import UnknownRunError, resolve_run_id

    try:
        return await resolve_run_id(store, text, settings_for(store_url).store)
    except UnknownRunError:
        return text.strip()


async def _retry(failed_ids: tuple[str, ...], retry_all: bool, store_url: str | None) -> int:
    from arvel_flow.wiring import make_queue

    settings = settings_for(store_url)
    queue = make_queue(settings)
    try:
        records = await _records(queue.store, failed_ids, retry_all, store_url)
        outcomes = [await _retry_claimed(queue, record, settings) for record in records]
        await _say_how_to_continue(queue.store, records, settings.store)
    finally:
        await queue.close()
    return 1 if "failed" in outcomes else 0


async def _say_how_to_continue(
    store: StoreContract, records: list[FailedJob], store_url: str
) -> None:
    """Say, once per run, that the jobs of a failed run were retried alone, and what next.

    A retry runs the job outside its run: the steps its failure skipped stay skipped
    and the run stays failed until ``run --resume`` continues it.
    """
    from arvel_flow.cli.runs import format_resume_command

    for run_id in dict.fromkeys(r.run_id for r in records if r.run_id is not None):
        run = await store.get_run(run_id)
        command = format_resume_command(run_id, store_url)
        if run is None or run.status != "failed" or command is None:
            continue
        click.echo(
            f"note: retried alone, outside run {run_id}, which stays failed: "
            f"{command} continues the run (its failed and skipped steps run)",
            err=True,
        )


async def _records(
    store: StoreContract, failed_ids: tuple[str, ...], retry_all: bool, store_url: str | None
) -> list[FailedJob]:
    if retry_all:
        return await store.list_failed()
    records = []
    for failed_id in failed_ids:
        record = await store.get_failed(await _failed_id(store, failed_id, store_url))
        if record is None:  # forgotten since it was found
            raise UnknownFailedJobError(failed_id, settings_for(store_url).store)
        records.append(record)
    return records


async def _retry_claimed(queue: Queue, record: FailedJob, settings: Any) -> str:
    """Retry ``record`` if this process wins its claim; "skipped" when another one did."""
    from arvel_flow.queue.failed_claims import retry_claimed

    outcome = await retry_claimed(
        queue.store, record.id, lambda claimed: _retry_one(queue, claimed, settings)
    )
    if outcome is None:
        click.echo(f"{record.id}: skipped: retried already, or by another process now")
        return "skipped"
    return outcome


async def _retry_one(queue: Queue, record: FailedJob, settings: Any) -> str:
    from arvel_flow.errors import SecretError

    label = f"{record.id} {record.step or ''} ({record.job})".replace("  ", " ")
    try:
        ref = await _job_ref(queue, record)
    except SecretError as refusal:
        click.echo(f"{label}: not retried, the record is kept: {refusal}")
        return "failed"
    if settings.driver == "taskiq" and settings.broker != "memory":
        await queue.dispatch(ref)
        await queue.store.forget_failed(record.id)
        click.echo(f"{label}: dispatched")
        return "dispatched"
    if record.exception == _REFUSED:
        # A worker refused it (or its path never resolved): running it here, where no
        # allowlist may apply, would run what the worker would not. Workers screen it.
        click.echo(f"{label}: not retried here: {record.message}")
        return "failed"
    error = await _run_in_place(queue, ref, record)
    # Forgotten only now: a retry cut short leaves the failure where it was.
    await queue.store.forget_failed(record.id)
    if error is not None:
        click.echo(f"{label}: failed again: {type(error).__name__}: {error}")
        return "failed"
    click.echo(f"{label}: succeeded")
    return "succeeded"


async def _run_in_place(queue: Queue, ref: JobRef, record: FailedJob) -> BaseException | None:
    """Run the job to the end here, retries included; the last error, or None.

    The attempts carry the record's run and step, so that a new failure is recorded
    with them and a later retry still finds the job's real parameters in the run's plan.
    """
    from arvel_flow.queue.envelope import Envelope, new_id
    from arvel_flow.queue.runner import Failed, Succeeded

    envelope = Envelope(ref, new_id(), run_id=record.run_id, step=record.step)
    while True:
        outcome = await queue.runner.attempt(envelope)
        if isinstance(outcome, Succeeded):
            if record.run_id is not None and record.step is not None:
                # The run's step failed; now it has succeeded (status counts it so).
                await queue.store.settle_retried_step(
                    record.run_id, record.step, attempts=outcome.attempts, at=queue.clock.now()
                )
            return None
        if isinstance(outcome, Failed):
            return outcome.error
        envelope = outcome.envelope
        await queue.clock.sleep(envelope.available_at - queue.clock.now())


async def _job_ref(queue: Queue, record: FailedJob) -> JobRef:
    """The job to retry, with its real parameters, or `SecretError` saying why there is none.

    It comes from its run's stored plan when that still has the step, else from the
    record's payload: both hold secret references (resolved from the environment when
    the job is built), never values. A secret given in Python was stored as a redacted
    marker: such a job is refused rather than run with a placeholder for an argument.
    """
    from arvel_flow.errors import RunNotFoundError
    from arvel_flow.queue.job import JobSettings
    from arvel_flow.queue.plan import JobNode
    from arvel_flow.queue.targets import JobRef
    from arvel_flow.secrets import python_secret_error

    ref: JobRef | None = None
    if record.run_id is not None and record.step is not None:
        try:
            node = (await queue.orchestrator.plan_of(record.run_id)).node(record.step)
        except (RunNotFoundError, KeyError, ValueError):
            node = None
        if isinstance(node, JobNode):
            ref = node.job
    if ref is None:
        settings = JobSettings.from_values(dict(record.settings))
        ref = JobRef(record.job, dict(record.payload), settings)
    redacted = ref.redacted_fields()
    if redacted:
        raise python_secret_error(redacted[0])
    return ref
