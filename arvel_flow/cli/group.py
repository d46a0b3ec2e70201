"""`FlowGroup`: the click group that turns errors raised on purpose into exit codes.

Exit codes (SPEC §5): 0 success, 1 a run failed, 2 invalid pipeline or usage, 3 a
backend unreachable, 130 interrupted. A `FlowError` is shown as its message alone;
anything else is a bug and keeps its traceback. Both the ``arvel-flow`` command
(`arvel_flow.cli.app`) and ``python -m arvel_flow.cli.worker`` are such a group.
"""

from __future__ import annotations

from typing import Any

import click

from arvel_flow.cli.common import (
    EXIT_BACKEND,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    scrubbed_output,
)
from arvel_flow.errors import (
    BackendError,
    ConfigError,
    FlowError,
    ImportTargetError,
    RunNotFoundError,
    RunOwnedError,
    RunTakenOverError,
)


def exit_code_for(error: FlowError) -> int:
    """The exit code SPEC §5 gives an error."""
    if isinstance(error, ConfigError | ImportTargetError | RunNotFoundError | RunOwnedError):
        return EXIT_INVALID
    if isinstance(error, BackendError):
        return EXIT_BACKEND
    if isinstance(error, RunTakenOverError):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


class FlowGroup(click.Group):
    """A click group that turns `FlowError` and Ctrl-C into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; errors raised on purpose become exit codes, not tracebacks.

        Everything the command writes to stdout and stderr (output, events, logs, error
        messages) is scrubbed of the secrets this process knows.
        """
        with scrubbed_output():
            try:
                return super().invoke(ctx)
            except FlowError as error:
                click.echo(str(error), err=True)
                ctx.exit(exit_code_for(error))
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                ctx.exit(EXIT_INTERRUPTED)
