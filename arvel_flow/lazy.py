"""Lazy re-exports: a package's public names, each imported from its module on first use.

A package that re-exports (`arvel_flow`, `arvel_flow.testing`, `arvel_flow.compiler`)
names its public objects in one table, name to module, and hands it here::

    _EXPORTS = {"FakeQueue": "arvel_flow.testing.fake", ...}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

Importing the package then imports none of those modules (``import arvel_flow``, and
so the command line's ``--help``, stays fast; pytest imports `arvel_flow.testing` in
every project). The first lookup of a name imports its module and keeps the object
in the package, so later lookups cost nothing; ``dir()`` lists the names before any
of them is imported. Type checkers see the names through imports under
``if TYPE_CHECKING:`` beside the table.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for ``exports``.

    Args:
        package: The package's ``__name__`` (it is being imported: call this from its
            ``__init__``).
        exports: Each public name and the module it is defined in.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
