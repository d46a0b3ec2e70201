"""The front door: start, follow and resume a declared pipeline from Python.

`start` does what ``arvel-flow run FILE`` does (load, validate, compile, open the store,
dispatch) and returns a `Run`, a handle on the run going on: `Run.id`, `Run.wait` for
its `BatchResult`, `Run.events` to follow it, `Run.interrupt` and `Run.close`. `run` is
the one-call form; `resume` continues a run that was interrupted (or whose process
died), like ``arvel-flow run --resume RUN_ID``. The command is a shell over these.

Embedded (the default: jobs in this process, state in sqlite or memory) the run lives
in this process: closing the handle before the run ends interrupts it (resumable).
With a broker the jobs run in ``arvel-flow worker`` processes: `Run.wait` and
`Run.events` follow the events the workers publish (with a Redis store: see
`arvel_flow.launch.follow`), and closing the handle only stops following.

The observers the settings name (the file's ``observers:``, ``ARVEL_FLOW_OBSERVERS``) get
the run's events as with the command: `Run.begin` loads them, `Run.close` drains them
(for at most `arvel_flow.queue.observers.DRAIN_TIMEOUT` seconds) and closes them.

No signal handler is installed unless asked (``handle_signals=True``): an application
that embeds a run owns its signals.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.launch.files import compile_file, describe_drift
from arvel_flow.launch.launcher import Launcher, Outcome
from arvel_flow.launch.pinned import describe_changes, pin, resume_settings
from arvel_flow.outage import Outage
from arvel_flow.queue.envelope import new_id
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.front import Queue
from arvel_flow.queue.observers import Observers
from arvel_flow.queue.plan import Plan
from arvel_flow.queue.result import BatchResult, compute_result
from arvel_flow.settings import QueueSettings
from arvel_flow.store.contracts import StoreContract
from arvel_flow.wiring import make_queue

logger = logging.getLogger(__name__)


class Run:
    """A run this process started or resumed: its id, its events, its result.

    Made by `start` and `resume` (or `Run.begin` on a queue of your own). The handle
    owns its queue and store: `close` it (or use ``async with``) when done.
    """

    def __init__(
        self,
        launcher: Launcher,
        plan: Plan,
        run_id: str,
        following: asyncio.Task[Outcome],
        observers: Observers | None = None,
    ) -> None:
        self.id = run_id
        self.plan = plan
        self._launcher = launcher
        self._observers = observers
        self._following = following
        self._followed = False
        self._closed = False

    @classmethod
    async def begin(
        cls,
        queue: Queue,
        plan: Plan,
        run_id: str,
        *,
        resume: bool = False,
        force: bool = False,
        follow: bool = True,
        outage: Outage | None = None,
        handle_signals: bool = False,
        announce: Callable[[], None] | None = None,
        say: Callable[[str], None] | None = None,
        heartbeat_timeout: float = 10.0,
        observers: Sequence[str] = (),
        allowed: Sequence[str] | None = None,
    ) -> Run:
        """Start (or resume) ``run_id`` on ``queue``; returns once its jobs are dispatched.

        Args:
            queue: Where the jobs go; the handle takes it over (`close` closes it). If
                beginning fails, it is left to the caller.
            plan: What to run (for a resume, the run's stored plan).
            run_id: The run's id.
            resume: Continue the stored run ``run_id`` rather than start a new one.
            force: With ``resume``, take the run over from an owner that is gone.
            follow: False: a distributed run is only dispatched, not followed.
            outage: Rides a distributed run through broker and store outages.
            handle_signals: The first SIGINT or SIGTERM interrupts, a second cancels.
            announce: Called once the jobs are dispatched, before anything else runs.
            say: Where a distributed run's notices go (no worker consumes its queue):
                this module's log by default.
            heartbeat_timeout: Seconds without a heartbeat after which a worker is gone.
            observers: Dotted paths of observers to give the run's events to (see
                `arvel_flow.queue.observers`), loaded before anything is dispatched.
            allowed: The module prefixes observers may come from (None: any).

        Raises:
            ImportTargetError: An observer cannot be loaded (nothing was dispatched).
            RunNotFoundError: ``resume`` and the store holds no such run.
            RunOwnedError: ``resume`` and another live process executes the run.
            BackendError: The store or broker cannot be reached.
        """
        watching = Observers.load(queue.events, observers, allowed=allowed)
        try:
            launcher = Launcher(
                queue,
                outage=outage,
                handle_signals=handle_signals,
                say=say or logger.warning,
                heartbeat_timeout=heartbeat_timeout,
            )
            return await cls._begin(
                launcher,
                plan,
                run_id,
                watching,
                resume=resume,
                force=force,
                follow=follow,
                announce=announce,
            )
        except BaseException:
            await watching.aclose()
            raise

    @classmethod
    async def _begin(
        cls,
        launcher: Launcher,
        plan: Plan,
        run_id: str,
        observers: Observers,
        *,
        resume: bool,
        force: bool,
        follow: bool,
        announce: Callable[[], None] | None,
    ) -> Run:
        begun = asyncio.Event()

        def dispatched() -> None:
            begun.set()
            if announce is not None:
                announce()

        if resume:
            following = launcher.resume(run_id, force=force, follow=follow, announce=dispatched)
        else:
            following = launcher.run(plan, run_id, follow=follow, announce=dispatched)
        task = asyncio.create_task(following, name=f"arvel-flow run {run_id}")
        waiting = asyncio.create_task(begun.wait())
        try:
            await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        finally:
            waiting.cancel()
        if task.done():
            task.result()  # raises what stopped the run from beginning
        return cls(launcher, plan, run_id, task, observers)

    @property
    def store(self) -> StoreContract:
        """The store the run lives in: its steps, its failed jobs (open until `close`)."""
        return self._launcher.queue.store

    async def follow(self) -> Outcome:
        """Follow the run until following ends: how it ended (an `Outcome`).

        Cancelling the caller does not stop the run: `interrupt` or `close` does.
        """
        self._followed = True
        return await asyncio.shield(self._following)

    async def wait(self) -> BatchResult:
        """Follow the run to its end; its `BatchResult`.

        An interrupted run gives its result so far (status ``interrupted``); a
        distributed run that is no longer followed gives what the store holds now.

        Raises:
            BackendError: The store failed (or stayed away past ``outage_grace``).
            RunTakenOverError: Another process took the run over.
        """
        outcome = await self.follow()
        if outcome.result is not None:
            return outcome.result
        record = await self.store.get_run(self.id)
        status = "interrupted" if record is None else record.status
        return compute_result(self.id, status, self.plan, await self.store.get_steps(self.id))

    async def events(self) -> AsyncIterator[Event]:
        """The events of this process, from this call on, until following the run ends.

        Events before the call are not replayed: to see every one, pass an `EventBus`
        with a listener to `start`. With a broker and a Redis store, the job events the
        workers publish are here too.
        """
        bus = self._launcher.queue.events
        pending: asyncio.Queue[Event] = asyncio.Queue()
        unsubscribe = bus.subscribe(pending.put_nowait)
        try:
            while not (self._following.done() and pending.empty()):
                if not pending.empty():
                    yield pending.get_nowait()
                    continue
                getting = asyncio.ensure_future(pending.get())
                try:
                    await asyncio.wait(
                        (getting, self._following), return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    getting.cancel()
                if getting.done() and not getting.cancelled():
                    yield getting.result()
        finally:
            unsubscribe()

    def interrupt(self) -> None:
        """First call: stop dispatching, let running jobs finish. Second: cancel them.

        The run is then left ``interrupted`` in the store, ready for `resume`; with a
        broker, the run goes on in the workers and this process stops following it.
        """
        self._launcher.interrupt()

    async def close(self) -> None:
        """Interrupt the run if it is still followed, then close the queue and store, and
        the observers once they took the events left (within their drain bound).

        Raises:
            Exception: What stopped following the run (the store failed, say), when
                neither `follow` nor `wait` was awaited to hear it: it is never lost.
        """
        if self._closed:
            return
        self._closed = True
        if not self._following.done():
            self.interrupt()
            await asyncio.wait((self._following,))
        try:
            await self._launcher.queue.close()
        finally:
            if self._observers is not None:
                await self._observers.aclose()
        error = None if self._following.cancelled() else self._following.exception()
        if error is not None and not self._followed:
            self._followed = True
            raise error

    async def __aenter__(self) -> Run:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
            return
        try:
            await self.close()
        except Exception:
            # The block's own error goes on; the run's is logged rather than lost.
            logger.exception("run %s failed while %s was raised", self.id, exc_type)


async def start(
    pipeline: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    settings: QueueSettings | None = None,
    run_id: str | None = None,
    events: EventBus | None = None,
    handle_signals: bool = False,
) -> Run:
    """Start a run of a pipeline file; returns once its first jobs are dispatched.

    Args:
        pipeline: The pipeline file.
        vars: Values for the file's ``vars:`` (as ``--set NAME=VALUE`` gives them).
        settings: The settings you choose. The fields you set beat ``ARVEL_FLOW_*``
            variables, which beat the file's ``queue:`` section, which beats the
            defaults (as command-line flags do).
        run_id: The run's id (a fresh one by default).
        events: A bus to emit the run's events on, its listeners subscribed already.
        handle_signals: Interrupt on SIGINT / SIGTERM while the run is followed.

    Raises:
        ConfigError: The file or a setting is invalid, or the driver is ``null``.
        ImportTargetError: One of its observers cannot be loaded.
        BackendError: The store or broker cannot be reached.
    """
    plan, queue_section = compile_file(os.fspath(pipeline), vars or {})
    resolved = QueueSettings.resolve(queue_section, _chosen(settings))
    _refuse_null_driver(resolved)
    queue = make_queue(resolved, events=events or EventBus())
    try:
        return await begin_run(
            queue,
            pin(plan, resolved),
            run_id or new_id()[:12],
            resolved,
            handle_signals=handle_signals,
        )
    except BaseException:
        await queue.close()
        raise


async def resume(
    run_id: str,
    *,
    settings: QueueSettings | None = None,
    force: bool = False,
    events: EventBus | None = None,
    handle_signals: bool = False,
) -> Run:
    """Continue a stored run from its stored plan: finished steps do not run again.

    A separate function, not a flag of `start`: a resume reads no file, so it takes
    no ``pipeline`` or ``vars``. If the file the run came from changed since, a
    warning is logged and the stored plan runs. The run settings it was started with
    (concurrency, broker, ...: `arvel_flow.launch.pinned`) are reused.

    Args:
        run_id: The run to continue (``arvel-flow runs`` lists them).
        settings: As for `start`, with the run's pinned settings where the file's
            ``queue:`` section stands (what you set overrides them, and is logged);
            the store must be the one the run is in.
        force: Take the run over from an owner process that is gone.
        events: A bus to emit the run's events on.
        handle_signals: Interrupt on SIGINT / SIGTERM while the run is followed.

    Raises:
        RunNotFoundError: The store holds no such run.
        RunOwnedError: Another live process executes the run (pass ``force`` only if
            it is gone).
        BackendError: The store or broker cannot be reached.
    """
    chosen = _chosen(settings)
    resolved = QueueSettings.resolve(flags=chosen)
    _refuse_null_driver(resolved)
    events = events or EventBus()
    queue = make_queue(resolved, events=events)
    try:
        plan = await queue.orchestrator.plan_of(run_id)
        note = describe_drift(plan)
        if note:
            logger.warning("%s", note)
        pinned, changes = resume_settings(plan, chosen, run_id)
        if pinned != resolved:
            resolved = pinned
            _refuse_null_driver(resolved)
            opened, queue = queue, make_queue(resolved, events=events)
            await opened.close()
        changed = describe_changes(changes)
        if changed:
            logger.info("%s", changed)
        return await begin_run(
            queue, plan, run_id, resolved, handle_signals=handle_signals, resume=True, force=force
        )
    except BaseException:
        await queue.close()
        raise


async def run(
    pipeline: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    settings: QueueSettings | None = None,
    events: EventBus | None = None,
    handle_signals: bool = False,
) -> BatchResult:
    """Run a pipeline file to its end: `start`, `Run.wait`, `Run.close` in one call.

    Raises:
        ConfigError: The file or a setting is invalid.
        BackendError: The store or broker cannot be reached, or failed.
    """
    async with await start(
        pipeline, vars=vars, settings=settings, events=events, handle_signals=handle_signals
    ) as handle:
        return await handle.wait()


def _chosen(settings: QueueSettings | None) -> dict[str, Any]:
    """The fields a caller set on ``settings`` (or got from ``ARVEL_FLOW_*``)."""
    if settings is None:
        return {}
    return {name: getattr(settings, name) for name in settings.model_fields_set}


def _refuse_null_driver(settings: QueueSettings) -> None:
    if settings.driver == "null":
        issue = ConfigIssue(
            "the null driver runs nothing, so there is no run to follow "
            "(arvel-flow run --dry-run shows what would run)",
            path="queue.driver",
        )
        raise ConfigError([issue])


def _logged_outage(settings: QueueSettings) -> Outage:
    """Rides a distributed run through outages, saying so in this module's log."""
    return Outage(settings.outage_grace, logger.warning)


async def begin_run(
    queue: Queue,
    plan: Plan,
    run_id: str,
    settings: QueueSettings,
    *,
    handle_signals: bool = False,
    resume: bool = False,
    force: bool = False,
) -> Run:
    """`Run.begin` with what ``settings`` decide: outage grace, heartbeat timeout, observers.

    The one way `start`, `resume` and the scheduler begin a run, so that a setting
    reaches every run alike. ``queue`` is left to the caller if beginning fails.
    """
    return await Run.begin(
        queue,
        plan,
        run_id,
        resume=resume,
        force=force,
        outage=_logged_outage(settings),
        handle_signals=handle_signals,
        heartbeat_timeout=settings.heartbeat_timeout,
        observers=settings.observers,
        allowed=settings.allowed_modules or None,
    )
