"""`Supervisor`: ``arvel-flow worker --processes N`` keeps N worker processes running.

Each child is a whole ``arvel-flow worker --processes 1``: its own consumer, its own
name (``host:pid:suffix``) and heartbeat, ``--concurrency`` jobs at once. They share
nothing but the broker, which spreads messages over them as over separate machines.
Children are processes of our own command rather than forks (Dramatiq and Celery fork
or spawn Python processes): a fresh interpreter holds no inherited connection, event
loop or lock, and every broker works unchanged.

The supervisor:

- **Stops gracefully.** The first `stop` sends SIGTERM to every child, which finishes
  its running jobs and exits 0; a second one sends SIGTERM again, and the children
  cancel their jobs (exit 130). Children sit in a process group of their own, so a
  Ctrl-C in the terminal reaches the supervisor only, which passes it on once.
- **Restarts a child that dies** (any exit it did not ask for, a crash or a kill),
  after a backoff that doubles while it keeps dying quickly (`compute_restart_delay`),
  saying so in one line.
- **Gives up on a crash loop.** A slot whose child dies within ``quick_seconds`` of
  starting ``give_up_after`` times in a row, or any child exiting 2 (invalid settings:
  no restart can help), stops the others; `run` returns the child's exit code (1 for a
  signal). So does a child that exits 3 (its broker or store cannot be reached) before
  any child was ever ready, as Dramatiq's does when a worker cannot connect at start: a
  worker that cannot start says so at once, however many processes it has.
- **Tells who asks when a child ended** (``on_exit``, called with its pid whenever it
  reaps one, however it ended): the command drops a killed child's live metrics then.
- **Takes its children with it.** A child learns it is supervised from
  `SUPERVISOR_VARIABLE` and stops like on SIGTERM when its supervisor is gone, even
  after a ``kill -9`` (`arvel_flow.worker.parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from arvel_flow.queue.clock import Clock, SystemClock

SUPERVISOR_VARIABLE = "_ARVEL_FLOW_SUPERVISOR_PID"
"""Set in a child's environment to its supervisor's pid (no ``ARVEL_FLOW_`` setting)."""
READY_VARIABLE = "_ARVEL_FLOW_READY_FD"
"""Set in a child's environment to a pipe it writes ``r`` to once it is ready."""
EXIT_INVALID = 2
EXIT_BACKEND = 3
EXIT_INTERRUPTED = 130

Say = Callable[[str, int], None]
"""Prints one of the supervisor's lines at a `logging` level."""


class Child(Protocol):
    """One running worker process."""

    @property
    def pid(self) -> int:
        """Its process id."""
        ...

    async def wait(self) -> int:
        """Its exit code once it exited (``-N`` when signal N ended it)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether it said it was connected and reading (known for sure once it exited)."""
        ...

    def send_signal(self, signum: int) -> None:
        """Send it ``signum`` (nothing if it already exited)."""
        ...


Spawn = Callable[[], Awaitable[Child]]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When and how often a dead child is started again (seconds)."""

    first_delay: float = 0.25
    max_delay: float = 10.0
    quick_seconds: float = 60.0
    """A child that dies sooner than this after starting crashed quickly."""
    give_up_after: int = 5
    """Quick crashes in a row of one slot after which the supervisor gives up."""


def compute_restart_delay(quick_crashes: int, policy: RestartPolicy) -> float:
    """Seconds to wait before starting a child whose slot crashed quickly ``quick_crashes``
    times in a row: ``first_delay``, doubling, at most ``max_delay``.

    Example:
        >>> [compute_restart_delay(n, RestartPolicy()) for n in range(1, 5)]
        [0.25, 0.5, 1.0, 2.0]
    """
    return min(policy.first_delay * 2.0 ** max(quick_crashes - 1, 0), policy.max_delay)


def format_exit(code: int) -> str:
    """How a child ended, for people: ``exited with code 3``, ``was killed by SIGKILL``."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


class CrashLoopError(Exception):
    """A child kept dying at start (or exited 2): the supervisor stops."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Supervisor:
    """Keeps ``processes`` children from ``spawn`` running until `stop`.

    Args:
        processes: How many children run at once.
        spawn: Starts one child.
        say: Where the supervisor's lines go, each with its `logging` level (the
            command prints them as the workers print theirs).
        policy: Restart delays and when to give up.
        clock: Time, for the delays (a fake one in tests).
        on_exit: Called with a child's pid once it exited, whatever the reason, before
            any restart (say, to drop the figures a ``kill -9`` left behind). If it
            raises, a warning line says so and the supervisor goes on.
    """

    def __init__(
        self,
        processes: int,
        spawn: Spawn,
        *,
        say: Say,
        policy: RestartPolicy | None = None,
        clock: Clock | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("a supervisor needs at least one process")
        self.processes = processes
        self.policy = policy or RestartPolicy()
        self.clock: Clock = clock or SystemClock()
        self._spawn = spawn
        self._say = say
        self._on_exit = on_exit
        self._children: dict[int, Child] = {}
        self._codes: list[int] = []
        self._stops = 0
        self._ever_ready = False
        self._stopping = asyncio.Event()

    @property
    def children(self) -> list[Child]:
        """The children running now."""
        return list(self._children.values())

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called (or the supervisor gave up)."""
        return self._stopping.is_set()

    @property
    def aborted(self) -> bool:
        """Whether a second `stop` asked the children to cancel their jobs."""
        return self._stops > 1

    async def run(self) -> int:
        """Start the children and keep them running until `stop`; the exit code.

        0 once every child stopped gracefully, 130 after a second `stop`, or the code
        of a child that failed to stop or made the supervisor give up (1 for a signal).
        """
        slots = [asyncio.create_task(self._keep(slot)) for slot in range(self.processes)]
        done, _ = await asyncio.wait(slots, return_when=asyncio.FIRST_EXCEPTION)
        failures = [error for task in done if (error := task.exception())]
        if failures:
            self.stop()
        await asyncio.wait(slots)
        # Every slot's failure is retrieved, the first reported: none goes unseen.
        failures = [error for task in slots if (error := task.exception())]
        if failures:
            first = failures[0]
            if not isinstance(first, CrashLoopError):
                raise first
            self._say(f"error: {first}", logging.ERROR)
            return first.code
        # Killed by our SIGTERM before it could handle it (still starting): stopped too.
        stopped = (0, EXIT_INTERRUPTED, -signal.SIGTERM)
        failed = [code for code in self._codes if code not in stopped]
        if failed:
            return failed[0] if failed[0] > 0 else 1
        return EXIT_INTERRUPTED if self.aborted else 0

    def stop(self) -> None:
        """First call: children finish their running jobs and exit; second: they cancel them."""
        self._stops += 1
        self._stopping.set()
        self._stop_children(signal.SIGTERM)

    def _stop_children(self, signum: int) -> None:
        for child in self._children.values():
            child.send_signal(signum)

    async def _keep(self, slot: int) -> None:
        """Run a child in ``slot``, again each time it dies, until stopping."""
        quick_crashes = 0
        while not self._stopping.is_set():
            started = self.clock.now()
            try:
                child = await self._spawn()
            except OSError as error:  # out of processes or memory, say
                raise CrashLoopError(f"could not start a worker process: {error}", 1) from error
            self._children[slot] = child
            # A stop while it was starting: it stops as many times as the others did.
            for _ in range(self._stops):
                child.send_signal(signal.SIGTERM)
            code = await child.wait()
            del self._children[slot]
            self._tell_exit(child.pid)
            ever_ready = self._ever_ready or any(c.ready for c in (child, *self.children))
            self._ever_ready = ever_ready
            if self._stopping.is_set():
                self._codes.append(code)
                return
            lived = self.clock.now() - started
            quick_crashes = quick_crashes + 1 if lived < self.policy.quick_seconds else 1
            ended = f"worker process {child.pid} {format_exit(code)} after {lived:.1f}s"
            if code == EXIT_INVALID:
                raise CrashLoopError(f"{ended}: its settings are invalid; stopping", code)
            if code == EXIT_BACKEND and not ever_ready:
                raise CrashLoopError(f"{ended}: it could not start; stopping", code)
            if quick_crashes >= self.policy.give_up_after:
                raise CrashLoopError(
                    f"{ended}: {quick_crashes} exits in a row within "
                    f"{self.policy.quick_seconds:g}s of starting; giving up",
                    code if code > 0 else 1,
                )
            delay = compute_restart_delay(quick_crashes, self.policy)
            self._say(f"{ended}; starting another in {delay:g}s", logging.WARNING)
            await self._pause(delay)

    def _tell_exit(self, pid: int) -> None:
        """Call ``on_exit``; its failure is said, and the children go on regardless."""
        if self._on_exit is None:
            return
        try:
            self._on_exit(pid)
        except Exception as error:
            self._say(f"warning: after worker process {pid} exited: {error}", logging.WARNING)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when stopping."""
        sleeping = asyncio.ensure_future(self.clock.sleep(seconds))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeping, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ProcessChild:
    """A child that is an operating-system process."""

    def __init__(self, process: asyncio.subprocess.Process, ready_pipe: int) -> None:
        self._process = process
        self._ready = _watch_ready(ready_pipe)

    @property
    def pid(self) -> int:
        """Its process id."""
        return self._process.pid

    async def wait(self) -> int:
        """Its exit code once it exited."""
        code = await self._process.wait()
        await self._ready  # the pipe's end: known once every writer is gone
        return code

    @property
    def ready(self) -> bool:
        """Whether it wrote that it was ready."""
        return self._ready.done() and self._ready.result()

    def send_signal(self, signum: int) -> None:
        """Send it ``signum``, unless it already exited."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)


def spawn_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Spawn:
    """Starts ``argv`` as a supervised child: its output is ours, its process group its own."""
    environment = {**(os.environ if env is None else env), SUPERVISOR_VARIABLE: str(os.getpid())}

    async def spawn() -> Child:
        read_end, write_end = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env={**environment, READY_VARIABLE: str(write_end)},
                process_group=0,
                pass_fds=(write_end,),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return ProcessChild(process, read_end)

    return spawn


def _watch_ready(pipe: int) -> asyncio.Future[bool]:
    """Whether the child writes ``r`` to ``pipe`` before it closes it (by exiting, say)."""
    loop = asyncio.get_running_loop()
    told: asyncio.Future[bool] = loop.create_future()

    def on_readable() -> None:
        try:
            data = os.read(pipe, 1)
        except OSError:
            data = b""
        loop.remove_reader(pipe)
        os.close(pipe)
        if not told.done():
            told.set_result(data == b"r")

    loop.add_reader(pipe, on_readable)
    return told
