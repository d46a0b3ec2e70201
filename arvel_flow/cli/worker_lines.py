"""The lines ``arvel-flow worker`` prints, its supervisor's too: Celery's worker form.

Every line, whichever process prints it, starts with the time to the millisecond, the
level and the process: ``[2026-12-03 15:30:00,123: INFO/MainProcess] worker w1: ready``.
`make_line_handler` is the one handler that prints them; `say` hands it a line of
the command's own.
"""

from __future__ import annotations

import logging
import sys

LINE_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
"""Celery's worker format: time to the millisecond, level and process, then the text."""

_BROKER_CLIENTS = ("aiormq", "aio_pika", "nats")


def make_line_handler(level: int) -> logging.Handler:
    """The handler of every line the worker prints: `LINE_FORMAT`, on stderr.

    Log records outside jobs at ``level`` and up go through it; the worker's own lines
    and job logs are handed to it directly, whatever their level.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    handler.addFilter(drop_broker_client_tracebacks)
    return handler


def say(lines: logging.Handler, text: str, level: int = logging.INFO) -> None:
    """Print one of the command's own lines through ``lines`` (time, level, process first)."""
    record = logging.makeLogRecord(
        {"name": "arvel_flow.worker", "msg": text, "levelno": level},
    )
    record.levelname = logging.getLevelName(level)
    lines.handle(record)


def drop_broker_client_tracebacks(record: logging.LogRecord) -> bool:
    """Keep the line, not the traceback, that a broker client logs when it loses its server.

    The worker says itself what the outage means (`arvel_flow.outage`); the client's own
    traceback of a closed connection tells a reader nothing more.
    """
    if record.name.split(".")[0] in _BROKER_CLIENTS:
        record.exc_info = None
        record.exc_text = None
    return True
