"""The curated public API: sorted, complete, and every name importable."""

from __future__ import annotations

import importlib
import subprocess
import sys

import arvel_flow


def test_all_is_sorted_and_unique() -> None:
    # Given the package's public names
    names = arvel_flow.__all__
    # Then they are sorted, without repeats, and each has a module to come from
    assert names == sorted(set(names))
    assert set(names) == set(arvel_flow._EXPORTS)


def test_every_public_name_resolves_to_an_object_of_that_name() -> None:
    for name in arvel_flow.__all__:
        # When each name is looked up on the package
        value = getattr(arvel_flow, name)
        # Then it is the object of that name in its module
        assert getattr(value, "__name__", name) == name


def test_spec_names_live_in_the_modules_the_spec_gives() -> None:
    # SPEC §1 fixes where each name lives.
    table = {
        "arvel_flow.queue.job": ["Job"],
        "arvel_flow.queue.contracts": ["QueueContract"],
        "arvel_flow.queue.drivers": ["SyncQueue", "NullQueue", "TaskiqQueue"],
        "arvel_flow.queue.runner": ["JobRunner"],
        "arvel_flow.queue.batch": ["Batch", "BatchResult"],
        "arvel_flow.queue.chain": ["Chain"],
        "arvel_flow.queue.middleware": [
            "JobMiddleware",
            "RateLimited",
            "WithoutOverlapping",
            "UniqueJobGuard",
        ],
        "arvel_flow.lock": ["LockContract", "MemoryLock", "RedisLock"],
        "arvel_flow.settings": ["QueueSettings"],
        "arvel_flow": ["load_pipeline", "compile_pipeline"],
    }
    for module, names in table.items():
        loaded = importlib.import_module(module)
        for name in names:
            assert hasattr(loaded, name), f"{module}.{name}"


def test_importing_the_package_stays_light() -> None:
    # Given a fresh interpreter
    code = "import sys, arvel_flow; print('taskiq' in sys.modules, 'pydantic' in sys.modules)"
    # When only the package is imported
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # Then neither taskiq nor pydantic has been imported yet
    assert output.stdout.split() == ["False", "False"]
