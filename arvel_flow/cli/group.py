"""`FlowGroup`: the click group that turns errors raised on purpose into exit codes.

Exit codes (SPEC §5): 0 success, 1 a run failed, 2 invalid pipeline or usage, 3 a
backend unreachable, 130 interrupted. A `FlowError` is shown as its message alone;
anything else is a bug and keeps its traceback. Both the ``arvel-flow`` command
(`arvel_flow.cli.app`) and ``python -m arvel_flow.cli.worker`` are such a group.

Every error the command prints has one form, as compilers and git print theirs:
``FILE:LINE:COL: error: ...`` when it lies in a file, ``error: ...`` otherwise. Click's
own usage errors (``Error: No such option '--x'.``) are reworded to it
(``error: no such option '--x'``), after the usage line and help hint click prints.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import IO, Any

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
    FaultSpecError,
    FlowError,
    ImportTargetError,
    RunNotFoundError,
    RunOwnedError,
    RunTakenOverError,
)


def exit_code_for(error: FlowError) -> int:
    """The exit code SPEC §5 gives an error."""
    if isinstance(
        error,
        ConfigError | FaultSpecError | ImportTargetError | RunNotFoundError | RunOwnedError,
    ):
        return EXIT_INVALID
    if isinstance(error, BackendError):
        return EXIT_BACKEND
    if isinstance(error, RunTakenOverError):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


_SUGGESTION = re.compile(r"\.? \(?Did you mean (.*?)\)?$")
"""Click's ``. Did you mean '--x'?`` / ``. (Did you mean one of: ...?)``."""


def format_error(message: str) -> str:
    """``error: message``: an error that lies in no file, in the command's one form.

    A click message is a sentence (``No such option '--x'.``); it becomes a clause, as
    ours are: first letter lowered (unless an acronym), final period dropped.
    """
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    message = _SUGGESTION.sub(r"; did you mean \1", message)
    if message.endswith(".") and not message.endswith(".."):
        message = message[:-1]
    return f"error: {message}"


class RewordedError(click.ClickException):
    """A click error (usage, bad parameter, unknown id), shown in the ``error:`` form."""

    def __init__(self, original: click.ClickException) -> None:
        super().__init__(original.message)
        self.original = original

    @property
    def exit_code(self) -> int:  # type: ignore[override]  # click declares a class variable
        """The original error's exit code (2 for a usage error)."""
        return self.original.exit_code

    def show(self, file: IO[Any] | None = None) -> None:
        """Print click's usage line and help hint for a usage error, then the error."""
        ctx = getattr(self.original, "ctx", None)
        if isinstance(self.original, click.UsageError) and ctx is not None:
            click.echo(ctx.get_usage(), err=True)
            if ctx.command.get_help_option(ctx) is not None:
                help_option = ctx.help_option_names[0]
                click.echo(f"Try '{ctx.command_path} {help_option}' for help.\n", err=True)
        click.echo(format_error(self.original.format_message()), err=True)


class FlowGroup(click.Group):
    """A click group that turns `FlowError` and Ctrl-C into messages and exit codes.

    ``lazy_commands`` names commands by ``"module:attribute"``: a module is imported when
    its command is run or listed (``--help``), so that ``arvel-flow validate`` does not
    load what ``run`` or ``worker`` need.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The names of every command, loaded or not, sorted."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command of that name, importing its module if it is a lazy one."""
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in self.lazy_commands:
            return found
        module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        self.add_command(command, cmd_name)
        return command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the group's own arguments; a usage error is shown in the ``error:`` form."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except RewordedError:
            raise
        except click.ClickException as error:
            raise RewordedError(error) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; errors raised on purpose become exit codes, not tracebacks.

        Everything the command writes to stdout and stderr (output, events, logs, error
        messages) is scrubbed of the secrets this process knows.
        """
        with scrubbed_output():
            try:
                return super().invoke(ctx)
            except RewordedError:
                raise
            except click.ClickException as error:
                raise RewordedError(error) from None
            except ConfigError as error:  # each line is FILE:LINE:COL: error: ...
                click.echo(str(error), err=True)
                ctx.exit(exit_code_for(error))
            except FlowError as error:
                click.echo(format_error(str(error)), err=True)
                ctx.exit(exit_code_for(error))
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                ctx.exit(EXIT_INTERRUPTED)
