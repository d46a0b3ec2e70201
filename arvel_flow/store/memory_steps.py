"""`StepTable`: the step records of one run, finished fan-out members kept compact.

A record object and its key string cost about 160 bytes per step; a run with a
1,000,000-item fan-out would hold 160 MB of them. Steps are kept as records while
they can change, but once a fan-out member is final (and so never changes again,
but for a retried failure settling) it moves into its fan-out's arrays: a state
byte, the attempts, the start and finish times, about 21 bytes. Records are made
again, one at a time, when someone reads them. The memory store keeps one table per
run; the sqlite store reads a whole run into one.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

from arvel_flow.store.contracts import StepRecord, StepState
from arvel_flow.store.step_keys import member_key, split_member_key

_FINAL: tuple[StepState, ...] = ("succeeded", "failed", "skipped", "cancelled", "duplicate")
"""The final states, by code minus one (code 0: no record)."""
_CODES: dict[str, int] = {state: code for code, state in enumerate(_FINAL, start=1)}


def _time(value: float | None) -> float:
    return math.nan if value is None else value


def _optional_time(value: float) -> float | None:
    return None if math.isnan(value) else value


class FinishedMembers:
    """The final members of one fan-out, by index: state, attempts, start and finish."""

    __slots__ = ("attempts", "count", "errors", "finished", "shared", "started", "states")

    def __init__(self) -> None:
        self.states = bytearray()
        self.attempts = array("I")
        self.started = array("d")
        self.finished = array("d")
        self.errors: dict[int, str] = {}
        self.count = 0
        self.shared = False
        """Also held by a snapshot: copied before it is changed (see `StepTable.snapshot`)."""

    def put(self, index: int, record: StepRecord) -> None:
        """Keep ``record`` (final) as member ``index``'s."""
        gap = index - len(self.states)
        if gap >= 0:
            # Members mostly finish in index order: this appends (amortised growth).
            self.states.extend(bytes(gap + 1))
            self.attempts.frombytes(bytes(self.attempts.itemsize * (gap + 1)))
            self.started.extend([math.nan] * (gap + 1))
            self.finished.extend([math.nan] * (gap + 1))
        self.count += not self.states[index]
        self.states[index] = _CODES[record.state]
        self.attempts[index] = record.attempts
        self.started[index] = _time(record.started_at)
        self.finished[index] = _time(record.finished_at)
        if record.error is None:
            self.errors.pop(index, None)
        else:
            self.errors[index] = record.error

    def get(self, step: str, index: int) -> StepRecord | None:
        """Member ``index``'s record (as ``step``), or None when it has none here."""
        if index >= len(self.states) or not self.states[index]:
            return None
        return StepRecord(
            step,
            _FINAL[self.states[index] - 1],
            self.attempts[index],
            self.errors.get(index),
            _optional_time(self.started[index]),
            _optional_time(self.finished[index]),
        )

    def has(self, index: int) -> bool:
        """Whether member ``index`` has a record here."""
        return index < len(self.states) and bool(self.states[index])

    def remove(self, index: int) -> None:
        """Forget member ``index``'s record."""
        if self.has(index):
            self.states[index] = 0
            self.errors.pop(index, None)
            self.count -= 1

    def indexes(self) -> Iterator[int]:
        """Members with a record, in index order."""
        return (index for index, code in enumerate(self.states) if code)

    def copy(self) -> FinishedMembers:
        """An independent copy."""
        copied = FinishedMembers()
        copied.states = bytearray(self.states)
        copied.attempts = array("I", self.attempts)
        copied.started = array("d", self.started)
        copied.finished = array("d", self.finished)
        copied.errors = dict(self.errors)
        copied.count = self.count
        return copied


class StepTable(Mapping[str, StepRecord]):
    """Step key → record, as a mapping; final fan-out members kept in `FinishedMembers`.

    Iterates other steps first (in the order they were first recorded), then each
    fan-out's final members in index order.
    """

    __slots__ = ("_members", "_records")

    def __init__(self) -> None:
        self._records: dict[str, StepRecord] = {}
        self._members: dict[str, FinishedMembers] = {}

    def __getitem__(self, key: str) -> StepRecord:
        record: StepRecord | None = self.get(key)
        if record is None:
            raise KeyError(key)
        return record

    def get(self, key: str, default: Any = None) -> Any:
        """The record of ``key``, or ``default`` (without raising: the hot path)."""
        record = self._records.get(key)
        if record is not None or not self._members:
            return default if record is None else record
        member = split_member_key(key)
        found = None if member is None else self._members.get(member[0])
        if found is not None and member is not None:
            record = found.get(key, member[1])
        return default if record is None else record

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._records:
            return True
        member = split_member_key(key)
        found = None if member is None else self._members.get(member[0])
        return found is not None and member is not None and found.has(member[1])

    def __iter__(self) -> Iterator[str]:
        yield from self._records
        for fan_out, members in self._members.items():
            for index in members.indexes():
                yield member_key(fan_out, index)

    def __len__(self) -> int:
        return len(self._records) + sum(members.count for members in self._members.values())

    def put(self, key: str, record: StepRecord) -> None:
        """Set the record of ``key`` (a final member's goes into its fan-out's arrays)."""
        member = split_member_key(key) if record.final else None
        if member is None:
            if key not in self._records:
                self._remove_member(key)
            self._records[key] = record
            return
        self._records.pop(key, None)
        self._writable(member[0]).put(member[1], record)

    def _writable(self, fan_out: str) -> FinishedMembers:
        """The fan-out's members, made this table's own first if a snapshot shares them."""
        members = self._members.get(fan_out)
        if members is None or members.shared:
            members = FinishedMembers() if members is None else members.copy()
            self._members[fan_out] = members
        return members

    def remove(self, key: str) -> None:
        """Forget the record of ``key``, if there is one."""
        if self._records.pop(key, None) is None:
            self._remove_member(key)

    def _remove_member(self, key: str) -> None:
        member = split_member_key(key)
        members = None if member is None else self._members.get(member[0])
        if members is not None and member is not None and members.has(member[1]):
            self._writable(member[0]).remove(member[1])

    def snapshot(self) -> StepTable:
        """What the table holds now, unchanged by later writes to this table.

        The members' arrays are shared, not copied (a run's end reads a million members
        twice): a later write to this table copies the arrays it changes first.
        """
        copied = StepTable()
        copied._records = dict(self._records)
        copied._members = dict(self._members)
        for members in self._members.values():
            members.shared = True
        return copied
