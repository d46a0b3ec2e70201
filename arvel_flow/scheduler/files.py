"""The triggers of pipeline files: ``FILE_OR_DIR...`` to `Trigger` objects."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.pipeline.discover import find_pipeline_files
from arvel_flow.pipeline.loader import load_spec
from arvel_flow.scheduler.triggers import Trigger


def find_files(paths: Sequence[str]) -> list[Path]:
    """The pipeline files named, a directory standing for the pipelines directly in it
    (as ``validate DIR`` reads one: `find_pipeline_files`; other YAML files are not ours).

    Raises:
        ConfigError: A path that does not exist.
    """
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += find_pipeline_files(path).pipelines
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError([ConfigIssue(f"no such file or directory: {name}")])
    return found


def load_triggers(paths: Sequence[str]) -> list[Trigger]:
    """Every trigger of the files named (files without ``schedule:`` add none).

    Raises:
        ConfigError: A file is invalid (every problem, each at its position), or two
            files declare the same pipeline name with triggers.
    """
    triggers: list[Trigger] = []
    issues: list[ConfigIssue] = []
    owners: dict[str, str] = {}
    for path in find_files(paths):
        try:
            spec = load_spec(path, warnings=[])
        except ConfigError as error:
            issues += error.issues
            continue
        if not spec.schedule:
            continue
        source = os.fspath(path)
        if spec.name in owners:
            issues.append(
                ConfigIssue(
                    f"pipeline {spec.name!r} is also scheduled by {owners[spec.name]}: "
                    "trigger ids are kept per pipeline name",
                    file=source,
                )
            )
            continue
        owners[spec.name] = source
        triggers += [Trigger.of(spec.name, source, trigger) for trigger in spec.schedule]
    if issues:
        raise ConfigError(issues)
    return triggers


def files_changed(stamps: dict[Path, float], paths: Sequence[str]) -> bool:
    """Whether a file named was added, removed or modified since ``stamps`` (updated)."""
    current: dict[Path, float] = {}
    for path in find_files(paths):
        try:
            current[path] = path.stat().st_mtime
        except OSError:
            continue
    changed = current != stamps
    stamps.clear()
    stamps.update(current)
    return changed
