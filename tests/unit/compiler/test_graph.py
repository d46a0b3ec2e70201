"""`compile_plan` and `compile_pipeline`: graph shape, settings merge, lazy fan-outs, examples."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from arvel_flow.compiler import compile_pipeline, compile_plan, compute_job_ref, load_pipeline
from arvel_flow.errors import ConfigError
from arvel_flow.pipeline.models import ChainStepSpec, JobStepSpec, PipelineSpec
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.plan import FanOutNode, ItemColumns, JobNode, Matrix, Plan
from arvel_flow.queue.plan_json import plan_from_dict, plan_to_dict
from tests.fixtures.outline import outline
from tests.fixtures.spec_paths import ENV, EXAMPLES, VALID

JOBS = "tests.fixtures.jobs_for_spec"


def plan_of(text: str, **options: bool) -> Plan:
    spec = load_pipeline(text, env=ENV)
    return compile_plan(spec, **options)


def settings_of(plan: Plan, key: str) -> JobSettings:
    node = plan.nodes[key]
    assert isinstance(node, JobNode | FanOutNode)
    return node.job.settings


def test_settings_merge_class_then_defaults_then_template_then_step() -> None:
    # Given a step whose settings come from all four levels
    plan = load_and_plan("settings_merge")
    merged = settings_of(plan, "templated")
    # Then each setting comes from the strongest level that sets it
    assert merged.max_retries == 9  # the step's inline policy
    assert merged.backoff == "exponential"  # the template's policy
    assert merged.jitter is True  # the defaults' policy
    assert merged.timeout_seconds == 40.0  # defaults, over the class's 12
    assert merged.queue_name == "from-template"
    assert merged.delay == 5.0
    # And middleware stacks concatenate, outermost first: defaults, template, step
    assert merged.middleware == (
        MiddlewareRef("tests.fixtures.jobs_for_spec:Audit", {"level": "debug"}),
        MiddlewareRef("rate_limited", {"key": "mid", "max_attempts": 1, "decay_seconds": 1.0}),
        MiddlewareRef("without_overlapping", {"key": "inner", "release_after": 5.0}),
    )


def test_defaults_override_the_class_and_apply_to_every_job() -> None:
    plan = load_and_plan("settings_merge")
    for key in ("plain", "bare"):
        merged = settings_of(plan, key)
        assert (merged.max_retries, merged.backoff, merged.timeout_seconds) == (1, 10.0, 40.0)
        assert merged.queue_name == "from-defaults"
        assert [ref.use for ref in merged.middleware] == ["tests.fixtures.jobs_for_spec:Audit"]


def test_a_job_class_own_defaults_are_the_base() -> None:
    # Given a class whose fields set max_retries, timeout, queue and backoff
    plan = plan_of(f"version: 1\nname: x\npipeline:\n  job: {JOBS}:Patient\n")
    # Then they are the job's settings when nothing in the file overrides them
    merged = settings_of(plan, "root.0")
    assert (merged.max_retries, merged.timeout_seconds, merged.queue_name, merged.backoff) == (
        7,
        12.0,
        "slow",
        5.0,
    )


def test_without_importing_classes_job_defaults_stand_in() -> None:
    plan = plan_of(f"version: 1\nname: x\npipeline:\n  job: {JOBS}:Patient\n", import_classes=False)
    assert settings_of(plan, "root.0") == JobSettings()


def test_template_parameters_merge_under_the_step_parameters() -> None:
    spec = load_pipeline(VALID / "targets.yaml", env=ENV)
    assert isinstance(spec.pipeline, ChainStepSpec)
    first = spec.pipeline.chain[0]
    assert isinstance(first, JobStepSpec)
    ref = compute_job_ref(spec, first)
    assert (ref.target, dict(ref.params)) == (
        "tests.fixtures.jobs_for_spec:resize",
        {"height": 64, "width": 64},
    )


@pytest.mark.parametrize("import_classes", [True, False])
def test_compile_plan_is_the_graph_flattened_under_the_pipeline_name(import_classes: bool) -> None:
    # Given a pipeline with fan-outs, callbacks and settings at every level
    spec = load_pipeline(EXAMPLES / "import_fanout.yaml", env=ENV)
    # When it is compiled into a plan, and into the graph of the Python API
    plan = compile_plan(spec, import_classes=import_classes)
    graph = compile_pipeline(spec, import_classes=import_classes)
    # Then the plan is named after the pipeline and is that graph's plan
    assert plan.name == spec.name
    assert plan_to_dict(plan) == plan_to_dict(graph.to_plan(spec.name))


def test_a_root_job_step_becomes_a_one_step_chain() -> None:
    spec = load_pipeline(VALID / "minimal.yaml", env=ENV)
    flow = compile_pipeline(spec)
    assert isinstance(flow, Chain)
    assert len(flow.steps) == 1


def test_fan_outs_stay_lazy() -> None:
    # Given a pipeline with an 'each' list and a 3 x 2 matrix
    spec = load_pipeline(VALID / "fan_outs.yaml", env=ENV)
    plan = compile_plan(spec)
    each, matrix = plan.nodes["spread.each"], plan.nodes["root.1.0"]
    assert isinstance(each, FanOutNode)
    assert isinstance(matrix, FanOutNode)
    # Then 'each' is the parsed list itself and the matrix computes items on demand
    assert isinstance(matrix.items, Matrix)
    assert len(matrix.items) == 6
    assert matrix.member(5).job.params == {"locale": "nl", "user_id": 3}
    assert each.member(1).job.params == {"locale": "de", "user_id": 11}


def test_each_items_sharing_their_keys_are_kept_as_columns_and_stored_so() -> None:
    # Given a 3-item 'each' whose items share their keys, and one whose items differ
    text = """
version: 1
name: columns
pipeline:
  batch:
    - {id: same, job: "tests.fixtures.jobs_for_spec:ImportRows",
       each: [{path: a}, {path: b}, {path: c}]}
    - {id: mixed, job: "tests.fixtures.jobs_for_spec:ImportRows",
       each: [{path: a}, {path: b, rows: 1}]}
"""
    plan = compile_plan(load_pipeline(text))
    same, mixed = plan.nodes["same"], plan.nodes["mixed"]
    assert isinstance(same, FanOutNode)
    assert isinstance(mixed, FanOutNode)
    # Then the first is columns, the second the items themselves, both read the same
    assert isinstance(same.items, ItemColumns)
    assert not isinstance(mixed.items, ItemColumns)
    assert [dict(item) for item in same.items] == [{"path": "a"}, {"path": "b"}, {"path": "c"}]
    # And a stored plan keeps the columns and reads back to the same members
    stored = plan_to_dict(plan)
    again = plan_from_dict(json.loads(json.dumps(stored)))
    assert plan_to_dict(again) == stored
    assert again.node("same[2]").job.params == same.member(2).job.params


def _fan_out_file(form: str, count: int) -> str:
    if form == "each":
        fan_out = "each: [" + ",".join(f"{{path: p{i}}}" for i in range(count)) + "]"
    else:
        fan_out = "matrix: {path: [" + ",".join(f"p{i}" for i in range(count)) + "]}"
    return (
        f"version: 1\nname: big\npipeline:\n  batch:\n  - job: {JOBS}:ImportRows\n    {fan_out}\n"
    )


@pytest.mark.parametrize(("form", "most"), [("each", 1_000), ("matrix", 200)])
def test_a_large_fan_out_is_parsed_and_compiled_without_copies(form: str, most: int) -> None:
    # Given a 20,000-item fan-out (and the job class imported already)
    count = 20_000
    compile_plan(load_pipeline(_fan_out_file(form, 1)))
    text = _fan_out_file(form, count)
    # When it is loaded strictly and compiled, memory traced
    tracemalloc.start()
    plan = compile_plan(load_pipeline(text))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Then the peak per item is its parsed value and position and a reference or two,
    # not also a validated copy of each item and a node object per position (before:
    # about 1,200 bytes an 'each' item, 260 a matrix value)
    assert len(plan.nodes) > 1
    assert peak / count < most


def test_compiling_is_deterministic_and_pure() -> None:
    spec = load_pipeline(VALID / "spec_example.yaml", env=ENV)
    first, second = (outline(compile_plan(spec)) for _ in range(2))
    assert first == second
    assert spec == load_pipeline(VALID / "spec_example.yaml", env=ENV)  # the spec is not mutated


def load_and_plan(name: str) -> Plan:
    spec: PipelineSpec = load_pipeline(VALID / f"{name}.yaml", env=ENV)
    return compile_plan(spec)


EXAMPLE_OUTLINES = {
    "crash_resume": """\
chain root
  job extract examples.jobs:ImportRows {"path":"exports/orders.csv","rows":120}
  job transform examples.jobs:CrashOnce {"rows":120}
  job load examples.jobs:Report {"title":"orders loaded"}
""",
    "quickstart": """\
chain root
  job import examples.jobs:ImportRows {"path":"exports/rows.csv","rows":250}
  job report examples.jobs:Report {"title":"quickstart"}
""",
    "import_fanout": """\
batch chunks {"allow_failures":"10%","concurrency":4,"name":"import chunks"} total=12
  fan-out chunks.0 examples.jobs:FlakyImport x12 {"failure_rate":0.2,"region":"eu"} each \
[{"chunk":1},{"chunk":2},{"chunk":3},{"chunk":4},{"chunk":5},{"chunk":6},{"chunk":7},{"chunk":8},\
{"chunk":9},{"chunk":10},{"chunk":11},{"chunk":12}]
  then: job chunks.then examples.jobs:Report {"title":"import eu"}
  catch: job chunks.catch examples.jobs:Alert {"message":"import eu failed"}
""",
    "scheduled": """\
chain root
  job import examples.jobs:ImportRows {"path":"exports/us.csv","rows":50}
  job compact examples.jobs:compact_logs {"days":7}
  job report examples.jobs:Report {"title":"scheduled us"}
""",
    "weekly_digest": """\
chain root
  job refresh examples.jobs:ImportRows {"path":"exports/users.csv"}
  batch digests {"allow_failures":1,"concurrency":4,"name":"weekly digests"} total=7
    fan-out digests.0 examples.jobs:SendWeeklyDigest x6 {} matrix \
{"locale":["en","fr"],"user_id":[1,2,3]}
    fan-out bounced examples.jobs:SendWeeklyDigest x1 {} each [{"bounce":true,"user_id":13}]
    then: job digests.then examples.jobs:NotifyDone {"message":"weekly digests sent"}
    catch: job digests.catch examples.jobs:Alert {"message":"too many digests failed"}
    finally: job digests.finally examples.jobs:Cleanup {}
  job compact examples.jobs:compact_logs {"days":7}
  finally: job report examples.jobs:Report {"title":"weekly digest"}
""",
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_OUTLINES))
def test_each_example_validates_strictly_and_compiles_to_its_graph(name: str) -> None:
    spec = load_pipeline(EXAMPLES / f"{name}.yaml", env={})
    assert outline(compile_plan(spec)) == EXAMPLE_OUTLINES[name]


def test_every_example_is_covered() -> None:
    assert sorted(path.stem for path in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_OUTLINES)


def test_example_settings_follow_their_policies() -> None:
    spec = load_pipeline(EXAMPLES / "weekly_digest.yaml", env={})
    plan = compile_plan(spec)
    digest = settings_of(plan, "digests.0")
    assert (digest.max_retries, digest.backoff, digest.queue_name) == (3, (0.1, 0.5), "mail")
    assert digest.dont_retry_on == ("examples.jobs:DigestBouncedError",)
    assert (digest.unique_for, digest.unique_id) == (3600.0, "digest-{user_id}-{locale}")
    assert [ref.use for ref in digest.middleware] == [
        "examples.jobs:Audit",
        "without_overlapping",
        "examples.jobs:OncePer",
    ]


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ({"job": "nope"}, "undefined job template 'nope'"),
        ({"job": "a.b:C", "retry": "nope"}, "undefined retry policy 'nope'"),
        ({"job": "a.b:C", "middleware": ["nope"]}, "undefined middleware stack 'nope'"),
        ({"chain": [{"id": "x", "job": "a.b:C"}, {"id": "x", "job": "a.b:C"}]}, "'x'"),
        ({"chain": [{"id": "root", "job": "a.b:C"}]}, "reserved step id 'root'"),
    ],
)
def test_a_spec_built_by_hand_fails_with_a_config_error(
    pipeline: dict[str, object], message: str
) -> None:
    # Given a spec that skipped load_pipeline's reference checks
    spec = PipelineSpec.model_validate({"version": 1, "name": "x", "pipeline": pipeline})
    # Then compiling it raises a ConfigError, never a KeyError
    with pytest.raises(ConfigError, match=message):
        compile_plan(spec, import_classes=False)
