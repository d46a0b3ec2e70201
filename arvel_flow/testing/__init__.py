"""Test tools for code that dispatches jobs and for whole pipelines.

- `FakeQueue`: a queue that records what is dispatched instead of running it (or runs
  the job classes given in ``run=``), with assertions that say what was dispatched
  instead: ``assert_dispatched``, ``assert_chained``, ``assert_batched``, ...
- `run_pipeline`: run a pipeline file (or a loaded spec) in this process and get its
  `BatchResult`.
- `simulate` (and ``run_pipeline(fail=...)``): a run's real orchestration with
  failures injected by fault specs (``"import@1,2"``, ``"digests[*]:timeout"``), on
  a virtual clock, with no job code run; the `Simulation` holds its timeline.
- `FakeClock`: time that moves only when someone sleeps, so backoffs cost nothing.
- The pytest plugin (`arvel_flow.testing.plugin`, loaded by pytest on its own once
  arvel-flow is installed) gives the fixtures ``fake_queue`` and ``sync_queue``.

Names are imported on first use: pytest imports this package for every run, in
projects that use it or not, and that must stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arvel_flow.lazy import lazy_exports

if TYPE_CHECKING:
    from arvel_flow.testing.clock import FakeClock as FakeClock
    from arvel_flow.testing.fake import FakeQueue as FakeQueue
    from arvel_flow.testing.faults import Fault as Fault
    from arvel_flow.testing.faults import parse_fault as parse_fault
    from arvel_flow.testing.pipelines import run_pipeline as run_pipeline
    from arvel_flow.testing.records import Dispatched as Dispatched
    from arvel_flow.testing.records import FlowRecord as FlowRecord
    from arvel_flow.testing.simulation import SimulatedFailure as SimulatedFailure
    from arvel_flow.testing.simulation import Simulation as Simulation
    from arvel_flow.testing.simulation import simulate as simulate

_EXPORTS: dict[str, str] = {
    "Dispatched": "arvel_flow.testing.records",
    "FakeClock": "arvel_flow.testing.clock",
    "FakeQueue": "arvel_flow.testing.fake",
    "Fault": "arvel_flow.testing.faults",
    "FlowRecord": "arvel_flow.testing.records",
    "SimulatedFailure": "arvel_flow.testing.simulation",
    "Simulation": "arvel_flow.testing.simulation",
    "parse_fault": "arvel_flow.testing.faults",
    "run_pipeline": "arvel_flow.testing.pipelines",
    "simulate": "arvel_flow.testing.simulation",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
