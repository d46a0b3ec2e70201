"""Which files of a directory are pipelines, for ``validate DIR``.

A directory is read one level deep, like ``kubectl apply -f DIR`` without ``-R``: a
project keeps its pipelines together (``pipelines/``), and walking down would reach
``.github/workflows``, ``node_modules`` or a virtualenv. Of its ``*.yaml`` and ``*.yml``
files, those with a top-level ``pipeline:`` key are pipelines (every pipeline has one);
the others (``docker-compose.yml``, a CI workflow, Kubernetes manifests) are skipped and
named as skipped. The key is looked for in the text, not the parsed YAML, so a pipeline
with a syntax error is still validated and its error reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".yaml", ".yml")
_PIPELINE_KEY = re.compile(rb"""^(?:pipeline|"pipeline"|'pipeline')[ \t]*:""", re.MULTILINE)
_SNIFFED_BYTES = 1 << 20
"""Read at most this much of a file to decide; a pipeline's ``pipeline:`` key comes early."""


@dataclass(frozen=True, slots=True)
class Discovered:
    """The pipeline files of a directory, and the YAML files skipped with the reason."""

    pipelines: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]


def find_pipeline_files(directory: Path) -> Discovered:
    """The ``*.yaml`` / ``*.yml`` files directly in ``directory`` that are pipelines, sorted.

    Raises:
        OSError: The directory cannot be listed.
    """
    pipelines: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        if is_pipeline_file(path):
            pipelines.append(path)
        else:
            skipped.append((path, "not a pipeline: no top-level 'pipeline:' key"))
    return Discovered(tuple(pipelines), tuple(skipped))


def is_pipeline_file(path: Path) -> bool:
    """Whether ``path`` has a top-level ``pipeline:`` key (an unreadable file counts, so
    that validating it reports why it cannot be read)."""
    try:
        with path.open("rb") as file:
            head = file.read(_SNIFFED_BYTES)
    except OSError:
        return True
    return _PIPELINE_KEY.search(head) is not None
