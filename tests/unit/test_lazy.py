"""`lazy_exports`: a package's public names, imported from their modules on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from arvel_flow.lazy import lazy_exports
from tests.fixtures.calls import count_calls

PACKAGE = "tests_lazy_package"


@pytest.fixture
def package() -> Iterator[types.ModuleType]:
    """A package (being imported) that re-exports `json.dumps` and `textwrap.dedent`."""
    module = types.ModuleType(PACKAGE)
    sys.modules[PACKAGE] = module
    exports = {"dumps": "json", "dedent": "textwrap"}
    # As the package's own ``__getattr__, __dir__ = lazy_exports(__name__, ...)`` would.
    vars(module)["__getattr__"], vars(module)["__dir__"] = lazy_exports(PACKAGE, exports)
    try:
        yield module
    finally:
        del sys.modules[PACKAGE]


def test_a_name_is_the_object_of_its_module(package: types.ModuleType) -> None:
    # When a name of the table is looked up on the package
    value = package.dumps
    # Then it is the object of that name in the module the table gives
    assert value is importlib.import_module("json").dumps


def test_a_name_is_imported_once_then_kept_in_the_package(
    package: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the imports counted
    calls = count_calls(monkeypatch, importlib, "import_module")
    # When a name is looked up three times
    first = package.dedent
    assert package.dedent is first
    assert package.dedent is first
    # Then its module was imported once, and the object stays in the package
    assert calls == [1]
    assert vars(package)["dedent"] is first


def test_dir_lists_every_name_before_any_is_imported(package: types.ModuleType) -> None:
    # Given a package none of whose names was looked up
    assert "dumps" not in vars(package)
    # When its names are listed, then the table's are among them
    assert {"dumps", "dedent"} <= set(dir(package))


def test_a_name_not_in_the_table_is_an_attribute_error_naming_the_package(
    package: types.ModuleType,
) -> None:
    # When a name the table does not have is looked up
    with pytest.raises(AttributeError) as raised:
        _ = package.loads
    # Then the error says which package and which name, as Python's own does
    assert str(raised.value) == f"module {PACKAGE!r} has no attribute 'loads'"
    assert not hasattr(package, "loads")


@pytest.mark.parametrize("name", ["arvel_flow", "arvel_flow.testing", "arvel_flow.compiler"])
def test_each_re_exporting_package_imports_none_of_its_names_until_used(name: str) -> None:
    # Given a fresh interpreter that imports only the package
    code = (
        f"import sys, {name} as p; "
        "print(sorted(n for n in p.__all__ if n in vars(p)), set(p.__all__) <= set(dir(p)))"
    )
    # When it lists the names it holds, and those dir() shows
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # Then it holds none of them yet, and dir() shows them all
    assert output.stdout.split() == ["[]", "True"]
