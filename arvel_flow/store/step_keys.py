"""Fan-out member keys (``<fan-out>[i]``), and `StepKeys`: a list of keys kept compact.

A fan-out of a million items has a million member steps; listing their keys as
strings costs about 70 MB. Members mostly end the same way in index order, so a
list of keys keeps each run of consecutive members of one fan-out as a range and
makes their key strings only when someone reads them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload


def member_key(fan_out: str, index: int) -> str:
    """The step key of member ``index`` of the fan-out ``fan_out``."""
    return f"{fan_out}[{index}]"


def split_member_key(key: str) -> tuple[str, int] | None:
    """(fan-out key, index) of a member key; None for any other step key."""
    if not key.endswith("]"):
        return None
    fan_out, bracket, index = key[:-1].rpartition("[")
    digits = bracket and index.isascii() and index.isdigit()
    if not digits or (index[0] == "0" and len(index) > 1):
        return None
    return fan_out, int(index)


class StepKeys(Sequence[str]):
    """Step keys in order, consecutive fan-out members held as index ranges.

    Compares equal to any tuple or list of the same keys, so it reads like the
    tuple it stands for: ``result.succeeded == ("root.0",)``.
    """

    __slots__ = ("_length", "_parts")

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self._parts: list[str | tuple[str, range]] = []
        self._length = 0
        for key in keys:
            self.append(key)

    def append(self, key: str) -> None:
        """Add one key at the end (a member key joins the range it continues)."""
        member = split_member_key(key)
        if member is None:
            self._parts.append(key)
            self._length += 1
        else:
            self.append_member(*member)

    def append_member(self, fan_out: str, index: int) -> None:
        """Add member ``index`` of ``fan_out`` at the end, without making its key."""
        last = self._parts[-1] if self._parts else None
        if isinstance(last, tuple) and last[0] == fan_out and last[1].stop == index:
            self._parts[-1] = (fan_out, range(last[1].start, index + 1))
        else:
            self._parts.append((fan_out, range(index, index + 1)))
        self._length += 1

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[str]:
        for part in self._parts:
            if isinstance(part, str):
                yield part
            else:
                fan_out, indexes = part
                for index in indexes:
                    yield member_key(fan_out, index)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        member = split_member_key(key)
        for part in self._parts:
            if isinstance(part, str):
                if part == key:
                    return True
            elif member is not None and part[0] == member[0] and member[1] in part[1]:
                return True
        return False

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        for part in self._parts:
            size = 1 if isinstance(part, str) else len(part[1])
            if index < size:
                return part if isinstance(part, str) else member_key(part[0], part[1][index])
            index -= size
        raise IndexError(index)  # pragma: no cover - the length says otherwise

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StepKeys):
            return self._length == other._length and list(self) == list(other)
        if isinstance(other, tuple | list):
            return self._length == len(other) and all(
                a == b for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = [
            part if isinstance(part, str) else f"{part[0]}[{part[1].start}..{part[1].stop - 1}]"
            for part in self._parts
        ]
        return f"StepKeys({shown!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return StepKeys, (tuple(self),)
