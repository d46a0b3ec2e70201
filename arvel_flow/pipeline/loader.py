"""`load_spec`: a pipeline file or text → a validated `PipelineSpec`, or every issue.

The passes, each reporting all it finds before the next runs:

1. read: size limit, binary data, UTF-8 (`arvel_flow.pipeline.source`);
2. parse: YAML syntax and hazards, with each value's position;
3. interpolate ``${...}`` in parsed values, with ``--set`` overriding ``vars``, within
   the budget of `arvel_flow.pipeline.expansion`; secrets stay references, allowed only
   where the running job resolves them; an unset variable is an error, or, when the
   caller collects ``warnings``, a warning;
4. validate against the models (`arvel_flow.pipeline.models`);
5. cross-reference: templates, policies, stacks, step ids;
6. the caller's checks: `arvel_flow.compiler.load_pipeline` adds its strict pass here,
   which imports what the file names and checks parameters. The file format imports
   no runtime module, so that pass is handed in rather than called from here.

Passes 4 to 6 all run on the same data, so one run reports a misspelt key, an
undefined template and a mistyped job parameter together. Only a fatal problem of
passes 1 to 3 stops early, since nothing after it could be trusted (or, past the
interpolation budget, afforded).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Any

from pydantic import ValidationError

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.pipeline.diagnostics import problems_from_validation
from arvel_flow.pipeline.expansion import ExpansionLimitError
from arvel_flow.pipeline.interpolate import interpolate
from arvel_flow.pipeline.models import PipelineSpec
from arvel_flow.pipeline.problems import MAX_PROBLEMS, Path, Problem, format_path
from arvel_flow.pipeline.references import check_references
from arvel_flow.pipeline.schedule import check_schedule, schedule_warnings
from arvel_flow.pipeline.secret_checks import check_secrets
from arvel_flow.pipeline.source import (
    SourceMap,
    check_size,
    cyclic_gc_paused,
    decode_source,
    parse_document,
)
from arvel_flow.pipeline.walk import PipelineWalk, walk_pipeline

Source = str | bytes | os.PathLike[str]

SpecCheck = Callable[[dict[str, Any], PipelineWalk], list[Problem]]
"""A further pass over the interpolated data (and its `PipelineWalk`), reported with
validation's problems."""


def load_spec(
    path_or_text: Source,
    *,
    set_vars: Mapping[str, Any] | None = None,
    file: str | None = None,
    env: Mapping[str, str] | None = None,
    checks: Sequence[SpecCheck] = (),
    warnings: list[ConfigIssue] | None = None,
) -> PipelineSpec:
    """Read, check and validate a pipeline, importing nothing it names.

    Args:
        path_or_text: A path (`os.PathLike`, or a one-line string naming a ``.yaml``
            / ``.yml`` file or an existing file), or the YAML itself (any other
            string, or bytes).
        set_vars: ``--set`` values; strings are typed as plain YAML scalars.
        file: The name to report in messages (default: the path, or ``<input>``).
        env: Environment for ``${NAME}`` (default: ``os.environ``).
        checks: Passes run after validation on the same data (pass 6 above).
        warnings: Given, an unset ``${NAME}`` is added here as a warning (its value
            keeps its text, unchecked) instead of being an error: for checking a file
            without the environment it runs in. The checks' warnings (traps such as a
            step left with a job class's default retries) are added too; without
            ``warnings`` they are not reported.

    Returns:
        The validated spec.

    Raises:
        ConfigError: With every issue found, each at its line and column.
    """
    text, file = read_source(path_or_text, file)
    return parse_spec(text, file=file, set_vars=set_vars, env=env, checks=checks, warnings=warnings)


def parse_spec(
    text: str,
    *,
    file: str | None = None,
    set_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    checks: Sequence[SpecCheck] = (),
    warnings: list[ConfigIssue] | None = None,
) -> PipelineSpec:
    """Like `load_spec`, for text already read."""
    with cyclic_gc_paused():
        return _parse_spec(text, file, set_vars, env, checks, warnings)


def _parse_spec(
    text: str,
    file: str | None,
    set_vars: Mapping[str, Any] | None,
    env: Mapping[str, str] | None,
    checks: Sequence[SpecCheck],
    warnings: list[ConfigIssue] | None,
) -> PipelineSpec:
    document = parse_document(text, file=file)
    unset: list[Problem] | None = None if warnings is None else []
    try:
        data, problems, failed = interpolate(
            document.data,
            env=os.environ if env is None else env,
            overrides=set_vars,
            unset=unset,
        )
    except ExpansionLimitError as error:
        problem = Problem(error.path, error.message)
        raise ConfigError(
            [*document.issues, *to_issues([problem], document.source_map, file)],
            omitted=document.omitted,
        ) from None
    walk = walk_pipeline(data)  # once, for all the checks below
    misplaced = check_secrets(data, walk)
    problems += misplaced
    dropped = document.dropped | failed | {problem.path for problem in misplaced}
    spec: PipelineSpec | None = None
    found: list[Problem] = []
    omitted = document.omitted
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as error:
        invalid, left_out = problems_from_validation(error, data)
        found += invalid
        omitted += left_out
        if unset:
            in_the_way = {p for p in failed if any(i.path[: len(p)] == p for i in invalid)}
            spec = _validate_without(data, in_the_way)
    found += check_references(data, walk)
    found += check_schedule(data)
    for check in checks:
        found += check(data, walk)
    # A value dropped for a reason already reported (a tag, an unset variable) would
    # only add a confusing second error at the same place.
    kept = [problem for problem in found if not _under(problem.path, dropped)]
    problems += [problem for problem in kept if problem.severity == "error"]
    traps = [problem for problem in kept if problem.severity == "warning"]
    issues = [*document.issues, *to_issues(problems, document.source_map, file)]
    unchecked = to_issues(unset or [], document.source_map, file)
    if not issues and spec is None:
        issues = unchecked  # nothing else wrong: the unset values are in the way
    elif warnings is not None:
        if spec is not None:
            unchecked += to_issues(
                schedule_warnings(spec.schedule, datetime.now(UTC)),
                document.source_map,
                file,
            )
        noted = to_issues(traps, document.source_map, file)
        warnings += sort_issues(
            [replace(issue, severity="warning") for issue in [*unchecked, *noted]]
        )
    if issues or spec is None:
        issues = sort_issues(issues)
        omitted += max(len(issues) - MAX_PROBLEMS, 0)
        raise ConfigError(issues[:MAX_PROBLEMS], omitted=omitted)
    return spec


def _validate_without(data: dict[str, Any], dropped: set[Path]) -> PipelineSpec | None:
    """The spec without the ``dropped`` values, if the file validates without them.

    A value that keeps an unset reference's text may be of the wrong type (a number,
    say); ``graph`` and ``plan`` can still show the rest when its key is optional.
    """
    pruned = copy.deepcopy(data)
    for path in sorted(dropped, key=len, reverse=True):
        parent: Any = pruned
        for part in path[:-1]:
            parent = _child(parent, part)
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    try:
        return PipelineSpec.model_validate(pruned)
    except ValidationError:
        return None


def _child(container: Any, part: str | int) -> Any:
    if isinstance(container, dict):
        return container.get(part)
    if isinstance(container, list) and isinstance(part, int) and part < len(container):
        return container[part]
    return None


def read_source(source: Source, file: str | None) -> tuple[str, str | None]:
    """The text of a pipeline and the name to report it by."""
    if isinstance(source, bytes):
        return decode_source(source, file=file), file
    if isinstance(source, str) and not _looks_like_path(source):
        return source, file
    path = FilePath(source)
    name = file or str(source)
    try:
        check_size(path.stat().st_size, file=name)
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            [ConfigIssue(f"cannot read the file: {error.strerror or error}", file=name)]
        ) from None
    return decode_source(raw, file=name), name


def _looks_like_path(text: str) -> bool:
    if "\n" in text or not text.strip():
        return False
    return text.endswith((".yaml", ".yml")) or os.path.isfile(text)


def to_issues(
    problems: list[Problem], source_map: SourceMap, file: str | None
) -> list[ConfigIssue]:
    """Problems → issues with positions, each once."""
    issues: dict[tuple[Path, str], ConfigIssue] = {}
    for problem in problems:
        position = source_map.find(problem.path, problem.at)
        issue = ConfigIssue(
            problem.message, format_path(problem.path), file, position.line, position.column
        )
        issues.setdefault((problem.path, problem.message), issue)
    return list(issues.values())


def sort_issues(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """In file order, as a compiler lists them."""
    return sorted(issues, key=lambda issue: (issue.line or 0, issue.column or 0, issue.message))


def _under(path: Path, dropped: frozenset[Path] | set[Path]) -> bool:
    # Prefixes of the path looked up, not each dropped path compared: both may number
    # in the hundreds of thousands.
    return any(path[:length] in dropped for length in range(len(path) + 1))
