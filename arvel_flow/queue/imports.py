"""Importing the module a dotted path names, and saying why it failed in words a person acts on.

Every import of a user's module (a job, a middleware, an exception class; in
``validate --strict``, ``plan``, ``run`` and in the worker) goes through
`import_module`, so each failure reads the same everywhere:

- a syntax error in the module: ``importing myapp.jobs failed: myapp/jobs.py:12: invalid
  syntax`` (the path relative to the working directory when under it);
- a dependency the module imports is missing: ``importing myapp.jobs failed: No module
  named 'x'``;
- the module itself, or its package, is missing: ``no module named 'myapp'``, with a hint
  when the working directory is probably wrong (the top package is not importable from
  ``sys.path``): run from the directory that contains ``myapp/``, or set PYTHONPATH;
- anything else raised while importing: its type and message.

Never a traceback: the reason is one line.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import types
from pathlib import Path

from arvel_flow.errors import ImportTargetError

_SEARCHED_PARENTS = 3
"""How many directories above the working directory the hint looks for a missing package."""


def import_module(path: str, module_name: str) -> types.ModuleType:
    """Import ``module_name`` (the module of the dotted ``path``).

    Raises:
        ImportTargetError: The module cannot be imported; ``reason`` says which module
            failed and why.
    """
    module = find_module(path, module_name)
    if module is None:
        raise ImportTargetError(path, missing_module_reason(module_name))
    return module


def find_module(path: str, module_name: str) -> types.ModuleType | None:
    """Import ``module_name``, or None when it (or a package it lies in) does not exist.

    Raises:
        ImportTargetError: The module exists but importing it failed (a syntax error, a
            missing dependency, an exception raised at import).
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if _is_missing(module_name, error.name):
            return None
        raise ImportTargetError(path, f"importing {module_name} failed: {error}") from None
    except SyntaxError as error:
        reason = f"{_source_position(error)}{error.msg}"
        raise ImportTargetError(path, f"importing {module_name} failed: {reason}") from None
    except Exception as error:
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ImportTargetError(path, f"importing {module_name} failed: {reason}") from None


def missing_module_reason(module_name: str) -> str:
    """Why ``module_name`` is not there: its package is missing, or the module in it.

    When the top package cannot be imported at all, the working directory is probably
    wrong: say where the package is if it lies near, else how to make it importable.
    """
    top = module_name.split(".")[0]
    if top != module_name and _importable(top):
        return f"no module named {module_name!r}"
    return f"no module named {top!r} ({working_directory_hint(top)})"


def working_directory_hint(package: str) -> str:
    """How to make the top-level ``package`` importable, naming its directory if near."""
    found = _package_home(package)
    if found is not None:
        return f"{package}/ is in {found}: run from there, or set PYTHONPATH={found}"
    return f"run from the directory that contains {package}/, or set PYTHONPATH"


def _is_missing(module_name: str, missing: str | None) -> bool:
    """Whether the module not found is ``module_name`` or a package it lies in."""
    return missing is not None and (module_name == missing or module_name.startswith(missing + "."))


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except Exception:  # any failure of the package is reported when the module is imported
        return False
    return True


def _package_home(package: str) -> Path | None:
    """A directory near the working directory that holds ``package`` (as a package or module).

    Looks in the working directory's ``src/`` and in its parents: the two usual ways
    of starting a command from the wrong place.
    """
    cwd = Path.cwd()
    candidates = [cwd / "src", *list(cwd.parents)[:_SEARCHED_PARENTS]]
    for directory in candidates:
        if (directory / package / "__init__.py").is_file() or (
            directory / f"{package}.py"
        ).is_file():
            return directory
    return None


def _source_position(error: SyntaxError) -> str:
    """``file:line: `` of a syntax error, the file relative to the working directory if under it."""
    if not error.filename:
        return ""
    file = error.filename
    with contextlib.suppress(OSError, ValueError):  # another drive, a vanished cwd
        file = os.path.relpath(file) if Path(file).resolve().is_relative_to(Path.cwd()) else file
    line = f":{error.lineno}" if error.lineno else ""
    return f"{file}{line}: "
