"""``--otel`` on ``worker --processes N``: the children trace, the supervisor does not."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from arvel_flow.cli import supervise
from arvel_flow.cli.worker import worker
from arvel_flow.queue import spans
from arvel_flow.settings import QueueSettings


def test_the_children_of_a_supervisor_get_otel_and_the_supervisor_traces_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    children: list[list[str]] = []

    def supervised(ctx: click.Context, settings: QueueSettings, processes: int, **_: object) -> int:
        children.append(supervise.child_command(ctx))
        return 0

    monkeypatch.setattr(supervise, "supervise", supervised)
    result = CliRunner().invoke(worker, ["--allow", "myapp", "--processes", "2", "--otel"])
    assert result.exit_code == 0, result.output
    (argv,) = children
    assert "--otel" in argv
    assert spans.hooks is None
