"""``${NAME}``, ``${NAME:-default}`` and ``${vars.name}`` in parsed string values.

Interpolation runs on the data PyYAML produced, never on the raw text, so a value can
never inject YAML structure. Rules:

* ``${NAME}`` reads the environment; unset is an error, ``${NAME:-default}`` falls
  back when it is unset or empty. ``${vars.name}`` reads ``vars`` (after ``--set``).
  Checking a file without its production environment (``validate``, ``graph``,
  ``plan``), an unset variable is a warning instead: the value keeps its text as
  written, and checks that its real value could pass say nothing about it.
* A scalar that is exactly one ``${vars.name}`` takes the variable's value with its
  YAML type, lists too (``each: ${vars.users}``), quoted or not: inside a flow
  collection YAML forces the quotes. A scalar that is exactly one environment
  reference is typed like a plain YAML scalar when unquoted (``8`` is an int) and
  stays a string when quoted. Embedded in other text, every value becomes text.
* ``$${`` writes a literal ``${``. Keys are never interpolated. ``vars`` may use
  environment references, but not other vars.
* A secret variable (declared under ``secrets:``, named like ``*PASSWORD*``,
  ``*TOKEN*``, ..., or holding a URL with a password; see `arvel_flow.secrets`) is
  not replaced by its value: the string becomes a `SecretRef` whose template keeps
  ``${NAME}`` for the secret parts, resolved only where the job runs. An unset one
  is no error here: the process that runs the job may have it. ``${vars.x}`` carries
  the references its value holds. Only ``queue.url`` and ``queue.store`` (settings of
  this process, never stored) get the value itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from arvel_flow.pipeline.compose import PlainText
from arvel_flow.pipeline.expansion import ExpansionBudget, ExpansionLimitError
from arvel_flow.pipeline.problems import Path, Problem, did_you_mean
from arvel_flow.scalars import format_scalar, resolve_plain
from arvel_flow.secrets import (
    SecretRef,
    escape_template,
    is_secret_env,
    is_secret_marker,
    resolve_for_check,
)
from arvel_flow.secrets import register_secret as _register_secret

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)(\}?)")
_ENV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\Z", re.DOTALL)
_VAR = re.compile(r"vars\.([A-Za-z_][A-Za-z0-9_]*)\Z")
_MISSING: Any = object()
_PROCESS_SETTINGS = frozenset({("queue", "url"), ("queue", "store")})
"""Where a secret variable's value is used here and now: settings, never stored."""


class _Secret(str):
    """A template part of a secret: ``${NAME}`` or ``${NAME:-default}`` as written."""

    __slots__ = ()


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class Interpolator:
    """Replaces references in a document, collecting a `Problem` per failure.

    Every substitution is charged to ``budget``; past it, `ExpansionLimitError`
    (located at the reference) ends the whole interpolation.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        variables: Mapping[str, Any] | None,
        budget: ExpansionBudget | None = None,
        secrets: frozenset[str] = frozenset(),
        *,
        unset: list[Problem] | None = None,
        pending_vars: frozenset[str] = frozenset(),
    ) -> None:
        self.env = env
        self.variables = variables
        self.budget = budget or ExpansionBudget()
        self.secrets = secrets
        self.problems: list[Problem] = []
        self.failed: set[Path] = set()
        self.unset = unset
        """Where unset variables are reported as warnings; None: they are errors."""
        self.pending: set[Path] = set()
        """Paths whose values keep unset references as written (see `unset`)."""
        self.pending_vars = pending_vars
        """Variables whose values hold such references: using one is pending too."""
        self._resolve_secrets = False
        """Whether the string being replaced is a setting of this process (queue.url)."""
        self._unset_here: list[str] = []

    def apply(self, value: Any, path: Path) -> Any:
        """``value`` with every reference replaced; containers are copied only if changed."""
        if isinstance(value, str):
            return self._string(value, path) if "${" in value else value
        if isinstance(value, dict):
            changed = {key: self._child(item, path, key) for key, item in value.items()}
            same = all(changed[key] is item for key, item in value.items())
            return value if same else changed
        if isinstance(value, list):
            items = [self._child(item, path, index) for index, item in enumerate(value)]
            return (
                value if all(new is old for new, old in zip(items, value, strict=True)) else items
            )
        return value

    def _child(self, item: Any, path: Path, key: str | int) -> Any:
        """`apply` to ``path[key]``, building its path only when needed (not for the
        plain scalars that most values of a large file are)."""
        if isinstance(item, str):
            return self._string(item, (*path, key)) if "${" in item else item
        if isinstance(item, dict | list):
            return self.apply(item, (*path, key))
        return item

    def _string(self, text: str, path: Path) -> Any:
        self._resolve_secrets = path in _PROCESS_SETTINGS
        self._unset_here = []
        try:
            whole = _TOKEN.fullmatch(text)
            if whole is not None and whole.group(1) is not None and whole.group(2):
                value = self._whole(whole.group(1), plain=isinstance(text, PlainText))
            else:
                value = _join(text, [self._embedded(match) for match in _TOKEN.finditer(text)])
        except _Failed as failure:
            self.problems.append(Problem(path, failure.message))
            self.failed.add(path)
            return None
        except ExpansionLimitError as error:
            raise error.at(path) from None
        if self.unset is not None and self._unset_here:
            self.unset += [Problem(path, message) for message in self._unset_here if message]
            self.pending.add(path)
            return str(text)  # its text as written: what it will be is unknown here
        return value

    def _whole(self, body: str, *, plain: bool) -> Any:
        value, from_vars = self._lookup(body)
        self.budget.charge(body, value)
        if from_vars:
            return value  # quoted or not: flow collections force quotes on '${...}'
        if isinstance(value, _Secret):
            return SecretRef(value, plain=plain)
        return resolve_plain(value) if plain and value else value

    def _embedded(self, match: re.Match[str]) -> tuple[re.Match[str], str]:
        """What one reference becomes: text, or a `_Secret` template part."""
        if match.group(1) is None:
            return match, "${"  # $${ escapes a literal ${
        if not match.group(2):
            raise _Failed(f"unclosed reference '${{{match.group(1)}'; add the closing '}}'")
        value, from_vars = self._lookup(match.group(1))
        self.budget.charge(match.group(1), value, embedded=True)
        if is_secret_marker(value):
            return match, _Secret(value["$secret"])
        return match, self._as_text(match.group(1), value) if from_vars else value

    def _as_text(self, body: str, value: Any) -> str:
        if isinstance(value, dict | list):
            kind = "mapping" if isinstance(value, dict) else "list"
            raise _Failed(
                f"'${{{body}}}' is a {kind}; use it as a whole unquoted value, not inside text"
            )
        return format_scalar(value)

    def _lookup(self, body: str) -> tuple[Any, bool]:
        var = _VAR.match(body)
        if var is not None:
            value = self._variable(var.group(1))
            if var.group(1) in self.pending_vars:
                self._unset_here.append("")  # reported where the variable is defined
            if self._resolve_secrets and is_secret_marker(value):
                value, resolved = resolve_for_check(value, self.env)  # a setting: used here
                if not resolved:
                    self._missing(
                        f"'${{{body}}}' refers to an environment variable that is not set"
                    )
            return value, True
        env = _ENV.match(body)
        if env is None:
            raise _Failed(
                f"malformed reference '${{{body}}}'; "
                "use ${NAME}, ${NAME:-default} or ${vars.name}"
            )
        name, default = env.group(1), env.group(2)
        value = self.env.get(name)
        if not self._resolve_secrets and is_secret_env(name, value, self.secrets):
            if value is not None:
                _register_secret(value)
            return _Secret(f"${{{body}}}"), False
        if value is None or (value == "" and default is not None):
            if default is None:
                self._missing(
                    f"environment variable {name!r} is not set (write ${{{name}:-default}} "
                    "for a fallback)"
                )
                return f"${{{body}}}", False
            return default, False
        return value, False

    def _missing(self, message: str) -> None:
        """An unset variable: an error, or noted for a warning when checking."""
        if self.unset is None:
            raise _Failed(message)
        self._unset_here.append(message)

    def _variable(self, name: str) -> Any:
        if self.variables is None:
            raise _Failed(
                f"'${{vars.{name}}}' inside vars: variables cannot refer to other variables"
            )
        value = self.variables.get(name, _MISSING)
        if value is _MISSING:
            hint = did_you_mean(name, self.variables) or (
                "; declare it under 'vars'"
                if not self.variables
                else f" (defined: {', '.join(self.variables)})"
            )
            raise _Failed(f"undefined variable {name!r}{hint}")
        return value


def _join(text: str, parts: list[tuple[re.Match[str], str]]) -> Any:
    """The text with its references replaced; a `SecretRef` if any part is secret."""
    secret = any(isinstance(part, _Secret) for _, part in parts)
    pieces: list[str] = []
    end = 0
    for match, part in parts:
        literal = text[end : match.start()]
        pieces.append(escape_template(literal) if secret else literal)
        pieces.append(part if isinstance(part, _Secret) or not secret else escape_template(part))
        end = match.end()
    tail = text[end:]
    pieces.append(escape_template(tail) if secret else tail)
    joined = "".join(pieces)
    return SecretRef(joined) if secret else joined


def declared_secrets(data: Mapping[str, Any]) -> frozenset[str]:
    """The variable names listed under ``secrets:`` (whatever else is there is reported)."""
    names = data.get("secrets")
    return (
        frozenset(n for n in names if isinstance(n, str))
        if isinstance(names, list)
        else (frozenset())
    )


def interpolate(
    data: dict[str, Any],
    *,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    unset: list[Problem] | None = None,
) -> tuple[dict[str, Any], list[Problem], set[Path]]:
    """Resolve ``vars`` (with ``--set`` overrides), then every reference in the document.

    Args:
        data: The parsed document.
        env: The environment for ``${NAME}``.
        overrides: ``--set`` values.
        unset: Given, unset variables are reported here (warnings) rather than as
            problems, and their values keep their text; their paths are among those
            returned as dropped, so that no check reports what their text is not.

    Returns:
        The new data, the problems found, and the paths whose values were dropped.

    Raises:
        ExpansionLimitError: When references would expand the document past the
            limits of `arvel_flow.pipeline.expansion`.
    """
    problems: list[Problem] = []
    raw_vars = data.get("vars")
    declared: dict[str, Any] = dict(raw_vars) if isinstance(raw_vars, dict) else {}
    for name, value in (overrides or {}).items():
        if name not in declared:
            hint = did_you_mean(name, declared) or "; declare it under 'vars' first"
            problems.append(Problem(("vars",), f"--set {name}: no such variable{hint}", at="key"))
        else:
            declared[name] = resolve_plain(value) if isinstance(value, str) and value else value
    budget = ExpansionBudget()
    secrets = declared_secrets(data)
    for name in secrets & env.keys():
        _register_secret(env[name])  # scrubbed from all this process shows, used or not
    first = Interpolator(env, None, budget, secrets, unset=unset)
    variables = {
        name: value if name in (overrides or {}) else first.apply(value, ("vars", name))
        for name, value in declared.items()
    }
    pending = frozenset(str(path[1]) for path in first.pending)
    second = Interpolator(env, variables, budget, secrets, unset=unset, pending_vars=pending)
    result = {
        key: variables
        if key == "vars" and isinstance(raw_vars, dict)
        else value
        if key == "secrets"
        else second.apply(value, (key,))
        for key, value in data.items()
    }
    dropped = first.failed | second.failed | first.pending | second.pending
    return result, [*problems, *first.problems, *second.problems], dropped
