"""`load_pipeline`: the file format's loader, with the strict checks as its last pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from arvel_flow.compiler import load_pipeline
from arvel_flow.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "quickstart.yaml"


def _modules_loaded_by(code: str) -> list[str]:
    script = f"import sys\n{code}\nprint(*sorted(sys.modules), sep='\\n')"
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return output.split()


def test_without_strict_checks_no_runtime_module_is_imported() -> None:
    # Given a fresh interpreter
    # When a pipeline is loaded without strict checks (validate --no-strict, a hook)
    loaded = _modules_loaded_by(
        "from arvel_flow.compiler import load_pipeline\n"
        f"load_pipeline({str(EXAMPLE)!r}, strict=False)"
    )
    # Then only the file format ran: no runtime, no strict checks, no broker client
    heavy = [
        name
        for name in loaded
        if name.startswith(("arvel_flow.queue", "arvel_flow.store", "arvel_flow.lock"))
        or name in {"arvel_flow.compiler.strict", "arvel_flow.compiler.graph", "redis", "taskiq"}
    ]
    assert heavy == []


def test_strict_checks_run_as_the_loaders_last_pass() -> None:
    # Given a file with a schema error and a job path that cannot be imported
    text = (
        "version: 1\nname: two-problems\nunknown_key: 1\n"
        "pipeline:\n  job: tests.no_such_module:Job\n"
    )
    # When it is loaded strictly
    with pytest.raises(ConfigError) as raised:
        load_pipeline(text)
    # Then one report holds both, the strict one included
    messages = [issue.message for issue in raised.value.issues]
    assert any("unknown_key" in message or "Extra inputs" in message for message in messages)
    assert any("no_such_module" in message for message in messages)
