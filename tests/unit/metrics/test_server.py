"""`arvel_flow.metrics.server`: what the supervisor and its children share on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("prometheus_client")

from arvel_flow.metrics.server import mark_dead


def test_mark_dead_drops_a_process_live_gauges_from_the_directory_it_is_given(
    tmp_path: Path,
) -> None:
    # Given the figures of two processes (the supervisor's own environment names no directory)
    for name in ("gauge_livesum_41.db", "gauge_livesum_42.db", "counter_41.db"):
        (tmp_path / name).write_bytes(b"")
    # When process 41 is marked dead in that directory
    mark_dead(41, str(tmp_path))
    # Then its live gauge is gone, its counters and the other process's gauge stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_41.db", "gauge_livesum_42.db"]
