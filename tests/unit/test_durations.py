"""`format_duration`: the one way durations are written for people (live view, plan, warnings)."""

from __future__ import annotations

import pytest

from arvel_flow.durations import format_duration, format_exact


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.8155133724212646, "0.8s"),
        (2.0, "2s"),
        (42.4, "42s"),
        (90, "1m 30s"),
        (125, "2m 5s"),
        (3600, "1h"),
        (90061, "1d 1h"),
        (-1, "0s"),
        (float("inf"), "forever"),
    ],
)
def test_a_duration_reads_at_a_glance(seconds: float, text: str) -> None:
    # Given a span of time, when it is written for people, then two units at most
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "0.25s"),
        (59, "59s"),
        (90, "1m 30s"),
        (3600, "1h"),
        (3630, "1h 30s"),
        (90061, "1d 1h 1m 1s"),
        (float("inf"), "forever"),
    ],
)
def test_a_setting_keeps_every_unit(seconds: float, text: str) -> None:
    # Given a setting (a timeout, a backoff), when written, then nothing of it is rounded away
    assert format_exact(seconds) == text
