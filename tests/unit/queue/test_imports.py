"""Why a user's module failed to import, said in one line a person can act on."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from arvel_flow.errors import ImportTargetError
from arvel_flow.queue.imports import import_module
from arvel_flow.queue.targets import import_object

_numbers = itertools.count()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A fresh top-level package (a new name each time: imports are cached) on sys.path."""
    name = f"errapp_{next(_numbers)}_{abs(hash(tmp_path)) % 10_000}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return name, tmp_path / name


def reason_of(path: str, **kwargs: object) -> str:
    with pytest.raises(ImportTargetError) as caught:
        import_object(path, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def test_a_syntax_error_is_file_line_and_message(package: tuple[str, Path]) -> None:
    # Given a module with a syntax error on its line 2
    name, home = package
    (home / "jobs.py").write_text("x = 1\nclass A(object)\n    pass\n", encoding="utf-8")
    # When a path into it is imported, with either spelling
    for path in (f"{name}.jobs:A", f"{name}.jobs.A"):
        # Then the reason names the module, its file (relative) and line, and the message
        assert reason_of(path) == f"importing {name}.jobs failed: {name}/jobs.py:2: expected ':'"


def test_a_missing_dependency_names_the_module_that_needed_it(package: tuple[str, Path]) -> None:
    # Given a module importing a package that is not installed
    name, home = package
    (home / "jobs.py").write_text("import not_installed_dep_xyz\n", encoding="utf-8")
    # When it is imported
    for path in (f"{name}.jobs:A", f"{name}.jobs.A"):
        # Then the reason says which import failed and what was missing
        assert reason_of(path) == (
            f"importing {name}.jobs failed: No module named 'not_installed_dep_xyz'"
        )


def test_an_exception_at_import_is_its_type_and_message(package: tuple[str, Path]) -> None:
    # Given a module that raises while it is imported
    name, home = package
    (home / "jobs.py").write_text("raise RuntimeError('no config')\n", encoding="utf-8")
    # When it is imported
    # Then its type and message are the reason, not a repr
    assert reason_of(f"{name}.jobs:A") == f"importing {name}.jobs failed: RuntimeError: no config"


def test_a_missing_module_in_a_package_that_exists_gets_no_directory_hint(
    package: tuple[str, Path],
) -> None:
    # Given a package without the module named
    name, _ = package
    # When the module is imported
    reason = reason_of(f"{name}.nope:A")
    # Then the missing module is named, and the working directory is not blamed
    assert reason == f"no module named '{name}.nope'"


def test_a_package_not_importable_from_here_gets_the_working_directory_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a working directory from which no package 'nowhere_pkg_xyz' can be imported
    monkeypatch.chdir(tmp_path)
    # When a path into it is imported
    for path in ("nowhere_pkg_xyz.jobs:A", "nowhere_pkg_xyz.jobs.A"):
        # Then the reason says how to make it importable
        assert reason_of(path) == (
            "no module named 'nowhere_pkg_xyz' (run from the directory that contains "
            "nowhere_pkg_xyz/, or set PYTHONPATH)"
        )


def test_a_package_one_level_up_is_named_in_the_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a package in the parent of the working directory, which is not on sys.path
    (tmp_path / "uphere_pkg_xyz").mkdir()
    (tmp_path / "uphere_pkg_xyz" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    # When it is imported
    reason = reason_of("uphere_pkg_xyz.jobs:A")
    # Then the hint names the directory to run from
    assert reason == (
        f"no module named 'uphere_pkg_xyz' (uphere_pkg_xyz/ is in {tmp_path}: run from there, "
        f"or set PYTHONPATH={tmp_path})"
    )


def test_the_allowlist_reports_import_failures_the_same_way(package: tuple[str, Path]) -> None:
    # Given a module with a missing dependency, under the allowed modules (a worker)
    name, home = package
    (home / "jobs.py").write_text("import not_installed_dep_xyz\n", encoding="utf-8")
    # When a worker imports it
    reason = reason_of(f"{name}.jobs:A", allowed=[name])
    # Then the reason reads as it does for validate
    assert reason == f"importing {name}.jobs failed: No module named 'not_installed_dep_xyz'"


def test_import_module_returns_the_module(package: tuple[str, Path]) -> None:
    # Given a module that imports fine
    name, home = package
    (home / "jobs.py").write_text("VALUE = 7\n", encoding="utf-8")
    # When it is imported
    module = import_module(f"{name}.jobs:VALUE", f"{name}.jobs")
    # Then it is the module
    assert module.VALUE == 7
