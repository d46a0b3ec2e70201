"""Fuzzing ``validate``: whatever the input, it exits 0 or 2 and never shows a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arvel_flow.cli.app import cli
from tests.fixtures.spec_paths import ENV, VALID

SEEDS = [path.read_bytes() for path in sorted(VALID.glob("*.yaml"))]
YAML_CHARS = ":-[]{},&*!|>'\"#%@`?$ \n\t~.0123456789abcxyz<"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def validate(content: bytes, *extra: str) -> None:
    """Run ``validate`` on ``content``; fail the test on any other exit than 0 or 2."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.yaml"
        path.write_bytes(content)
        result = CliRunner(env=ENV).invoke(cli, ["validate", *extra, str(path)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid file with a few random edits: deletions, insertions, swapped lines."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["delete", "insert", "swap", "indent"]))
        if edit == "delete":
            del data[position : position + draw(st.integers(1, 12))]
        elif edit == "insert":
            data[position:position] = draw(st.text(YAML_CHARS, min_size=1, max_size=8)).encode()
        elif edit == "swap":
            lines = data.split(b"\n")
            first, second = (
                draw(st.integers(0, len(lines) - 1)),
                draw(st.integers(0, len(lines) - 1)),
            )
            lines[first], lines[second] = lines[second], lines[first]
            data = bytearray(b"\n".join(lines))
        else:
            data[position:position] = b"  "
    return bytes(data)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(content: bytes) -> None:
    validate(content, "--no-strict")


@FUZZ
@given(mutated())
def test_mutated_valid_files(content: bytes) -> None:
    # Not strict: a random edit of a dotted path must not import an arbitrary module
    validate(content, "--no-strict")


SAFE_TEXT = st.text("abcxyz_- ${}%0123456789", max_size=10)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def restructured(draw: st.DrawFn) -> bytes:
    """A valid document with one value somewhere replaced by a random value."""
    data: Any = yaml.safe_load(draw(st.sampled_from(SEEDS)))
    node = data
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[key], dict | list) or draw(st.booleans()):
            node[key] = draw(VALUES)
            break
        node = node[key]
    return yaml.safe_dump(data).encode()


@FUZZ
@given(restructured())
def test_restructured_valid_files_in_strict_mode(content: bytes) -> None:
    # Random values never name a module (no '.' or ':'), so strict mode is safe here
    validate(content)
