"""Where secrets may be in a pipeline file, checked after interpolation.

A secret reference (see `arvel_flow.secrets`) may stand only where the process that
runs the job resolves it: job parameters (``with``, ``each``, ``matrix``, templates'
``with`` too) and the ``with`` arguments of middleware given by ``use`` (but for the builtins, whose
arguments are lock keys and limits). Anywhere
else (names, keys, settings, retry policies) it would be used, stored or shown as
it is, so it is an error at its position. ``vars`` may hold references: they are
checked where they are used.

A secret may not be written in the file either, where it would be stored with the
run: a parameter named like a secret (``password``, ``api_token``, ...) must get its
value from a reference, and no parameter may hold a URL with a password in clear.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from arvel_flow.pipeline.problems import Path, Problem
from arvel_flow.pipeline.walk import BUILTIN_FORMS, PipelineWalk, mapping, walk_pipeline
from arvel_flow.secrets import (
    SECRET_KEY,
    is_secret_field_name,
    is_secret_marker,
    template_names,
    url_passwords,
)

PARAMETER_KEYS = ("with", "each", "matrix")

_WHERE = (
    "secrets can be used only in job parameters ('with', 'each', 'matrix') and in the "
    "'with' arguments of middleware, which the process that runs the job resolves, and "
    "in queue.url and queue.store"
)
HOW_TO_REFER = (
    "use a reference such as ${NAME} instead, NAME set in the environment of the processes "
    "that run the job (a variable is secret when declared under 'secrets:' or named like "
    "*PASSWORD*, *SECRET*, *TOKEN*, *KEY*, *CREDENTIAL*, *DSN* or *AUTH*)"
)


def check_secrets(data: dict[str, Any], walk: PipelineWalk | None = None) -> list[Problem]:
    """Every reference out of place and every secret written in clear.

    ``walk``: `walk_pipeline` of ``data``, when the caller has it already.
    """
    allowed = list(dict.fromkeys(_parameter_paths(data, walk or walk_pipeline(data))))
    under_allowed = set(allowed)
    problems = [
        Problem(path, _misplaced(value))
        for path, value in _markers(data, ())
        if path[:1] != ("vars",)
        # Prefixes looked up, not each allowed path compared: both number in thousands.
        and not any(path[:length] in under_allowed for length in range(len(path) + 1))
    ]
    for path in allowed:
        problems += _clear_secrets(_get(data, path), path, secret=False)
    return problems


def _parameter_paths(data: dict[str, Any], walk: PipelineWalk) -> Iterator[Path]:
    for name, template in mapping(data.get("jobs")).items():
        if "with" in mapping(template):
            yield ("jobs", name, "with")
    for at in walk.job_steps:
        for key in PARAMETER_KEYS:
            if key in at.step:
                yield (*at.path, key)
    for path, entry in walk.inline_middleware:
        # The builtins' arguments are keys and limits: stored and shown, never secret.
        if "with" in entry and entry.get("use") not in (None, *BUILTIN_FORMS):
            yield (*path, "with")


def _markers(value: Any, path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every secret reference in ``value``, in document order.

    A loop over a stack rather than nested generators: it visits every value of the
    document, and a file may hold hundreds of thousands. Only containers are stacked
    (a reference is a mapping).
    """
    found: list[tuple[Path, dict[str, Any]]] = []
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            if SECRET_KEY in value and is_secret_marker(value):
                found.append((path, value))
                continue
            items: Iterable[tuple[Any, Any]] = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        children = [(item, (*path, key)) for key, item in items if isinstance(item, dict | list)]
        stack += reversed(children)
    return found


def _misplaced(marker: dict[str, Any]) -> str:
    names = ", ".join(dict.fromkeys(template_names(marker[SECRET_KEY]))) or "a secret"
    return f"a secret ({names}) cannot be used here: {_WHERE}"


def _get(data: Any, path: Path) -> Any:
    for key in path:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def _clear_secrets(value: Any, path: Path, *, secret: bool) -> list[Problem]:
    """Secrets written as text under ``path``: ``secret`` when a parent is named like one."""
    if is_secret_marker(value):
        return []
    if isinstance(value, dict):
        return [
            problem
            for key, item in value.items()
            for problem in _clear_secrets(
                item, (*path, key), secret=secret or is_secret_field_name(str(key))
            )
        ]
    if isinstance(value, list):
        return [
            problem
            for index, item in enumerate(value)
            for problem in _clear_secrets(item, (*path, index), secret=secret)
        ]
    if secret and _is_clear_value(value):
        name = next((str(key) for key in reversed(path) if isinstance(key, str)), "?")
        return [
            Problem(
                path,
                f"parameter {name!r} is named like a secret, so its value may not be "
                f"written in the file, where it would be stored with the run: {HOW_TO_REFER}",
            )
        ]
    if isinstance(value, str) and "://" in value and url_passwords(value):
        return [
            Problem(
                path,
                "this URL holds a password in clear, which would be stored with the run: "
                f"for the password, {HOW_TO_REFER}, as in scheme://user:${{NAME}}@host",
            )
        ]
    return []


def _is_clear_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    return isinstance(value, int | float) or (isinstance(value, str) and value != "")
