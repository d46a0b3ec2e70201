"""Strict mode: imports, parameters at their positions, big fan-outs, signatures."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from arvel_flow.compiler import compile_pipeline, load_pipeline, params
from arvel_flow.compiler.params import MAX_ITEM_PROBLEMS
from arvel_flow.compiler.signatures import check_call
from arvel_flow.errors import ConfigError, ImportTargetError
from arvel_flow.queue.flow import FanOut
from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode
from tests.fixtures import jobs_for_spec

JOBS = "tests.fixtures.jobs_for_spec"


def fan_out(count: int, item: str = "{{user_id: {i}}}") -> str:
    items = "".join(f"        - {item.format(i=i)}\n" for i in range(count))
    head = f"version: 1\nname: big\npipeline:\n  batch:\n    - job: {JOBS}:SendDigest\n"
    return f"{head}      each:\n{items}"


class CountingAdapter:
    """A `TypeAdapter` stand-in that counts the bulk validations it is asked for."""

    def __init__(self, adapter: Any, sizes: list[int]) -> None:
        self._adapter = adapter
        self._sizes = sizes

    def validate_python(self, values: list[Any]) -> Any:
        self._sizes.append(len(values))
        return self._adapter.validate_python(values)


def test_a_100_000_item_fan_out_validates_in_bulk_and_stays_lazy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a 100,000-item fan-out (benchmarks/bench_validate.py times it)
    text = fan_out(100_000)
    sizes: list[int] = []
    adapter = params._list_adapter
    monkeypatch.setattr(params, "_list_adapter", lambda m: CountingAdapter(adapter(m), sizes))
    # When it is validated strictly and compiled
    spec = load_pipeline(text)
    flow = compile_pipeline(spec)
    # Then the items are validated in a few bulk calls, each once, not a call per item ...
    assert sum(sizes) == 100_000
    assert len(sizes) == -(-100_000 // params._CHUNK)
    # ... and the fan-out is one node holding the parsed list, not 100,000 objects
    member = flow.steps[0] if isinstance(flow, ChainNode) else flow.members[0]  # type: ignore[attr-defined]
    assert isinstance(member, FanOut)
    assert len(member.items) == 100_000
    root = flow.to_plan("big").root
    assert isinstance(root, BatchNode)
    assert root.total == 100_000
    assert isinstance(root.members[0], FanOutNode)


def test_problems_in_a_big_fan_out_are_capped_with_a_summary() -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline(fan_out(500, "{{user_id: x{i}}}"), file="big.yaml")
    issues = caught.value.issues
    assert len(issues) == MAX_ITEM_PROBLEMS + 1
    # The summary sits on the 'each' key, so it sorts first
    assert issues[0].message == f"... and {500 - MAX_ITEM_PROBLEMS:,} more problems in these items"
    assert issues[0].path == "pipeline.batch[0].each"


def test_a_function_with_var_keyword_accepts_any_parameter() -> None:
    text = f"version: 1\nname: x\npipeline:\n  job: {JOBS}:anything\n  each: [{{a: 1}}, {{b: 2}}]\n"
    assert load_pipeline(text).name == "x"


def test_matrix_values_are_checked_one_axis_value_at_a_time() -> None:
    # Given a 3 x 3 matrix whose values are wrong in two places
    text = (
        f"version: 1\nname: x\npipeline:\n  job: {JOBS}:SendDigest\n"
        "  matrix: {user_id: [1, two, 3], locale: [en, 5, fr]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_pipeline(text)
    # Then each bad value is reported once, at its own position
    assert [(issue.path, issue.column) for issue in caught.value.issues] == [
        ("pipeline.matrix.user_id[1]", 25),
        ("pipeline.matrix.locale[1]", 47),
    ]


def test_signature_checks_cover_names_and_types() -> None:
    problems = check_call(
        jobs_for_spec.Tagging, {"weight": "x", "colour": 1}, ("with",), "Tagging()"
    )
    assert sorted(problem.message for problem in problems) == [
        "Input should be a valid integer, unable to parse string as an integer "
        "(argument 'weight' of Tagging())",
        "missing argument 'tag' of Tagging()",
        "unknown argument 'colour' of Tagging()",
    ]


def test_a_callable_without_a_signature_is_not_checked() -> None:
    assert check_call(dict, {"anything": 1}, (), "dict()") == []


ALLOWLISTED = """\
version: 1
name: forged
queue:
  allowed_modules: ["tests.unit.queue.allowlist_jobs."]
retry_policies:
  p:
    retry_on: [ConnectionError, "tests.unit.queue.allowlist_jobs:QuotaError"]
    dont_retry_on: ["tests.unit.queue.allowlist_jobs:JSONDecodeError"]
pipeline:
  chain:
    - job: tests.unit.queue.allowlist_jobs:Import
      retry: p
      middleware:
        - use: tests.unit.queue.allowlist_jobs:Guard
        - use: tests.unit.queue.allowlist_jobs:RateLimited
          with: {key: k, max_attempts: 1, decay_seconds: 1}
    - job: tests.unit.queue.allowlist_jobs:logging.os.popen
    - job: tests.unit.queue.allowlist_jobs.os.system
    - job: tests.unit.queue.forbidden_jobs:Forbidden
"""


def test_strict_mode_applies_the_files_allowlist_at_each_paths_position() -> None:
    # Given a file that allows one module, and names things a worker would refuse
    # When it is validated strictly
    with pytest.raises(ConfigError) as caught:
        load_pipeline(ALLOWLISTED, file="forged.yaml")
    # Then each refused path is reported where it is written, with the rule's reason
    found = {(issue.path, issue.line): issue.message for issue in caught.value.issues}
    assert found == {
        ("retry_policies.p.dont_retry_on[0]", 8): (
            "cannot use 'tests.unit.queue.allowlist_jobs:JSONDecodeError': 'JSONDecodeError' in "
            "tests.unit.queue.allowlist_jobs is json.decoder:JSONDecodeError, defined outside "
            "the allowed modules ['tests.unit.queue.allowlist_jobs']"
        ),
        ("pipeline.chain[0].middleware[1].use", 15): (
            "cannot use 'tests.unit.queue.allowlist_jobs:RateLimited': 'RateLimited' in "
            "tests.unit.queue.allowlist_jobs is arvel_flow.queue.middleware:RateLimited, "
            "defined outside the allowed modules ['tests.unit.queue.allowlist_jobs']"
        ),
        ("pipeline.chain[1].job", 17): (
            "cannot use 'tests.unit.queue.allowlist_jobs:logging.os.popen': 'logging' in "
            "tests.unit.queue.allowlist_jobs is a module, not a class or function defined there"
        ),
        ("pipeline.chain[2].job", 18): (
            "cannot use 'tests.unit.queue.allowlist_jobs.os.system': no module named "
            "'tests.unit.queue.allowlist_jobs.os' (a path 'pkg.module.Name' names Name in "
            "pkg.module)"
        ),
        ("pipeline.chain[3].job", 19): (
            "cannot use 'tests.unit.queue.forbidden_jobs:Forbidden': not under the allowed "
            "modules ['tests.unit.queue.allowlist_jobs']"
        ),
    }
    # And nothing outside the allowed module was imported to find that out
    assert "tests.unit.queue.forbidden_jobs" not in sys.modules


def test_the_compiler_imports_job_classes_under_the_files_allowlist() -> None:
    # Given a file with an allowlist, loaded without strict checks, naming a re-export
    text = ALLOWLISTED.split("pipeline:")[0] + (
        "pipeline:\n  job: tests.unit.queue.allowlist_jobs:Popen\n"
    )
    spec = load_pipeline(text, strict=False)
    # When it is compiled, then the compiler refuses it as a worker would
    with pytest.raises(ImportTargetError, match="subprocess:Popen, defined outside"):
        compile_pipeline(spec)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("examples..jobs", "'examples..jobs' is not a module prefix"),
        ("", "an empty module prefix"),
        ("*", "'*' is not a module prefix"),
    ],
)
def test_a_malformed_allowed_module_in_the_file_is_reported_at_its_position(
    prefix: str, message: str
) -> None:
    text = f'version: 1\nname: x\nqueue:\n  allowed_modules: ["{prefix}"]\npipeline:\n  job: x:Y\n'
    with pytest.raises(ConfigError) as caught:
        load_pipeline(text, strict=False)
    [issue] = [i for i in caught.value.issues if i.path == "queue.allowed_modules"]
    assert message in issue.message
    assert issue.line == 4


def test_a_trailing_dot_in_the_files_allowed_modules_is_dropped() -> None:
    text = 'version: 1\nname: x\nqueue:\n  allowed_modules: ["examples."]\npipeline:\n  job: x:Y\n'
    assert load_pipeline(text, strict=False).queue.allowed_modules == ["examples"]


def test_a_class_settings_are_read_once_however_many_steps_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a 300-step chain of one job class (a big file has thousands over a few)
    from arvel_flow.compiler import strict

    read: list[object] = []

    def counting(source: object) -> list[str]:
        read.append(source)
        return []

    monkeypatch.setattr(strict, "setting_problems", counting)
    steps = "".join(
        f"    - {{job: {JOBS}:SendDigest, with: {{user_id: {i}}}}}\n" for i in range(300)
    )
    # When it is validated strictly
    load_pipeline(f"version: 1\nname: long\npipeline:\n  chain:\n{steps}")
    # Then the class's settings are read once, not once per step
    assert read == [jobs_for_spec.SendDigest]
