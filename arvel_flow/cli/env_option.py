"""``--env-file``: the option of every command that reads the environment, and its effect.

``run``, ``validate``, ``graph``, ``plan``, ``worker`` and ``failed retry`` take it;
without it they read ``.env`` from the working directory when it exists
(`arvel_flow.envfile`).
"""

from __future__ import annotations

from pathlib import Path

import click

ENV_FILE_OPTION = click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read variables from this file (default: .env, if present); the environment wins.",
)


def use_env_file(path: Path | None) -> None:
    """Export the variables of ``path`` (else ``.env``) that the environment lacks.

    Raises:
        ConfigError: The file named is missing, or a line of it is malformed (exit 2).
    """
    from arvel_flow.envfile import load_env_file

    load_env_file(path)
