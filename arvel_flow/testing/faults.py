"""Fault specs: which attempts of which steps a simulation fails, and how.

A spec reads ``STEP[@ATTEMPTS][:KIND]`` (``arvel-flow run FILE --dry-run --fail``):

- ``STEP`` is a job step's key (its ``id``), a fan-out member (``digests[3]``), a
  fan-out (``digests``: every member), or a glob over those keys (``digests[*]``,
  ``import*``): ``*`` and ``?`` are wildcards, brackets are literal.
- ``ATTEMPTS`` is ``all`` or a list of attempt numbers and ranges (``1,2``, ``2-4``);
  without it, every attempt fails, as a step that is down stays down.
- ``KIND`` is how the attempt fails: an error (the default), ``timeout`` (the attempt
  runs out its ``timeout_seconds`` of virtual time, then fails as a timed-out attempt
  does) or ``release`` (middleware puts the job back once, spending no attempt).

Parsing is pure (`parse_fault`); `check_faults` compares specs with a plan, and
`FaultState` answers, during one run, what each attempt does.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from arvel_flow.errors import FaultSpecError
from arvel_flow.queue.plan import FanOutNode, JobNode, Plan

FaultKind = Literal["error", "timeout", "release"]

KINDS: tuple[FaultKind, ...] = ("error", "timeout", "release")

_SPEC = re.compile(r"(?P<step>[^@:]+)(?:@(?P<attempts>[^:]*))?(?::(?P<kind>.*))?")

_MAX_ATTEMPT = 10_001
"""No step makes more attempts (a file allows at most 10,000 retries)."""

_SHOWN_KEYS = 12
"""Known steps an error names before it says how many more there are."""


@dataclass(frozen=True, slots=True)
class Fault:
    """Attempts of the steps ``step`` names that fail, and how.

    Attributes:
        step: A step key, fan-out member key or glob, as written.
        attempts: The failing attempt numbers (1-based); None: every attempt.
        kind: ``error``, ``timeout`` or ``release``.
    """

    step: str
    attempts: frozenset[int] | None = None
    kind: FaultKind = "error"

    def names(self, key: str) -> bool:
        """Whether the step (or fan-out member) ``key`` is one this fault names."""
        if self.is_glob:
            return _glob(self.step).fullmatch(key) is not None
        return key == self.step or (key.startswith(self.step + "[") and key.endswith("]"))

    def applies(self, key: str, attempt: int) -> bool:
        """Whether attempt number ``attempt`` of step ``key`` fails by this fault."""
        return (self.attempts is None or attempt in self.attempts) and self.names(key)

    @property
    def is_glob(self) -> bool:
        """Whether ``step`` has wildcards."""
        return "*" in self.step or "?" in self.step

    def __str__(self) -> str:
        attempts = "" if self.attempts is None else "@" + ",".join(map(str, sorted(self.attempts)))
        kind = "" if self.kind == "error" else f":{self.kind}"
        return f"{self.step}{attempts}{kind}"


FaultsArg = Iterable[str | Fault] | Mapping[str, Iterable[int] | str]
"""What the Python API takes: specs (text or parsed), or a mapping from a step to
its failing attempts (``"all"`` or attempt numbers), each failing with an error."""


def parse_fault(text: str) -> Fault:
    """Read one ``STEP[@ATTEMPTS][:KIND]`` spec.

    Raises:
        FaultSpecError: The spec is malformed (the message says what is expected).
    """
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise FaultSpecError(text, "expected STEP[@ATTEMPTS][:timeout|:release]")
    step = match["step"].strip()
    kind = match["kind"]
    if kind is not None and kind not in KINDS[1:]:
        raise FaultSpecError(text, f"unknown kind {kind!r}: use :timeout or :release")
    attempts = None if match["attempts"] is None else _parse_attempts(text, match["attempts"])
    return Fault(step, attempts, "error" if kind is None else kind)


def _parse_attempts(text: str, attempts: str) -> frozenset[int] | None:
    if attempts.strip() == "all":
        return None
    numbers: set[int] = set()
    for part in attempts.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise FaultSpecError(
                text, f"{part.strip()!r} is not an attempt number: use 'all', '1,2' or '2-4'"
            ) from None
        if not 1 <= low <= high <= _MAX_ATTEMPT:
            raise FaultSpecError(
                text, f"attempts are numbered from 1 (up to {_MAX_ATTEMPT:,}): {part.strip()!r}"
            )
        numbers.update(range(low, high + 1))
    return frozenset(numbers)


def parse_faults(faults: FaultsArg) -> tuple[Fault, ...]:
    """Specs as the Python API takes them (see `FaultsArg`), parsed.

    Raises:
        FaultSpecError: A spec is malformed.
    """
    if isinstance(faults, Mapping):
        parsed = []
        for step, attempts in faults.items():
            if isinstance(attempts, str):
                parsed.append(parse_fault(f"{step}@{attempts}"))
            else:
                parsed.append(parse_fault(f"{step}@{','.join(map(str, attempts))}"))
        return tuple(parsed)
    return tuple(f if isinstance(f, Fault) else parse_fault(f) for f in faults)


def check_faults(faults: Sequence[Fault], plan: Plan) -> None:
    """Check that each fault names job steps of ``plan`` that can fail that way.

    Raises:
        FaultSpecError: A fault names no job step (the message lists the known ones),
            or asks for a timeout of a step that has none.
    """
    for fault in faults:
        nodes = _named_nodes(fault, plan)
        if not nodes:
            raise FaultSpecError(
                str(fault), f"no job step is named {fault.step!r}; {_known_keys(plan)}"
            )
        if fault.kind == "timeout":
            for node in nodes:
                if not node.job.settings.timeout_seconds > 0:
                    raise FaultSpecError(
                        str(fault),
                        f"step {node.key!r} has no timeout (timeout_seconds: 0), "
                        "so it cannot time out",
                    )


def _named_nodes(fault: Fault, plan: Plan) -> list[JobNode | FanOutNode]:
    """The job and fan-out nodes ``fault`` names (a fan-out when one member is)."""
    named: list[JobNode | FanOutNode] = []
    for node in plan.nodes.values():
        if isinstance(node, FanOutNode):
            if _names_member(fault, node):
                named.append(node)
        elif isinstance(node, JobNode) and fault.names(node.key):
            named.append(node)
    return named


def _names_member(fault: Fault, node: FanOutNode) -> bool:
    if fault.is_glob:
        return any(fault.names(f"{node.key}[{i}]") for i in range(len(node.items)))
    if fault.step == node.key:
        return True
    prefix = node.key + "["
    if not (fault.step.startswith(prefix) and fault.step.endswith("]")):
        return False
    index = fault.step[len(prefix) : -1]
    return index.isdigit() and int(index) < len(node.items)


def _known_keys(plan: Plan) -> str:
    keys = [
        f"{node.key}[0..{len(node.items) - 1}]" if isinstance(node, FanOutNode) else node.key
        for node in plan.nodes.values()
        if isinstance(node, JobNode | FanOutNode)
    ]
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return f"the job steps are: {shown}{more}"


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` as wildcards; brackets literal (they index fan-out members)."""
    escaped = pattern.replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
    return re.compile(fnmatch.translate(escaped))


class FaultState:
    """What each attempt of one run does under ``faults``.

    A release spends no attempt, so the same attempt comes again: each ``release``
    fault releases an attempt once, and the attempt then runs (or fails by another
    fault). When several faults apply, release comes first, then timeout, then error.
    """

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = tuple(faults)
        self._released: set[tuple[int, str, int]] = set()

    def times_out(self, key: str, attempt: int) -> bool:
        """Whether attempt ``attempt`` of ``key`` runs out its timeout (when it runs)."""
        return self._kind(key, attempt, releases=True) == "timeout"

    def take(self, key: str, attempt: int) -> FaultKind | None:
        """How attempt ``attempt`` of ``key`` fails now (None: it succeeds); spends a release."""
        for index, fault in enumerate(self.faults):
            if fault.kind == "release" and self._may_release(index, fault, key, attempt):
                self._released.add((index, key, attempt))
                return "release"
        return self._kind(key, attempt, releases=False)

    def _may_release(self, index: int, fault: Fault, key: str, attempt: int) -> bool:
        return (index, key, attempt) not in self._released and fault.applies(key, attempt)

    def _kind(self, key: str, attempt: int, *, releases: bool) -> FaultKind | None:
        if releases and any(
            fault.kind == "release" and self._may_release(index, fault, key, attempt)
            for index, fault in enumerate(self.faults)
        ):
            return "release"
        kinds = {f.kind for f in self.faults if f.kind != "release" and f.applies(key, attempt)}
        return "timeout" if "timeout" in kinds else "error" if kinds else None
