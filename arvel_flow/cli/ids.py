"""Ids a person can type: a unique prefix names a run or a failed job, as in git and docker.

The store finds the ids that start with what was typed (`StoreContract.find_run_ids`,
`StoreContract.find_failed_ids`, which read no character as a pattern); this module
decides. An exact id wins; a prefix that one id starts with names it; a prefix that
several start with is a usage error listing them (exit 2); one that none starts with
says so (exit 2). Tables show generated ids cut to `SHORT` characters (`short_ids`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from arvel_flow.cli.common import EXIT_INVALID

if TYPE_CHECKING:
    from arvel_flow.store.contracts import StoreContract

SHORT = 8
"""Characters of a generated id shown in tables: 32 bits, unique among thousands of runs."""

SHOWN_CANDIDATES = 10
"""Most ids an ambiguous prefix lists."""

NO_TRUNC_OPTION = click.option(
    "--no-trunc", is_flag=True, help="Show whole ids (tables cut generated ids to 8 characters)."
)

_GENERATED = re.compile(r"[0-9a-f]+\Z")
"""Ids arvel-flow makes (hex); ids given through the API are shown whole."""


class IdError(click.ClickException):
    """An id that names nothing, or several things: a usage error (exit 2), no usage shown."""

    exit_code = EXIT_INVALID


class UnknownRunError(IdError):
    """No run id starts with what was typed."""

    def __init__(self, run_id: str, store: str) -> None:
        from arvel_flow.store.urls import mask_url

        super().__init__(f"no run {run_id!r} in the store {mask_url(store)} (see: arvel-flow runs)")


class UnknownFailedJobError(IdError):
    """No failed-job id starts with what was typed."""

    def __init__(self, failed_id: str, store: str) -> None:
        from arvel_flow.store.urls import mask_url

        super().__init__(
            f"no failed job {failed_id!r} in the store {mask_url(store)}"
            " (see: arvel-flow failed list)"
        )


def _checked(text: str, what: str) -> str:
    prefix = text.strip()
    if not prefix:
        raise IdError(f"an empty {what} id: give the id or the first characters of it")
    return prefix


def _ambiguous(prefix: str, what: str, lines: Sequence[str], more: bool) -> IdError:
    listed = "\n".join(f"  {line}" for line in lines)
    if more:
        listed += "\n  ..."
    return IdError(
        f"{prefix!r} is the start of more than one {what} id; type more of it:\n{listed}"
    )


async def resolve_run_id(store: StoreContract, text: str, store_url: str) -> str:
    """The id of the one run whose id is ``text`` or starts with it.

    Raises:
        UnknownRunError: No run id starts with ``text``.
        IdError: ``text`` is empty, or several run ids start with it (listed).
    """
    prefix = _checked(text, "run")
    if await store.get_run(prefix) is not None:
        return prefix
    ids = await store.find_run_ids(prefix, SHOWN_CANDIDATES + 1)
    if not ids:
        raise UnknownRunError(prefix, store_url)
    if len(ids) == 1:
        return ids[0]
    lines = []
    for run_id in ids[:SHOWN_CANDIDATES]:
        run = await store.get_run(run_id)
        lines.append(run_id if run is None else f"{run_id}  {run.name}  {run.status}")
    raise _ambiguous(prefix, "run", lines, len(ids) > SHOWN_CANDIDATES)


async def resolve_failed_id(store: StoreContract, text: str, store_url: str) -> str:
    """The id of the one failed job whose id is ``text`` or starts with it.

    Raises:
        UnknownFailedJobError: No failed-job id starts with ``text``.
        IdError: ``text`` is empty, or several failed-job ids start with it (listed).
    """
    prefix = _checked(text, "failed job")
    if await store.get_failed(prefix) is not None:
        return prefix
    ids = await store.find_failed_ids(prefix, SHOWN_CANDIDATES + 1)
    if not ids:
        raise UnknownFailedJobError(prefix, store_url)
    if len(ids) == 1:
        return ids[0]
    lines = []
    for failed_id in ids[:SHOWN_CANDIDATES]:
        record = await store.get_failed(failed_id)
        lines.append(
            failed_id if record is None else f"{failed_id}  {record.step or ''}  {record.job}"
        )
    raise _ambiguous(prefix, "failed job", lines, len(ids) > SHOWN_CANDIDATES)


def short_ids(ids: Sequence[str], *, length: int = SHORT) -> dict[str, str]:
    """Each id as a table shows it: a generated id cut to ``length`` characters.

    An id is cut longer where needed to stay distinct from the other ``ids`` (as git
    lengthens an abbreviation), so a table never shows one short id twice; ids given
    through the API (not lowercase hex) are kept whole.
    """
    ordered = sorted({i for i in ids if _GENERATED.match(i)})
    needed: dict[str, int] = {}
    for before, after in itertools.pairwise(ordered):
        # Sorted, an id shares its longest common prefix with a neighbour.
        common = next(
            (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
            min(len(before), len(after)),
        )
        needed[before] = max(needed.get(before, 0), common + 1)
        needed[after] = max(needed.get(after, 0), common + 1)
    return {
        i: i[: max(length, needed.get(i, 0))] if _GENERATED.match(i) else i
        for i in dict.fromkeys(ids)
    }
