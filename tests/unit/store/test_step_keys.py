"""`StepKeys` and member keys: a list of step keys that keeps fan-out members as ranges."""

from __future__ import annotations

import pickle
import sys

import pytest

from arvel_flow.store.step_keys import StepKeys, member_key, split_member_key


@pytest.mark.parametrize(
    ("key", "split"),
    [
        ("root.0[0]", ("root.0", 0)),
        ("a[b][12]", ("a[b]", 12)),
        ("root", None),
        ("root[]", None),
        ("root[01]", None),
        ("root[-1]", None),
        ("root[²]", None),
    ],
)
def test_a_member_key_splits_into_its_fan_out_and_index(
    key: str, split: tuple[str, int] | None
) -> None:
    # Given a step key / When split / Then members give (fan-out, index), others None
    assert split_member_key(key) == split
    if split is not None:
        assert member_key(*split) == key


def test_step_keys_read_like_the_tuple_they_stand_for() -> None:
    # Given keys with runs of consecutive members among other steps
    keys = ["root.0", "f[0]", "f[1]", "f[2]", "g[5]", "f[3]", "root.then"]
    # When kept as StepKeys
    compact = StepKeys(keys)
    # Then it is the same sequence: length, order, indexing, membership, equality
    assert len(compact) == 7
    assert list(compact) == keys
    assert compact == tuple(keys)
    assert tuple(keys) == compact
    assert compact == keys
    assert compact[1] == "f[0]"
    assert compact[-1] == "root.then"
    assert compact[4] == "g[5]"
    assert compact[1:3] == ("f[0]", "f[1]")
    assert "f[2]" in compact
    assert "f[4]" not in compact
    assert "root.then" in compact
    assert StepKeys() == ()
    assert compact != keys[:-1]
    assert pickle.loads(pickle.dumps(compact)) == compact
    with pytest.raises(IndexError):
        compact[7]


def test_a_million_consecutive_members_take_no_key_strings() -> None:
    # Given a million members appended in index order
    compact = StepKeys()
    for index in range(1_000_000):
        compact.append_member("root.0", index)
    # Then they are one range: a few hundred bytes, not a million strings
    assert len(compact) == 1_000_000
    assert compact[999_999] == "root.0[999999]"
    assert sys.getsizeof(compact._parts) < 1_000
