"""Whether a process traces: the flag, ARVEL_FLOW_OTEL and the standard variables."""

from __future__ import annotations

import pytest

from arvel_flow.errors import ConfigError
from arvel_flow.tracing.switch import Tracing, tracing_wanted


@pytest.mark.parametrize(
    ("flag", "environ", "wanted"),
    [
        (False, {}, Tracing.OFF),
        (True, {}, Tracing.REQUESTED),
        (False, {"ARVEL_FLOW_OTEL": "1"}, Tracing.REQUESTED),
        (False, {"ARVEL_FLOW_OTEL": "off"}, Tracing.OFF),
        (False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, Tracing.IMPLIED),
        (False, {"OTEL_TRACES_EXPORTER": "console"}, Tracing.IMPLIED),
        # ARVEL_FLOW_OTEL=0 keeps a process untraced whatever OTEL_* say
        (False, {"ARVEL_FLOW_OTEL": "0", "OTEL_TRACES_EXPORTER": "otlp"}, Tracing.OFF),
        # the standard switches that turn tracing off win, even over --otel
        (True, {"OTEL_TRACES_EXPORTER": "none"}, Tracing.OFF),
        (True, {"OTEL_SDK_DISABLED": "true"}, Tracing.OFF),
    ],
)
def test_the_flag_and_the_environment_decide(
    flag: bool, environ: dict[str, str], wanted: Tracing
) -> None:
    assert tracing_wanted(flag, environ) is wanted


def test_a_value_that_is_not_a_boolean_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ARVEL_FLOW_OTEL: 'maybe' is not a boolean"):
        tracing_wanted(False, {"ARVEL_FLOW_OTEL": "maybe"})
