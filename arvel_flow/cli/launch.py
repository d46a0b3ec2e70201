"""Starting, resuming and following one run: what ``arvel-flow run`` does, minus parsing.

A run goes: load and compile the file (or take the stored plan of the run to resume),
pick the queue its settings describe, dispatch, and wait while reporters show progress.
The first Ctrl-C stops dispatching and lets running jobs finish; a second cancels them.
Either way the run is left ``interrupted`` in the store, ready for ``--resume``.

A distributed run (its jobs go to workers) rides through broker and store outages of
up to ``outage_grace`` seconds (`Outage`): dispatching is retried (as a resume once the
run is recorded, so nothing is sent twice that matters), following waits for the store
to answer again. Past the grace, `OutageError` (exit 3); the run goes on in the workers.
A store that cannot be reached at all when the command starts fails at once (exit 3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shlex
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from arvel_flow.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from arvel_flow.errors import BackendError, OutageError, RunNotFoundError
from arvel_flow.outage import Outage
from arvel_flow.queue.front import BaseQueue
from arvel_flow.queue.plan import Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.settings import QueueSettings, load_queue_settings
from arvel_flow.store.urls import mask_url

T = TypeVar("T")


def resolve_settings(file_queue: Mapping[str, Any], flags: Mapping[str, Any]) -> QueueSettings:
    """Settings, strongest first: flags, ``ARVEL_FLOW_*`` variables, the file, defaults."""
    from_env = load_queue_settings()
    values: dict[str, Any] = {k: v for k, v in file_queue.items() if v is not None}
    values.update({name: getattr(from_env, name) for name in from_env.model_fields_set})
    values.update({k: v for k, v in flags.items() if v is not None})
    return load_queue_settings(**values)


def compile_file(path: str, set_vars: Mapping[str, Any]) -> tuple[Plan, Mapping[str, Any]]:
    """The plan of a pipeline file and its ``queue:`` section; ConfigError if invalid."""
    from arvel_flow.compiler import compile_pipeline, load_pipeline

    spec = load_pipeline(path, set_vars=set_vars)
    plan = compile_pipeline(spec).to_plan(spec.name)
    plan = dataclasses.replace(plan, origin=str(Path(path).resolve()), digest=file_digest(path))
    return plan, spec.queue.model_dump(exclude_none=True)


def file_digest(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def describe_drift(plan: Plan) -> str | None:
    """A note when the file a stored plan came from has changed since."""
    if plan.origin is None or plan.digest is None:
        return None
    current = file_digest(plan.origin)
    if current == plan.digest:
        return None
    change = "is gone" if current is None else "changed"
    return f"{plan.origin} {change} since this run started; resuming the plan it started with"


def format_resume_command(run_id: str, store: str) -> str | None:
    """The command that resumes ``run_id`` in ``store``; None when the store keeps nothing.

    ``--store`` is spelled out unless a bare ``--resume`` would open that store anyway:
    a store named by the pipeline file is not known to a resume, which reads no file.
    """
    if store == "memory":
        return None
    command = f"arvel-flow run --resume {run_id}"
    if store != QueueSettings().store:
        command += f" --store {shlex.quote(mask_url(store))}"
    return command


@dataclass(frozen=True, slots=True)
class Outcome:
    """How following a run ended: its result, or an interruption."""

    run_id: str
    result: BatchResult | None
    interrupted: bool = False
    remote: bool = False
    """The run goes on in workers: this process only stopped following it."""

    @property
    def exit_code(self) -> int:
        """0 succeeded (or detached), 1 failed, 130 interrupted (SPEC §5)."""
        if self.remote and not self.interrupted:
            return EXIT_OK
        if self.interrupted or self.result is None:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.result.ok else EXIT_FAILED


class Launcher:
    """Runs a plan (or resumes a run) on a queue until it ends or is interrupted.

    Args:
        queue: Where the run's jobs go.
        outage: Rides a distributed run through broker and store outages (none by
            default: the first failure ends the command).
    """

    def __init__(self, queue: BaseQueue, *, outage: Outage | None = None) -> None:
        self.queue = queue
        # Jobs sent to workers keep running there: stopping means to stop following.
        self.remote = queue.remote
        self.outage = outage if self.remote else None
        self._interrupts = 0
        self._stop = asyncio.Event()
        self._main: asyncio.Task[Any] | None = None

    async def run(self, plan: Plan, run_id: str, *, follow: bool = True) -> Outcome:
        """Start a run of ``plan`` under ``run_id`` and follow it (or, remote, not)."""
        if not follow:
            await self._start(plan, run_id)
            return Outcome(run_id, None, remote=True)
        return await self._follow(run_id, self._start(plan, run_id))

    async def _start(self, plan: Plan, run_id: str) -> str:
        """Start the run; a retry after an outage resumes it if it was recorded.

        A store that cannot be reached at all is no outage (a wrong URL, a server not
        started): that fails at once.
        """
        if self.outage is not None:
            await self.queue.store.get_run(run_id)
        attempts = 0

        async def attempt() -> str:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and await self.queue.store.get_run(run_id) is not None:
                return await self.queue.resume(run_id)
            return await self.queue.start(plan, run_id=run_id)

        return await self._ride(attempt)

    async def _ride(self, operation: Callable[[], Awaitable[T]]) -> T:
        """``operation``, through outages when this launcher rides them."""
        if self.outage is None:
            return await operation()
        return await self.outage.call(operation)

    async def resume(
        self, run_id: str, *, force: bool = False, announce: Callable[[], None] | None = None
    ) -> Outcome:
        """Continue a stored run and follow it.

        ``force`` takes the run over from an owner that is gone; ``announce`` is called
        once the run is this process's (its lease taken) and its jobs are dispatched.
        """
        if await self.queue.store.get_run(run_id) is None:
            raise RunNotFoundError(run_id)

        async def begin() -> None:
            await self._ride(lambda: self.queue.resume(run_id, force=force))
            if announce is not None:
                announce()

        return await self._follow(run_id, begin())

    async def _follow(self, run_id: str, begin: Awaitable[object]) -> Outcome:
        loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.interrupt)
        watchers: set[asyncio.Task[Any]] = set()
        try:
            await begin
            waiting = asyncio.create_task(self._wait(run_id))
            stopping = asyncio.create_task(self._stop.wait())
            watchers = {waiting, stopping}
            await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                return Outcome(run_id, waiting.result())
            return await self._interrupted(run_id)
        except asyncio.CancelledError:
            # A queue that cannot pause (sync) is interrupted by cancelling the run itself.
            return await self._interrupted(run_id)
        except Exception as error:
            # The run cannot go on here (its store failed, say): stop its jobs before
            # the error is reported, rather than wait for them to end.
            self.queue.abandon(error)
            raise
        finally:
            for watcher in watchers:
                watcher.cancel()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _wait(self, run_id: str) -> BatchResult:
        """The run's result, waiting through outages for the store to answer again."""
        while True:
            try:
                return await self.queue.wait(run_id)
            except OutageError:
                raise
            except BackendError as error:
                if self.outage is None:
                    raise
                await self.outage.call(lambda: self.queue.store.get_run(run_id), after=error)

    def interrupt(self) -> None:
        """First call: stop dispatching, let running jobs finish. Second: cancel them."""
        self._interrupts += 1
        if self.remote:
            self._stop.set()
        elif self.queue.pausable:
            if self._interrupts == 1:
                self.queue.pause()
                self._stop.set()
            else:
                self.queue.cancel_running()
        elif self._main is not None:
            self._main.cancel()

    async def _interrupted(self, run_id: str) -> Outcome:
        if self.remote:
            return Outcome(run_id, None, interrupted=True, remote=True)
        if self.queue.pausable:
            await self.queue.drain()
        await self.queue.store.set_run_status(run_id, "interrupted", self.queue.clock.now())
        return Outcome(run_id, None, interrupted=True)
