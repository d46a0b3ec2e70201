"""`.env` files: ``NAME=value`` lines read into the environment of this process.

``run``, ``validate``, ``graph``, ``plan`` and ``worker`` read ``.env`` in the working
directory when it exists, or the file ``--env-file`` names (then it must exist). The
syntax is python-dotenv's (Docker's and Laravel's: ``export``, quotes, ``#``
comments, ``${OTHER}`` inside values); python-dotenv parses it, not a parser of ours.

Its values are exported to ``os.environ``, where the real environment wins: a
variable already set keeps its value. Exported, rather than kept for ``${NAME}``
alone, because the file stands for the environment: ``ARVEL_FLOW_*`` settings in it
apply, jobs that read ``os.environ`` see it (as Laravel and Docker users expect), and
a secret reference left for the job to resolve (`arvel_flow.secrets`) resolves from
it in the process that runs the job. A secret there is a secret: the values of
secret names (``*PASSWORD*``, ``*TOKEN*``, ...) and URL passwords are registered
with the scrubber as they are read, and no message quotes a line of the file.
"""

from __future__ import annotations

import io
import os
from collections.abc import MutableMapping
from pathlib import Path

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.secrets import register_environment

DEFAULT_ENV_FILE = ".env"
"""Read from the working directory when it exists and no other file is named."""


def load_env_file(
    path: Path | None = None, *, environ: MutableMapping[str, str] | None = None
) -> Path | None:
    """Export the variables of a ``.env`` file that ``environ`` does not set yet.

    Args:
        path: The file ``--env-file`` names; None: ``.env`` if it exists.
        environ: Where to export them (default: ``os.environ``).

    Returns:
        The file read, or None when there was none to read.

    Raises:
        ConfigError: The named file is missing or unreadable, or a line of it is
            not ``NAME=value``.
    """
    target = os.environ if environ is None else environ
    if path is None:
        path = Path(DEFAULT_ENV_FILE)
        if not path.is_file():
            return None
    values = read_env_file(path)
    register_environment(values)  # before anything can show them
    for name, value in values.items():
        target.setdefault(name, value)
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """The variables a ``.env`` file sets, ``${OTHER}`` in values resolved.

    References in a value see the real environment first, then the lines above it,
    as the values exported will. A name without ``=`` sets nothing.

    Raises:
        ConfigError: The file is missing, unreadable or not UTF-8, or a line of it is
            not ``NAME=value``.
    """
    # Imported here: most commands find no .env, and python-dotenv takes a while to load.
    from dotenv.main import DotEnv
    from dotenv.parser import parse_stream

    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue("env file not found", file=name)]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue("env file is not UTF-8 text", file=name)]) from None
    except OSError as error:
        message = f"cannot read the env file: {error.strerror or error}"
        raise ConfigError([ConfigIssue(message, file=name)]) from None
    bad = [binding.original.line for binding in parse_stream(io.StringIO(text)) if binding.error]
    if bad:
        # The line itself is not quoted: it may hold a secret.
        message = "not a NAME=value line (python-dotenv syntax)"
        raise ConfigError([ConfigIssue(message, file=name, line=line) for line in bad])
    parsed = DotEnv(None, stream=io.StringIO(text), interpolate=True, override=False).dict()
    return {key: value for key, value in parsed.items() if value is not None}
