"""`format_top`: the text view of one snapshot, at a fixed console width."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rich.console import Console

from arvel_flow.cli.top_render import format_rate, format_top
from arvel_flow.monitor import FailureView, QueueView, RunView, Snapshot, WorkerView

NOW = 1_796_313_600.0
"""2026-12-03 16:00:00 UTC."""


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def render(snapshot: Snapshot, width: int = 100) -> str:
    console = Console(width=width, color_system=None, record=True)
    console.print(format_top(snapshot))
    return console.export_text()


SNAPSHOT = Snapshot(
    taken_at=NOW,
    workers=(
        WorkerView("web-1:4242:a1b2c3", "web-1", 4242, ("default", "mail"), 0.4, True, 8, 3),
        WorkerView("web-2:77:d4e5f6", "web-2", 77, ("default",), 93.0, False),
    ),
    queues=(QueueView("default", 12, 4.5, rate=3.25), QueueView("mail", 0, 0.0, rate=0.0)),
    runs=(RunView("0193a1b2c3d4", "nightly-import", NOW - 300, 41, 120),),
    failures=(
        FailureView(
            "f-91", "app.jobs:SendMail", "0193a1b2c3d4", "SMTPError", "timed out", NOW - 60
        ),
    ),
)


EXPECTED = """\
arvel-flow top  2026-12-03 16:00:00  1 worker(s) alive, 1 run(s) in progress
                                   workers
┏━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ worker            ┃ host  ┃ pid  ┃ queues       ┃ load ┃ heartbeat         ┃
┡━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ web-1:4242:a1b2c3 │ web-1 │ 4242 │ default,mail │ 3/8  │ 0.4s ago          │
│ web-2:77:d4e5f6   │ web-2 │ 77   │ default      │      │ 1m 33s ago (dead) │
└───────────────────┴───────┴──────┴──────────────┴──────┴───────────────────┘
              queues
┏━━━━━━━━━┳━━━━━━━┳━━━━━━┳━━━━━━━┓
┃ queue   ┃ depth ┃ lag  ┃ rate  ┃
┡━━━━━━━━━╇━━━━━━━╇━━━━━━╇━━━━━━━┩
│ default │ 12    │ 4.5s │ 3.2/s │
│ mail    │ 0     │ 0s   │ 0/s   │
└─────────┴───────┴──────┴───────┘
                         runs in progress
┏━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┓
┃ run          ┃ pipeline       ┃ progress ┃ started             ┃
┡━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━┩
│ 0193a1b2c3d4 │ nightly-import │ 41/120   │ 2026-12-03 15:55:00 │
└──────────────┴────────────────┴──────────┴─────────────────────┘
                                     recent failures
┏━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┓
┃ failed ┃ job               ┃ run          ┃ error                ┃ at                  ┃
┡━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━┩
│ f-91   │ app.jobs:SendMail │ 0193a1b2c3d4 │ SMTPError: timed out │ 2026-12-03 15:59:00 │
└────────┴───────────────────┴──────────────┴──────────────────────┴─────────────────────┘
"""


def test_the_text_view_shows_each_section_as_a_table() -> None:
    assert [line.rstrip() for line in render(SNAPSHOT).splitlines()] == EXPECTED.splitlines()


def test_a_narrow_console_keeps_every_line_within_its_width() -> None:
    assert all(len(line) <= 60 for line in render(SNAPSHOT, width=60).splitlines())


def test_an_empty_deployment_says_so_in_its_header() -> None:
    empty = Snapshot(taken_at=NOW, workers=(), queues=(), runs=(), failures=())
    assert render(empty).splitlines()[0] == (
        "arvel-flow top  2026-12-03 16:00:00  0 worker(s) alive, 0 run(s) in progress"
    )


def test_what_a_broker_cannot_tell_is_left_blank_and_unseen_workers_are_said_so() -> None:
    # A RabbitMQ queue: no lag; a first snapshot: no rate; workers beating nowhere top reads
    snapshot = Snapshot(
        taken_at=NOW,
        workers=(),
        queues=(QueueView("default", 7, None, consumers=2),),
        runs=(),
        failures=(),
        workers_seen=False,
    )
    lines = [line.rstrip() for line in render(snapshot).splitlines()]
    assert lines[0] == (
        "arvel-flow top  2026-12-03 16:00:00  workers not seen, 0 run(s) in progress"
    )
    assert "│ default │ 7     │     │      │" in lines


@pytest.mark.parametrize(
    ("per_second", "shown"),
    [(0.0, "0/s"), (0.25, "0.25/s"), (3.0, "3/s"), (12.4, "12/s"), (1234.5, "1,234/s")],
)
def test_rates_are_written_short(per_second: float, shown: str) -> None:
    assert format_rate(per_second) == shown
