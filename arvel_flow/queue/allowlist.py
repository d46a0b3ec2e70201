"""The allowlist: which dotted paths a process with allowed module prefixes may use.

A worker (or a run with ``queue.allowed_modules``) imports what a message names: a job,
a middleware (``use:``), an exception in ``retry_on`` / ``dont_retry_on``, an observer. Under an
allowlist, every such path follows one rule, checked here and nowhere else:

1. It is written ``pkg.module:Name``, ``pkg.module:Outer.Inner`` or ``pkg.module.Name``
   (the module is everything before the last dot), every segment an ASCII identifier
   that does not start with ``__``. A bare name is a builtin: allowed only as an
   exception, and only if it names a builtin exception class (``ConnectionError``).
2. The module is an allowed prefix or lies under one (``myapp`` allows ``myapp`` and
   ``myapp.jobs``, not ``myapp_evil``).
3. Only then is the module imported. Each name is looked up in the namespace of the
   module (then of the class before it) without running any code: a name that is not
   there is refused, and so is a chain through anything but a class.
4. What each name finds is a class or a function *defined* there: its ``__module__``
   lies under an allowed prefix and its ``__qualname__`` is the path's name. So a
   re-export (``from os import popen``), a builtin, an alias, an instance, a bound
   method, a ``functools.partial`` or a module is refused. A nested path
   (``Outer.Inner``) names classes only.

Rules 1 and 2 need no import; `screen_path` applies them to a message before anything
of it is imported. `import_allowed` applies all four.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from arvel_flow.errors import ImportTargetError
from arvel_flow.pipeline.names import is_identifier
from arvel_flow.queue.imports import find_module, missing_module_reason

Role = Literal["job", "middleware", "exception", "observer"]
"""What a path is used as: a job's target, a middleware's ``use:``, a ``retry_on`` name,
an observer of events."""

_EXAMPLE = "such as 'pkg.module:Name'"
_TYPE_QUALNAME: Any = vars(type)["__qualname__"]


@dataclass(frozen=True, slots=True)
class TargetPath:
    """A path split for the allowlist: its module (None for a builtin) and names in it."""

    module: str | None
    names: tuple[str, ...]

    @property
    def qualname(self) -> str:
        """The names as the ``__qualname__`` of what they find."""
        return ".".join(self.names)


def is_under(module: str, allowed: Sequence[str]) -> bool:
    """Whether ``module`` is one of the ``allowed`` prefixes or lies under one."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed)


def screen_path(path: str, allowed: Sequence[str], role: Role) -> TargetPath:
    """Rules 1 and 2 (see the module docstring), without importing anything.

    Raises:
        ImportTargetError: The path is refused; ``reason`` says by which rule.
    """
    return _screen(path, tuple(allowed), role)


@functools.lru_cache(maxsize=4096)
def _screen(path: str, allowed: tuple[str, ...], role: Role) -> TargetPath:
    module, colon, names = path.partition(":")
    if not colon:
        module, _, names = path.rpartition(".")
    segments = names.split(".")
    if module or colon:
        segments = [*module.split("."), *segments]
    if not all(is_identifier(segment) for segment in segments):
        raise ImportTargetError(path, f"not a dotted path of ASCII identifiers {_EXAMPLE}")
    if any(segment.startswith("__") for segment in segments):
        raise ImportTargetError(path, "a name starting with '__' is never allowed")
    if not module:
        return _screen_builtin(path, names, role)
    if not is_under(module, allowed):
        raise ImportTargetError(path, f"not under the allowed modules {list(allowed)}")
    return TargetPath(module, tuple(names.split(".")))


def import_allowed(path: str, allowed: Sequence[str], role: Role) -> Any:
    """What ``path`` names, if the whole rule allows it; only allowed modules are imported.

    Raises:
        ImportTargetError: The path is refused, or its module cannot be imported.
    """
    return _import_allowed(path, tuple(allowed), role)


@functools.lru_cache(maxsize=4096)
def _import_allowed(path: str, allowed: tuple[str, ...], role: Role) -> Any:
    """`import_allowed`, remembered: a worker checks every path of every message.

    Only what was allowed is remembered; a refusal is decided again each time (a
    module missing now may be deployed later).
    """
    target = _screen(path, allowed, role)
    if target.module is None:
        return getattr(builtins, target.qualname)
    found: Any = _import_module(path, target.module)
    for depth, name in enumerate(target.names, start=1):
        if depth > 1 and not inspect.isclass(found):
            step = ".".join(target.names[: depth - 1])
            raise ImportTargetError(
                path, f"{step!r} is not a class: a path names its object directly"
            )
        members = vars(found)
        if name not in members:
            owner = target.module if depth == 1 else ".".join(target.names[: depth - 1])
            raise ImportTargetError(path, f"{owner} has no attribute {name!r}")
        found = members[name]
        _check_defined(path, found, target, ".".join(target.names[:depth]), allowed)
    _check_role(path, found, target, role)
    return found


def _screen_builtin(path: str, name: str, role: Role) -> TargetPath:
    if role != "exception":
        raise ImportTargetError(
            path, f"a {role} is never a builtin: name it by its dotted path {_EXAMPLE}"
        )
    found = vars(builtins).get(name)
    if not (inspect.isclass(found) and issubclass(found, BaseException)):
        raise ImportTargetError(path, "not a builtin exception class")
    return TargetPath(None, (name,))


def _import_module(path: str, module_name: str) -> types.ModuleType:
    module = find_module(path, module_name)
    if module is None:
        # An all-dots path is split at its last dot, however many names precede it.
        hint = "" if ":" in path else " (a path 'pkg.module.Name' names Name in pkg.module)"
        raise ImportTargetError(path, f"{missing_module_reason(module_name)}{hint}")
    return module


def _check_defined(
    path: str, found: Any, target: TargetPath, qualname: str, allowed: Sequence[str]
) -> None:
    """Rule 4: ``found`` is a class or function whose own names say it was defined here."""
    where = f"{qualname!r} in {target.module}"
    origin = _origin(found)
    if origin is None:
        kind = type(found).__name__
        raise ImportTargetError(path, f"{where} is a {kind}, not a class or function defined there")
    module, own_qualname = origin
    if not is_under(module, allowed):
        raise ImportTargetError(
            path,
            f"{where} is {module}:{own_qualname}, defined outside the allowed modules "
            f"{list(allowed)}",
        )
    if own_qualname != qualname:
        raise ImportTargetError(
            path, f"{where} is another name for {module}:{own_qualname}; use that path"
        )


def _origin(found: Any) -> tuple[str, str] | None:
    """Where a class or plain function says it was defined, read without running its code.

    ``type(found)`` and the class's own ``__dict__`` are read rather than attributes,
    which an object (or a metaclass) could compute.
    """
    if issubclass(type(found), type):
        module = vars(found).get("__module__")
        qualname = _TYPE_QUALNAME.__get__(found)
    elif type(found) is types.FunctionType:
        module, qualname = found.__module__, found.__qualname__
    else:
        return None
    if isinstance(module, str) and isinstance(qualname, str):
        return module, qualname
    return None


def _check_role(path: str, found: Any, target: TargetPath, role: Role) -> None:
    is_class = issubclass(type(found), type)
    if len(target.names) > 1 and not is_class:
        raise ImportTargetError(path, "a nested path ('module:Outer.Inner') names a class only")
    if role == "middleware" and not is_class:
        raise ImportTargetError(path, "a middleware is a class, not a function")
    if role == "exception" and not (is_class and issubclass(found, BaseException)):
        raise ImportTargetError(path, "not an exception class")
