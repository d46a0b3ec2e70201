"""`short_ids`: how tables show ids (pure)."""

from __future__ import annotations

from arvel_flow.cli.ids import short_ids


def test_generated_ids_are_cut_to_eight_characters() -> None:
    # Given generated ids with nothing in common / When shortened / Then 8 characters each
    shown = short_ids(["0123456789ab", "fedcba987654"])
    assert shown == {"0123456789ab": "01234567", "fedcba987654": "fedcba98"}


def test_ids_alike_in_eight_characters_are_cut_longer_to_stay_distinct() -> None:
    # Given two ids that share their first 9 characters, and a third one
    ids = ["abcdef0123aa", "abcdef0124bb", "99999999999999"]
    # When shortened / Then the two alike keep one character past what they share
    assert short_ids(ids) == {
        "abcdef0123aa": "abcdef0123",
        "abcdef0124bb": "abcdef0124",
        "99999999999999": "99999999",
    }


def test_ids_given_through_the_api_are_kept_whole() -> None:
    # Given ids that arvel-flow did not generate / When shortened / Then kept as they are
    assert short_ids(["nightly-2026-12-03", "ABCDEF0123456"]) == {
        "nightly-2026-12-03": "nightly-2026-12-03",
        "ABCDEF0123456": "ABCDEF0123456",
    }
