"""Reuse by dotted path: Job classes, duck-typed Pydantic jobs, plain functions (SPEC §1)."""

from __future__ import annotations

import warnings

import pytest

from arvel_flow.errors import ImportTargetError
from arvel_flow.job_settings import JobSettings
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.runner import JobRunner
from arvel_flow.queue.targets import JobRef, resolve_target
from tests.unit.queue.flow_harness import Executor, Harness, gaps
from tests.unit.queue.flow_jobs import JOBS, DuckJob, DuckJobWithSettings, Journal, SyncHandle


@pytest.mark.parametrize("path", [f"{JOBS}:Step", f"{JOBS}.Step"])
async def test_a_job_class_is_reused_by_dotted_path(
    executor: Executor, journal: Journal, path: str
) -> None:
    # Given a job named by its dotted path, in either form, with parameters
    # When it is run
    await executor.run(JobRef(path, {"name": "by-path"}))
    # Then the class was imported, built from the parameters and run
    assert journal.entries == ["by-path"]


async def test_jobs_by_dotted_path_run_in_a_stored_flow(harness: Harness, journal: Journal) -> None:
    # Given a chain of jobs named only by path (as a pipeline file names them)
    chain = Chain(
        JobRef(f"{JOBS}.Step", {"name": "a"}),
        JobRef(f"{JOBS}:Step", {"name": "b"}),
    )
    # When it runs
    result = await chain.dispatch(harness.queue())
    # Then both ran, in order
    assert isinstance(result, BatchResult)
    assert result.ok
    assert journal.entries == ["a", "b"]


async def test_a_duck_typed_pydantic_job_runs(executor: Executor, journal: Journal) -> None:
    # Given a Pydantic model with an async handle() that is not an arvel-flow Job
    # When it is run
    await executor.run(DuckJob(name="duck"))
    # Then its handle() ran once and it succeeded
    assert journal.runs_of("duck") == 1
    assert await executor.failed() == []


async def test_a_duck_typed_job_gets_the_job_defaults(executor: Executor, journal: Journal) -> None:
    # Given a duck-typed job with no settings of its own, failing every time
    # When it is run
    await executor.run(DuckJob(name="duck", fail=True))
    # Then the Job defaults applied: 1 + 3 attempts, 60 s apart
    starts = journal.started_at["duck"]
    assert gaps(starts) == [
        60,
        60,
        60,
    ]
    [record] = await executor.failed()
    assert (record.job, record.attempts) == (f"{JOBS}:DuckJob", 4)


async def test_a_duck_typed_job_keeps_the_settings_it_has(
    executor: Executor, journal: Journal
) -> None:
    # Given a duck-typed job that sets max_retries=1 and backoff=7 itself
    # When it fails every time
    await executor.run(DuckJobWithSettings(name="duck", fail=True))
    # Then its own settings applied
    starts = journal.started_at["duck"]
    assert gaps(starts) == [7]


async def test_a_duck_typed_job_is_reused_by_dotted_path(
    executor: Executor, journal: Journal
) -> None:
    # Given a duck-typed job named by path / When it is run / Then it ran
    await executor.run(JobRef(f"{JOBS}.DuckJob", {"name": "quack"}))
    assert journal.runs_of("quack") == 1


@pytest.mark.parametrize(
    ("path", "entry"),
    [
        (f"{JOBS}:sync_function", "sync f x3"),
        (f"{JOBS}.async_function", "async f x3"),
    ],
)
async def test_a_plain_function_runs_with_its_keyword_arguments(
    executor: Executor, journal: Journal, path: str, entry: str
) -> None:
    # Given a plain function (sync or async) named by path, with keyword arguments
    # When it is run
    await executor.run(JobRef(path, {"name": "f", "times": 3}))
    # Then it was called with them
    assert journal.entries == [entry]


@pytest.mark.parametrize(
    "path",
    [f"{JOBS}:sync_function", f"{JOBS}:async_function"],
)
async def test_execute_returns_what_a_function_returns(runner: JobRunner, path: str) -> None:
    # Given a function job using a default argument
    # When it is run in place / Then its return value comes back
    assert await runner.execute(JobRef(path, {"name": "ab"})) == "ab"


async def test_a_failing_function_is_retried_with_the_job_defaults(
    executor: Executor, journal: Journal
) -> None:
    # Given a plain function that always raises
    # When it is run
    await executor.run(JobRef(f"{JOBS}:failing_function", {"name": "fn"}))
    # Then it was tried 1 + 3 times, and its error recorded
    assert journal.runs_of("fn") == 4
    [record] = await executor.failed()
    assert (record.exception, record.message) == ("ValueError", "fn is broken")


def test_a_class_that_is_not_a_job_is_refused() -> None:
    # Given a class that is neither a Job nor a Pydantic model with async handle()
    # When it is used as a job / Then it is refused, saying what a job must be
    with pytest.raises(ImportTargetError, match="plain class with 'async def handle"):
        JobRef.of(Journal())


def test_a_job_class_with_a_sync_handle_is_refused_at_dispatch() -> None:
    # Given a Job subclass whose handle() is a plain method
    # When it is used as a job / Then it is refused, saying handle() must be async
    with pytest.raises(ImportTargetError, match="async def handle"):
        JobRef.of(SyncHandle())


async def test_a_job_class_with_a_sync_handle_named_by_path_fails_without_running(
    executor: Executor, journal: Journal
) -> None:
    # Given that class named by path, with retries
    # When it is run
    await executor.run(JobRef(f"{JOBS}:SyncHandle"))
    # Then it failed at once, and its handle() never ran
    [record] = await executor.failed()
    assert record.exception == "arvel_flow.errors.ImportTargetError"
    assert journal.runs_of("sync-handle") == 0


def test_a_unique_for_given_in_seconds_by_a_file_dumps_without_a_warning() -> None:
    # Given a job built with a `unique_for` from a pipeline file (a duration: a float)
    job = resolve_target(f"{JOBS}:UserJob").build({"user_id": 1}, JobSettings(unique_for=3600.0))

    # When its payload is taken (as for a failed-jobs record), warnings being errors
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dumped = job.model_dump()

    # Then the value is kept as given, and Pydantic has nothing to say
    assert dumped["unique_for"] == 3600.0
