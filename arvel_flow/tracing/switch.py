"""Whether this process traces: ``--otel``, ``ARVEL_FLOW_OTEL`` and the standard variables.

Read without importing OpenTelemetry, so that a process that does not trace never
imports it. In order, the first that applies decides:

1. ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``: off (the standard
   variables that turn tracing off win over everything).
2. ``--otel``: on.
3. ``ARVEL_FLOW_OTEL``: ``1``/``true``/``yes``/``on`` on, ``0``/``false``/``no``/``off``
   off.
4. ``OTEL_TRACES_EXPORTER`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its ``_TRACES_``
   form) set: on, *implicitly*: without the ``otel`` extra this says so and goes on
   untraced, where an explicit request is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from arvel_flow.errors import ConfigError, ConfigIssue

VARIABLE = "ARVEL_FLOW_OTEL"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_IMPLYING = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


class Tracing(Enum):
    """What the flag and the environment ask for."""

    OFF = "off"
    REQUESTED = "requested"
    """``--otel`` or ``ARVEL_FLOW_OTEL``: missing OpenTelemetry is an error."""
    IMPLIED = "implied"
    """Only the standard variables ask: missing OpenTelemetry is a warning."""


def tracing_wanted(flag: bool, environ: Mapping[str, str]) -> Tracing:
    """Whether to trace, given ``--otel`` and the environment (see the module).

    Raises:
        ConfigError: ``ARVEL_FLOW_OTEL`` is neither true nor false.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing.OFF
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return Tracing.OFF
    if flag:
        return Tracing.REQUESTED
    if VARIABLE in environ:
        value = environ[VARIABLE].strip().lower()
        if value in _TRUE:
            return Tracing.REQUESTED
        if value in _FALSE:
            return Tracing.OFF
        message = f"{environ[VARIABLE]!r} is not a boolean (1, true, yes, on / 0, false, no, off)"
        raise ConfigError([ConfigIssue(message, VARIABLE)])
    if any(environ.get(name, "").strip() for name in _IMPLYING):
        return Tracing.IMPLIED
    return Tracing.OFF
