"""``arvel-flow worker --processes N``: the command's side of `Supervisor`.

The children are ``python -m arvel_flow.cli.worker --processes 1`` with the flags this
command was given (the environment, ``.env`` included, they inherit). Each prints its
own lines (``worker HOST:PID:SUFFIX: ready``, its events); the supervisor prints its
own: when it starts, a child it restarts, when it stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from arvel_flow.settings import QueueSettings


def child_command(ctx: click.Context) -> list[str]:
    """One child's command: the flags given to this one, and ``--processes 1``."""
    argv = [sys.executable, "-m", "arvel_flow.cli.worker"]
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name is None or name == "processes":
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
    return [*argv, "--processes", "1"]


def supervise(ctx: click.Context, settings: QueueSettings, processes: int) -> int:
    """Run ``processes`` workers of this command until SIGTERM or Ctrl-C; the exit code.

    Raises:
        ConfigError: No worker can run with ``settings`` (checked once, here).
    """
    from arvel_flow.wiring import check_worker_settings

    check_worker_settings(settings)
    return asyncio.run(_supervise(settings, processes, child_command(ctx)))


async def _supervise(settings: QueueSettings, processes: int, argv: list[str]) -> int:
    from arvel_flow.worker.supervisor import Supervisor, spawn_command

    def say(line: str) -> None:
        click.echo(line, err=True)

    supervisor = Supervisor(processes, spawn_command(argv), say=say)
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
