"""PyYAML's syntax errors in words a person understands, at the line and column to fix.

The scanner and parser (libyaml's or PyYAML's own, whose wording differ) say what they
expected: "found character that cannot start any token", "did not find expected key".
`describe_yaml_error` turns the common ones into what the writer did (a tab used for
indentation, a quoted string never closed, a line out of its mapping's indentation)
and what to do, and keeps the position: the offending character, or where an unclosed
thing opened. Anything else keeps PyYAML's words after ``invalid YAML:``.
"""

from __future__ import annotations

from collections.abc import Callable

import yaml

Described = tuple[str, "yaml.Mark | None"]

_TAB_INDENT = "a tab character is not allowed for indentation in YAML; use spaces"
_TAB_ELSEWHERE = "a tab character is not allowed here in YAML; use a space"


def describe_yaml_error(error: yaml.MarkedYAMLError, text: str) -> Described:
    """A message for ``error`` in ``text`` and the mark to report it at."""
    problem = error.problem or ""
    mark = error.problem_mark
    found = _char_at(text, mark)
    if found == "\t":
        return (_TAB_INDENT if _only_indentation_before(text, mark) else _TAB_ELSEWHERE), mark
    for phrase, describe in _DESCRIPTIONS:
        if phrase in problem:
            described = describe(error, found, text)
            if described is not None:
                return described
    return _as_pyyaml_says(error), mark or error.context_mark


def _as_pyyaml_says(error: yaml.MarkedYAMLError) -> str:
    message = f"invalid YAML: {error.problem or error.context}"
    if error.context and error.problem and error.context_mark is not None:
        message += f" ({error.context} at {_where(error.context_mark)})"
    return message


def _reserved_start(error: yaml.MarkedYAMLError, found: str | None, _text: str) -> Described | None:
    if not found or not found.isprintable() or found.isspace():
        return None
    return (
        f"{found!r} cannot start a value in YAML; put the value in quotes",
        error.problem_mark,
    )


def _colon_in_value(error: yaml.MarkedYAMLError, _: str | None, text: str) -> Described:
    index = _index(text, error.problem_mark)
    before = "" if index is None else text[text.rfind("\n", 0, index) + 1 : index]
    if ": " not in before and not before.lstrip().startswith("- "):
        # Only a key before the ':': the line was read as the value above continuing.
        return (
            "this line is indented differently from the keys beside it; line it up with "
            "them (or, for a nested mapping, put nothing after the parent's ':')",
            error.problem_mark,
        )
    return (
        "': ' inside a value; put the value in quotes, or start a nested mapping on a "
        "new, indented line",
        error.problem_mark,
    )


def _unclosed_quote(error: yaml.MarkedYAMLError, _: str | None, _text: str) -> Described | None:
    if "quoted scalar" not in (error.context or ""):
        return None
    return "this quoted string is never closed", error.context_mark or error.problem_mark


def _unclosed_flow(error: yaml.MarkedYAMLError, _: str | None, _text: str) -> Described | None:
    context = error.context or ""
    if "flow sequence" in context:
        opened, closer = "list '['", "']'"
    elif "flow mapping" in context:
        opened, closer = "mapping '{'", "'}'"
    else:
        return None
    where = f" opened at {_where(error.context_mark)}" if error.context_mark else ""
    return (
        f"the {opened}{where} is not closed with {closer}, or lacks a ',' between items",
        error.problem_mark,
    )


def _out_of_mapping(error: yaml.MarkedYAMLError, found: str | None, _text: str) -> Described | None:
    if "block mapping" not in (error.context or ""):
        return None
    of = f" of the mapping at {_where(error.context_mark)}" if error.context_mark else ""
    if found == "-":
        message = (
            f"a list item where a key{of} was expected; check the indentation (the items "
            "of a list line up, under their key)"
        )
    else:
        message = f"this line is not a 'key: value'{of}; check its indentation"
    return message, error.problem_mark


def _out_of_list(error: yaml.MarkedYAMLError, _: str | None, _text: str) -> Described | None:
    if "block collection" not in (error.context or ""):
        return None
    of = f" of the list at {_where(error.context_mark)}" if error.context_mark else ""
    return (
        f"a 'key: value' where an item ('- ...'){of} was expected; check the indentation",
        error.problem_mark,
    )


def _key_without_colon(error: yaml.MarkedYAMLError, _: str | None, _text: str) -> Described:
    return (
        "this line is neither 'key: value' nor '- item': add ': ' after the key, or indent "
        "it to continue the value above",
        error.context_mark or error.problem_mark,
    )


def _undefined_alias(error: yaml.MarkedYAMLError, _: str | None, _text: str) -> Described:
    return (
        "'*' starts an alias, but no anchor ('&name') of that name is defined above; put "
        "the value in quotes if '*' is meant as text",
        error.problem_mark,
    )


_DESCRIPTIONS: tuple[
    tuple[str, Callable[[yaml.MarkedYAMLError, str | None, str], Described | None]], ...
] = (
    ("cannot start any token", _reserved_start),
    ("mapping values are not allowed", _colon_in_value),
    ("found unexpected end of stream", _unclosed_quote),
    ("expected ','", _unclosed_flow),
    ("did not find expected key", _out_of_mapping),
    ("expected <block end>", _out_of_mapping),
    ("did not find expected '-' indicator", _out_of_list),
    ("expected <block end>", _out_of_list),
    ("could not find expected ':'", _key_without_colon),
    ("found undefined alias", _undefined_alias),
)
"""PyYAML's phrase (libyaml's or its own), and who describes it; None passes it on."""


def _char_at(text: str, mark: yaml.Mark | None) -> str | None:
    index = _index(text, mark)
    return None if index is None or index >= len(text) else text[index]


def _only_indentation_before(text: str, mark: yaml.Mark | None) -> bool:
    index = _index(text, mark)
    if index is None:
        return False
    start = text.rfind("\n", 0, index) + 1
    return text[start:index].strip(" \t") == ""


def _index(text: str, mark: yaml.Mark | None) -> int | None:
    """The character offset of ``mark``, from its line and column (libyaml's ``index``
    may count bytes)."""
    if mark is None:
        return None
    start = 0
    for _ in range(mark.line):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    return start + mark.column


def _where(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"
