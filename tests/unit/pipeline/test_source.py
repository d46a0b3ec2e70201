"""Reading YAML: core-schema typing, positions, and every hazard refused."""

from __future__ import annotations

import math

import pytest
import yaml

from arvel_flow.errors import ConfigError
from arvel_flow.pipeline import compose, source
from arvel_flow.pipeline.problems import MAX_PROBLEMS
from arvel_flow.pipeline.source import Position, decode_source, parse_document
from arvel_flow.scalars import format_scalar, resolve_plain
from tests.fixtures.calls import count_calls
from tests.fixtures.spec_paths import INVALID, VALID


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("null", None),
        ("~", None),
        ("", None),
        ("true", True),
        ("False", False),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("2024-01-01", "2024-01-01"),
        ("12", 12),
        ("-3", -3),
        ("0o17", 15),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("1_000", "1_000"),
        ("9" * 5000, "9" * 5000),
        ("v1.2", "v1.2"),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    # When a plain scalar is typed
    # Then only core-schema forms become non-strings (no Norway problem)
    assert resolve_plain(text) == value


def test_nan_is_a_float() -> None:
    assert math.isnan(resolve_plain(".nan"))


def test_scalars_are_written_back_as_yaml_spells_them() -> None:
    assert [format_scalar(v) for v in (None, True, False, 3, "x")] == [
        "",
        "true",
        "false",
        "3",
        "x",
    ]


def test_quoted_scalars_stay_strings() -> None:
    # Given numbers and booleans in quotes
    document = parse_document("a: '1'\nb: \"true\"\nc: 1\n")
    # Then only the unquoted one is typed
    assert document.data == {"a": "1", "b": "true", "c": 1}


def test_core_tags_convert_and_others_are_refused() -> None:
    # Given explicit core tags, and one that is not core
    document = parse_document(
        "a: !!str 3\nb: !!int '4'\nc: !!float 1\nd: !!null ''\ne: !!set {x}\n"
    )
    # Then core tags convert, the other is reported and its value dropped
    assert document.data == {"a": "3", "b": 4, "c": 1.0, "d": None, "e": None}
    assert [issue.message.split(";")[0] for issue in document.issues] == [
        "tag !!set is not supported"
    ]
    assert document.dropped == {("e",)}


def test_a_core_tag_that_does_not_fit_its_value_is_reported() -> None:
    document = parse_document("a: !!int twelve\n")
    assert document.issues[0].message.startswith("tag !!int does not fit the value 'twelve'")
    assert (document.issues[0].line, document.issues[0].column) == (1, 4)


def test_positions_point_at_values_and_keys() -> None:
    # Given a nested document
    document = parse_document("a:\n  b: [10, 20]\n  c: {d: x}\n")
    where = document.source_map.find
    # Then values, keys and parents are found, 1-based
    assert where(("a", "b", 1)) == Position(2, 11)
    assert where(("a", "c", "d")) == Position(3, 10)
    assert where(("a", "c", "d"), "key") == Position(3, 7)
    assert where(("a", "c", "e"), "parent") == Position(3, 3)
    # And a path that leaves the document resolves to its longest prefix
    assert where(("a", "b", 7)) == Position(2, 6)
    assert where(("zzz", 1)) == Position(1, 1)


def test_aliases_share_their_anchor_position_and_value() -> None:
    document = parse_document("a: &x {k: 1}\nb: *x\n")
    assert document.data["a"] is document.data["b"]
    assert document.source_map.find(("b", "k")) == Position(1, 11)


def test_billion_laughs_fails_without_expanding_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given nine levels of nine aliases each: 10^9 nodes once expanded
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    placed = count_calls(monkeypatch, compose.Composer, "_place")
    # When it is parsed
    with pytest.raises(ConfigError) as caught:
        parse_document("\n".join(lines))
    # Then it is refused at once, counted on the node graph: no more nodes are placed
    # than the text writes (10 lines of a key and 9 items), none of an expansion
    assert 0 < placed[0] <= 10 * 10 + 1
    assert "aliases expand the document by more than 100,000 nodes" in str(caught.value)


def test_aliases_within_the_limit_are_fine() -> None:
    text = "a: &a [1, 2, 3]\n" + "".join(f"b{i}: *a\n" for i in range(100))
    assert parse_document(text).data["b99"] == [1, 2, 3]


def test_nesting_is_limited_including_through_aliases() -> None:
    inner = "[" * 40 + "]" * 40
    with pytest.raises(ConfigError, match="nests the document deeper than 64 levels"):
        parse_document(f"a: &a {inner}\nb: {'[' * 30}*a{']' * 30}\n")


def test_deep_flow_nesting_is_refused_before_python_recursion() -> None:
    with pytest.raises(ConfigError, match=r"invalid YAML|nesting deeper"):
        parse_document("a: " + "[" * 5000 + "]" * 5000)


def test_files_past_the_size_limit_are_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(source, "MAX_BYTES", 100)
    with pytest.raises(ConfigError, match="pipeline files are limited to 100"):
        decode_source(b"a: 1\n" * 30)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"a: 1\n\x00\x01", "binary data, not a YAML text file (NUL byte)"),
        (b"a: caf\xe9\n", "not UTF-8 text (byte 0xe9)"),
        (b"a: \x07\n", "control character (U+0007)"),
    ],
)
def test_binary_input_is_refused_with_its_position(raw: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_document(decode_source(raw))
    assert message in caught.value.issues[0].message
    assert caught.value.issues[0].line is not None


def test_a_byte_order_mark_is_accepted() -> None:
    assert parse_document(decode_source(b"\xef\xbb\xbfa: 1\n")).data == {"a": 1}


def test_problems_that_are_not_fatal_are_all_collected() -> None:
    # Given a document with several readable-but-wrong parts
    document = parse_document("a: 1\na: 2\nb: !foo x\n? [k]\n: v\nc: *nothing\n")
    # Then each is reported, in order, and the rest of the data survives
    assert [issue.line for issue in document.issues] == [2, 3, 4, 6]
    assert document.data == {"a": 1, "b": None, "c": None}


def test_past_the_problem_limit_problems_are_counted_not_kept() -> None:
    # Given a document with 100,000 duplicate keys
    text = "a: 0\n" + "a: 1\n" * 100_000
    # When it is read
    document = parse_document(text)
    # Then the first MAX_PROBLEMS are kept, the rest only counted
    assert len(document.issues) == MAX_PROBLEMS
    assert document.issues[-1].line == MAX_PROBLEMS + 1
    assert document.omitted == 100_000 - MAX_PROBLEMS


def test_a_fatal_problem_past_the_problem_limit_is_still_reported() -> None:
    # Given 300 duplicate keys, then a syntax error
    text = "a: 0\n" + "a: 1\n" * 300 + "b: [\n"
    # When it is read / Then the syntax error comes out with the first 200 and the count
    with pytest.raises(ConfigError) as caught:
        parse_document(text)
    assert len(caught.value.issues) == MAX_PROBLEMS + 1
    assert caught.value.issues[-1].message.startswith("invalid YAML")
    assert caught.value.omitted == 100


def test_the_composer_limits_are_the_documented_ones() -> None:
    assert (compose.MAX_DEPTH, compose.MAX_ALIAS_NODES, source.MAX_BYTES) == (
        64,
        100_000,
        16 * 1024 * 1024,
    )


def test_the_pure_python_loader_reads_every_fixture_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every valid fixture read with libyaml
    texts = [path.read_text(encoding="utf-8") for path in sorted(VALID.glob("*.yaml"))]
    with_libyaml = [parse_document(text).data for text in texts]
    # When PyYAML's pure-Python loader stands in (libyaml is optional)
    monkeypatch.setattr(source, "_LOADER", yaml.SafeLoader)
    # Then the data are the same, and hazards are still refused
    assert [parse_document(text).data for text in texts] == with_libyaml
    with pytest.raises(ConfigError, match="nesting deeper than 64 levels"):
        parse_document("a: " + "[" * 200 + "]" * 200)
    with pytest.raises(ConfigError, match="billion laughs"):
        parse_document((INVALID / "yaml_billion_laughs.yaml").read_text())
