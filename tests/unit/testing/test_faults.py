"""Fault specs: parsing, which steps they name, checks against a plan, and the per-run state."""

from __future__ import annotations

import pytest

from arvel_flow.errors import FaultSpecError
from arvel_flow.queue.job import JobSettings
from arvel_flow.queue.plan import ChainNode, FanOutNode, JobNode, Plan, make_batch
from arvel_flow.queue.targets import JobRef
from arvel_flow.testing.faults import Fault, FaultState, check_faults, parse_fault, parse_faults


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("import", Fault("import")),
        ("import@all", Fault("import")),
        ("import@1,2", Fault("import", frozenset({1, 2}))),
        ("import@2-4", Fault("import", frozenset({2, 3, 4}))),
        ("import@1, 3-4", Fault("import", frozenset({1, 3, 4}))),
        ("import:timeout", Fault("import", None, "timeout")),
        ("digests[3]@1:release", Fault("digests[3]", frozenset({1}), "release")),
        ("digests[*]@all:timeout", Fault("digests[*]", None, "timeout")),
        ("  spaced  ", Fault("spaced")),
    ],
)
def test_a_spec_is_parsed(text: str, expected: Fault) -> None:
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--fail '': expected STEP[@ATTEMPTS][:timeout|:release]"),
        ("import:boom", "--fail 'import:boom': unknown kind 'boom': use :timeout or :release"),
        ("import@x", "--fail 'import@x': 'x' is not an attempt number: use 'all', '1,2' or '2-4'"),
        ("import@", "--fail 'import@': '' is not an attempt number: use 'all', '1,2' or '2-4'"),
        ("import@0", "--fail 'import@0': attempts are numbered from 1 (up to 10,001): '0'"),
        ("import@3-1", "--fail 'import@3-1': attempts are numbered from 1 (up to 10,001): '3-1'"),
    ],
)
def test_a_malformed_spec_says_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_fault(text)
    assert str(raised.value) == message
    assert raised.value.spec == text


def test_a_spec_reads_back_as_written_in_its_canonical_form() -> None:
    assert str(parse_fault("digests[*]@2,1:timeout")) == "digests[*]@1,2:timeout"
    assert str(parse_fault("import@all")) == "import"


def test_the_python_api_takes_a_mapping_from_step_to_attempts() -> None:
    faults = parse_faults({"import": [1, 2], "report": "all"})
    assert faults == (Fault("import", frozenset({1, 2})), Fault("report"))


@pytest.mark.parametrize(
    ("spec", "key", "named"),
    [
        ("import", "import", True),
        ("import", "import.2", False),
        ("digests", "digests[4]", True),  # a fan-out names its members
        ("digests[3]", "digests[3]", True),
        ("digests[3]", "digests[4]", False),
        ("digests[*]", "digests[12]", True),
        ("digests[*]", "digests", False),
        ("digests[?]", "digests[12]", False),  # brackets are literal, not a class
        ("d*", "digests[1]", True),
    ],
)
def test_which_keys_a_fault_names(spec: str, key: str, named: bool) -> None:
    assert parse_fault(spec).names(key) is named


def _plan() -> Plan:
    no_timeout = JobRef("tests.unit.testing.jobs:Report", {}, JobSettings(timeout_seconds=0))
    fan = FanOutNode("digests", JobRef("tests.unit.testing.jobs:SendDigest"), [{"user_id": 1}] * 3)
    batch = make_batch("mail", [fan])
    chain = ChainNode("root", (JobNode("import", JobRef("x:Y")), batch, JobNode("r", no_timeout)))
    return Plan.of("p", chain)


@pytest.mark.parametrize("spec", ["import", "digests", "digests[2]", "digests[*]", "i*"])
def test_a_fault_that_names_a_job_step_passes_the_check(spec: str) -> None:
    check_faults([parse_fault(spec)], _plan())


@pytest.mark.parametrize("spec", ["nope", "digests[3]", "mail", "root", "z*"])
def test_a_fault_that_names_no_job_step_is_refused_naming_the_known_ones(spec: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        check_faults([parse_fault(spec)], _plan())
    assert str(raised.value) == (
        f"--fail {spec!r}: no job step is named {spec!r}; "
        "the job steps are: import, digests[0..2], r"
    )


def test_a_timeout_of_a_step_without_one_is_refused() -> None:
    with pytest.raises(FaultSpecError, match="step 'r' has no timeout"):
        check_faults([parse_fault("r:timeout")], _plan())


def test_a_release_is_spent_once_per_attempt_then_the_attempt_fails_by_the_other_fault() -> None:
    # Given attempt 1 of import released once and failing
    state = FaultState(parse_faults(["import@1:release", "import@1"]))
    # When attempt 1 comes three times (a release spends no attempt)
    kinds = [state.take("import", 1) for _ in range(3)]
    # Then it is released once, then fails each time; attempt 2 succeeds
    assert kinds == ["release", "error", "error"]
    assert state.take("import", 2) is None


def test_a_timeout_wins_over_an_error_and_is_seen_before_the_attempt_runs() -> None:
    state = FaultState(parse_faults(["import", "import@2:timeout"]))
    assert [state.times_out("import", n) for n in (1, 2)] == [False, True]
    assert [state.take("import", n) for n in (1, 2)] == ["error", "timeout"]


def test_a_pending_release_comes_before_a_timeout() -> None:
    state = FaultState(parse_faults(["import@1:timeout", "import@1:release"]))
    assert state.times_out("import", 1) is False
    assert state.take("import", 1) == "release"
    assert state.times_out("import", 1) is True
