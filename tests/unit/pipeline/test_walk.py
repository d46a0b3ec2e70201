"""Walking a parsed pipeline: every step, in the order problems are reported."""

from __future__ import annotations

from arvel_flow.pipeline.walk import iter_steps


def test_steps_come_depth_first_with_callbacks_after_members() -> None:
    # Given a chain holding a batch with callbacks of its own, and callbacks at the root
    data = {
        "pipeline": {
            "chain": [
                {"job": "a", "then": {"job": "a-then"}},
                {
                    "batch": [{"job": "b"}, "not a step", {"chain": [{"job": "c"}]}],
                    "finally": {"job": "batch-finally"},
                    "then": {"batch": [{"job": "d"}]},
                },
            ],
            "catch": {"job": "root-catch"},
        }
    }
    # When it is walked
    steps = list(iter_steps(data))
    # Then each step comes before its members, members before callbacks, then before
    # catch before finally, and only the root is marked as such
    assert [".".join(map(str, at.path)) for at in steps] == [
        "pipeline",
        "pipeline.chain.0",
        "pipeline.chain.0.then",
        "pipeline.chain.1",
        "pipeline.chain.1.batch.0",
        "pipeline.chain.1.batch.2",
        "pipeline.chain.1.batch.2.chain.0",
        "pipeline.chain.1.then",
        "pipeline.chain.1.then.batch.0",
        "pipeline.chain.1.finally",
        "pipeline.catch",
    ]
    assert [at.root for at in steps] == [True] + [False] * 10


def test_a_file_without_a_pipeline_mapping_has_no_steps() -> None:
    assert list(iter_steps({})) == []
    assert list(iter_steps({"pipeline": ["a list"]})) == []
