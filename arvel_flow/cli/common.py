"""What the command modules share: exit codes, common options and small helpers.

It imports only click and the standard library at module level, so that every command
module can import it without slowing ``--help`` down.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

import click

if TYPE_CHECKING:
    from arvel_flow.settings import QueueSettings
    from arvel_flow.store.contracts import StoreContract

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_BACKEND = 3
EXIT_INTERRUPTED = 130

SET_OPTION = click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a variable under vars (repeatable).",
)
STORE_OPTION = click.option(
    "--store", help="memory, sqlite:PATH or redis://... (default: sqlite:.arvel-flow/state.db)."
)
FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one document on stdout, for scripts.",
)


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """``("region=us", "n=3")`` → ``{"region": "us", "n": "3"}``, for ``--set``."""
    values: dict[str, str] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{assignment!r} is not NAME=VALUE", param_hint="--set")
        values[name.strip()] = value
    return values


def use_working_directory() -> None:
    """Let dotted paths such as ``myapp.jobs:Import`` import from the current directory.

    An installed console script does not have the working directory on ``sys.path``
    (``python -m`` does); Celery, arq and uvicorn add it for the same reason.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def scrub_standard_streams() -> tuple[TextIO, TextIO]:
    """Scrub all that goes to stdout and stderr of known secrets; the streams it replaced.

    Every channel of a command passes through them: rich and plain output, JSON events,
    log records, warnings, tracebacks. The values of this process's secret environment
    variables are registered first; those resolved later (a job's references) join as
    they are read. Wrapping twice is a no-op.
    """
    from arvel_flow.secrets import ScrubbingStream, register_environment

    register_environment(os.environ)
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, ScrubbingStream):
        sys.stdout = cast(TextIO, ScrubbingStream(sys.stdout))
    if not isinstance(sys.stderr, ScrubbingStream):
        sys.stderr = cast(TextIO, ScrubbingStream(sys.stderr))
    return saved


@contextlib.contextmanager
def scrubbed_output() -> Iterator[None]:
    """`scrub_standard_streams` while the block runs."""
    saved = scrub_standard_streams()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def print_renderable(renderable: Any) -> None:
    """Print a rich renderable to stdout."""
    from rich.console import Console

    # Piped output is read by tools and people in logs: never wrap or crop it at 80.
    width = None if sys.stdout.isatty() else 1_000
    Console(width=width).print(renderable)


def settings_for(store_url: str | None) -> QueueSettings:
    """Settings with ``--store`` over ``ARVEL_FLOW_STORE`` over the default."""
    from arvel_flow.settings import QueueSettings

    return QueueSettings.resolve(flags={"store": store_url})


def open_store_for(store_url: str | None, *, read_only: bool = False) -> StoreContract:
    """The store named by ``--store``, else ``ARVEL_FLOW_STORE``, else the default.

    ``read_only`` (commands that only look): a sqlite file that does not exist is read
    as an empty store, and neither it nor its directory is created.
    """
    from arvel_flow.store import open_store

    settings = settings_for(store_url)
    return open_store(
        settings.store,
        prefix=settings.prefix,
        commit_interval=settings.commit_interval,
        create=not read_only,
    )
