"""`load_pipeline`: a pipeline file or text → a validated `PipelineSpec`, or every issue.

The file format (`arvel_flow.pipeline.loader`) reads, interpolates, validates and
cross-references the file without importing anything it names. Strict mode (the
default) adds the checks of `arvel_flow.compiler.strict`, which import each job,
middleware and exception class: they run as the loader's last pass, on the same data,
so one run reports a misspelt key and a mistyped job parameter together.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from arvel_flow.errors import ConfigIssue
from arvel_flow.pipeline.loader import Source, SpecCheck, parse_spec, read_source
from arvel_flow.pipeline.models import PipelineSpec


def load_pipeline(
    path_or_text: Source,
    *,
    set_vars: Mapping[str, Any] | None = None,
    file: str | None = None,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    warnings: list[ConfigIssue] | None = None,
) -> PipelineSpec:
    """Read, check and validate a pipeline.

    Args:
        path_or_text: A path (`os.PathLike`, or a one-line string naming a ``.yaml``
            / ``.yml`` file or an existing file), or the YAML itself (any other
            string, or bytes).
        set_vars: ``--set`` values; strings are typed as plain YAML scalars.
        file: The name to report in messages (default: the path, or ``<input>``).
        strict: Also import every dotted path and check parameters, middleware
            arguments and exception classes.
        env: Environment for ``${NAME}`` (default: ``os.environ``).
        warnings: Given, unset variables are warnings added here, not errors, and so
            are traps the strict checks find (a step left with the default retries).

    Returns:
        The validated spec, ready for `compile_pipeline`.

    Raises:
        ConfigError: With every issue found, each at its line and column.
    """
    text, file = read_source(path_or_text, file)
    return parse_pipeline(
        text, file=file, set_vars=set_vars, strict=strict, env=env, warnings=warnings
    )


def parse_pipeline(
    text: str,
    *,
    file: str | None = None,
    set_vars: Mapping[str, Any] | None = None,
    strict: bool = True,
    env: Mapping[str, str] | None = None,
    warnings: list[ConfigIssue] | None = None,
) -> PipelineSpec:
    """Like `load_pipeline`, for text already read."""
    checks: tuple[SpecCheck, ...] = ()
    if strict:
        # Imported only now: the strict checks load the queue runtime, which
        # --no-strict (a pre-commit hook, say) does not pay for.
        from arvel_flow.compiler.strict import check_strict

        checks = (functools.partial(check_strict, env=env),)
    return parse_spec(text, file=file, set_vars=set_vars, env=env, checks=checks, warnings=warnings)
