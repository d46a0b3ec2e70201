"""PyYAML's syntax errors, told as what the writer did and what to do, at the right place."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from arvel_flow.pipeline.yaml_errors import describe_yaml_error

LOADERS = [yaml.SafeLoader, *([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])]
"""libyaml and PyYAML word their errors differently; both are described alike."""


def described(text: str, loader: Any) -> tuple[str, tuple[int, int] | None]:
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        list(yaml.compose_all(text, Loader=loader))
    message, mark = describe_yaml_error(caught.value, text)
    return message, None if mark is None else (mark.line + 1, mark.column + 1)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A tab indenting a key, and a tab indenting a list item
        (
            "a:\n\tb: 1\n",
            ("a tab character is not allowed for indentation in YAML; use spaces", (2, 1)),
        ),
        (
            "a:\n  - x\n\t- y\n",
            ("a tab character is not allowed for indentation in YAML; use spaces", (3, 1)),
        ),
        # A quoted string never closed: reported where it opens
        ('a: "abc\nb: 1\n', ("this quoted string is never closed", (1, 4))),
        # A reserved character starting a plain value
        ("a: @x\n", ("'@' cannot start a value in YAML; put the value in quotes", (1, 4))),
        # ': ' inside a plain value
        (
            "a: b: c\n",
            (
                "': ' inside a value; put the value in quotes, or start a nested mapping "
                "on a new, indented line",
                (1, 5),
            ),
        ),
        # A line without ':'
        (
            "a: 1\nb\nc: 2\n",
            (
                "this line is neither 'key: value' nor '- item': add ': ' after the key, "
                "or indent it to continue the value above",
                (2, 1),
            ),
        ),
    ],
)
def test_common_syntax_errors_read_well(
    text: str, expected: tuple[str, tuple[int, int]], loader: Any
) -> None:
    # Given YAML with a common mistake, read by either PyYAML or libyaml
    # When its error is described
    # Then the message says what is wrong and what to do, at the offending place
    assert described(text, loader) == expected


@pytest.mark.parametrize("loader", LOADERS)
def test_a_key_indented_past_its_siblings_is_an_indentation_problem(loader: Any) -> None:
    # Given a key indented further than the key before it (read as that value continuing)
    message, where = described("job: a\n   with: {}\n", loader)
    # Then the message is about indentation, at the ':' of the misplaced key
    assert message.startswith("this line is indented differently from the keys beside it")
    assert where == (2, 8)


@pytest.mark.parametrize("loader", LOADERS)
def test_an_unclosed_flow_list_names_where_it_opened(loader: Any) -> None:
    # Given a '[' list that is never closed
    message, _ = described("a: [1, 2\nb: 3\n", loader)
    # Then the message names the '[' and its position
    assert message == (
        "the list '[' opened at line 1, column 4 is not closed with ']', or lacks a ',' "
        "between items"
    )


@pytest.mark.parametrize("loader", LOADERS)
def test_a_line_out_of_its_mappings_indentation_says_so(loader: Any) -> None:
    # Given a key indented less than its siblings
    message, where = described("a:\n  b: 1\n c: 2\n", loader)
    # Then the message points at indentation, on that line
    assert message.endswith("check its indentation")
    assert where == (3, 2)


def test_an_error_not_described_keeps_pyyamls_words() -> None:
    # Given a YAML error with no description of ours
    error = yaml.MarkedYAMLError(problem="something odd", problem_mark=None)
    # When it is described
    message, mark = describe_yaml_error(error, "")
    # Then PyYAML's words stay, marked as invalid YAML
    assert (message, mark) == ("invalid YAML: something odd", None)
