"""The fixture corpus: every invalid file yields exactly its golden messages, every
valid file compiles to its golden outline."""

from __future__ import annotations

from pathlib import Path

import pytest

from arvel_flow.compiler import compile_plan, load_pipeline
from arvel_flow.errors import ConfigError
from tests.fixtures.outline import outline
from tests.fixtures.spec_paths import ENV, INVALID, VALID

INVALID_FILES = sorted(INVALID.glob("*.yaml"))
VALID_FILES = sorted(VALID.glob("*.yaml"))


def test_the_invalid_corpus_covers_every_kind_of_problem() -> None:
    # Given the corpus, grouped by the pass that must catch each file
    groups = {path.name.split("_")[0] for path in INVALID_FILES}
    # Then it is large enough and spans every pass
    assert len(INVALID_FILES) >= 30
    assert {"yaml", "schema", "ref", "vars", "strict"} <= groups


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda path: path.stem)
def test_invalid_file_reports_its_golden_messages(path: Path) -> None:
    # Given an invalid pipeline and the messages it must produce, in file order
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    # When it is loaded in strict mode
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path, file=path.name, env=ENV)
    # Then exactly those messages come out, each with its line and column
    assert [issue.format() for issue in caught.value.issues] == expected
    assert all(issue.line is not None for issue in caught.value.issues)


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda path: path.stem)
def test_valid_file_compiles_to_its_golden_outline(path: Path) -> None:
    # Given a valid pipeline and the outline of the graph it must compile to
    expected = path.with_suffix(".graph").read_text(encoding="utf-8")
    # When it is loaded strictly and compiled
    spec = load_pipeline(path, env=ENV)
    plan = compile_plan(spec)
    # Then the graph has exactly that structure
    assert outline(plan) == expected
