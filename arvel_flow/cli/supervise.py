"""``arvel-flow worker --processes N``: the command's side of `Supervisor`.

The children are ``python -m arvel_flow.cli.worker --processes 1`` with the flags this
command was given (the environment, ``.env`` included, they inherit). Each prints its
own lines (``worker HOST:PID:SUFFIX: ready``, its events); the supervisor prints its
own, in the same form (`arvel_flow.cli.worker_lines`): when it starts, a child it
restarts, when it stops.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from arvel_flow.cli.worker_lines import make_line_handler
from arvel_flow.cli.worker_lines import say as say_line

if TYPE_CHECKING:
    from arvel_flow.settings import QueueSettings


_OWN_OPTIONS = frozenset(("processes", "metrics_port", "metrics_host"))
"""The supervisor's options: the children get ``--processes 1`` and ``--metrics-collect``."""


def child_command(ctx: click.Context) -> list[str]:
    """One child's command: the flags given to this one, and ``--processes 1``."""
    argv = [sys.executable, "-m", "arvel_flow.cli.worker"]
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name is None or name in _OWN_OPTIONS:
            continue
        if ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        flag = max(param.opts, key=len)
        if param.is_flag:
            argv += [flag] if value else []
        elif param.multiple:
            argv += [part for item in value for part in (flag, str(item))]
        else:
            argv += [flag, str(value)]
    collect = ["--metrics-collect"] if ctx.params.get("metrics_port") is not None else []
    return [*argv, "--processes", "1", *collect]


def supervise(
    ctx: click.Context,
    settings: QueueSettings,
    processes: int,
    *,
    metrics: tuple[str, int | None] = ("127.0.0.1", None),
) -> int:
    """Run ``processes`` workers of this command until SIGTERM or Ctrl-C; the exit code.

    With a metrics port, the children count into a private temporary directory (made
    here, removed at the end) and this process serves their sum; a child that exits,
    even killed with SIGKILL before it could say so, stops counting as running jobs.

    Raises:
        ConfigError: No worker can run with ``settings`` (checked once, here).
    """
    from arvel_flow.wiring import check_worker_settings

    check_worker_settings(settings)
    argv = child_command(ctx)
    host, port = metrics
    if port is None:
        return asyncio.run(_supervise(settings, processes, argv))
    from arvel_flow.metrics.server import MULTIPROC_VARIABLE, mark_dead, serve_collected

    with tempfile.TemporaryDirectory(prefix="arvel-flow-metrics-") as directory:
        serve_collected(directory, settings, host, port)
        env = {**os.environ, MULTIPROC_VARIABLE: directory}
        on_exit = functools.partial(mark_dead, directory=directory)
        return asyncio.run(_supervise(settings, processes, argv, env, on_exit))


async def _supervise(
    settings: QueueSettings,
    processes: int,
    argv: list[str],
    env: dict[str, str] | None = None,
    on_exit: Callable[[int], None] | None = None,
) -> int:
    from arvel_flow.worker.supervisor import Supervisor, spawn_command

    lines = make_line_handler(logging.INFO)

    def say(line: str, level: int = logging.INFO) -> None:
        say_line(lines, line, level)

    supervisor = Supervisor(processes, spawn_command(argv, env), say=say, on_exit=on_exit)
    name = f"{socket.gethostname()}:{os.getpid()}"
    say(f"worker supervisor {name}: {processes} processes, concurrency {settings.concurrency} each")
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not supervisor.aborted and not supervisor.stopping:
            say(f"stopping: {processes} processes finish their running jobs (again to cancel them)")
        supervisor.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        code = await supervisor.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    say(f"worker supervisor {name} stopped")
    return code
