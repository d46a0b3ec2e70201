"""The import graph of `arvel_flow`: no cycles, and imports flow one way, up the layers.

The graph is read from the source with `ast`, as Python would run it: every
``import`` counts, at module level or inside a function (a function-level import
that dodges a cycle is still the cycle), except under ``if TYPE_CHECKING:``, which
never runs. Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, so that
package is an edge too (unless it is a package of the importing module itself).

Print the graph between layers with ``python -m tests.test_layers``.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "arvel_flow"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Lowest first. A module may import its own layer and the layers below it. The
    # longest matching prefix decides a module's layer.
    # outage: the one retry policy for a broker or store that is away (errors only).
    # lazy: the packages' lazy re-exports (`lazy_exports`).
    # batching: what tasks submit in one loop turn, handled together (round trips).
    (
        "foundation",
        (
            "arvel_flow.errors",
            "arvel_flow.scalars",
            "arvel_flow.outage",
            "arvel_flow.durations",
            "arvel_flow.lazy",
            "arvel_flow.batching",
        ),
    ),
    ("secrets", ("arvel_flow.secrets", "arvel_flow.envfile")),  # envfile: .env into os.environ
    ("pipeline", ("arvel_flow.pipeline", "arvel_flow.job_settings")),  # the file format: no runtime
    ("settings", ("arvel_flow.settings",)),
    (
        "storage",
        ("arvel_flow.sqlite_db", "arvel_flow.redis_support", "arvel_flow.lock", "arvel_flow.store"),
    ),
    ("runtime", ("arvel_flow.queue", "arvel_flow.explain")),
    ("worker", ("arvel_flow.worker",)),  # the broker-agnostic worker
    ("brokers", ("arvel_flow.brokers",)),  # one package per broker: transport + consumer
    # The SPEC §1 drivers: a queue front end composed with a transport, a broker's too.
    ("drivers", ("arvel_flow.queue.drivers",)),
    # wiring turns settings into a queue, store or worker: above everything it builds.
    ("wiring", ("arvel_flow.wiring",)),
    ("compiler", ("arvel_flow.compiler",)),  # strict checks that import job classes
    # launch: the front door (start / run / resume a pipeline file); the CLI's run is a shell.
    ("launch", ("arvel_flow.launch",)),
    # testing: FakeQueue, run_pipeline (through the front door), the pytest plugin, and the
    # failure simulation (faults, simulation: the real orchestration on a virtual clock).
    ("testing", ("arvel_flow.testing",)),
    # scheduler: triggers, the tick claim and the loop that starts runs through launch.
    ("scheduler", ("arvel_flow.scheduler",)),
    # metrics: Prometheus figures from the event bus, served by the commands.
    ("metrics", ("arvel_flow.metrics",)),
    # tracing: OpenTelemetry spans, installed at the queue's seam (queue/spans.py).
    ("tracing", ("arvel_flow.tracing",)),
    # monitor: one snapshot of a deployment (workers, queues, runs, failures) for ``top``.
    ("monitor", ("arvel_flow.monitor",)),
    ("api", ("arvel_flow",)),  # the package's lazy re-exports
    ("cli", ("arvel_flow.cli",)),  # nothing imports it
)

KNOWN_CYCLES: tuple[tuple[str, frozenset[str]], ...] = ()
"""Cycles left for a later redesign, each with the step that removes it; any other
cycle, or one of these growing, fails. Remove an entry once its cycle is gone."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One import: ``source`` runs ``target`` (at ``line`` of ``source``'s file)."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({_file_of(self.source)}:{self.line})"


def _file_of(module: str) -> str:
    path = ROOT.parent / Path(*module.split("."))
    package = path / "__init__.py"
    return str((package if package.is_file() else path.with_suffix(".py")).relative_to(ROOT.parent))


def module_names() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]))
        else:
            yield from _imports(node)


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:length]) for length in range(1, len(parts))]


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement of ``module`` runs."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    # ``from pkg import name`` runs pkg, and pkg.name too when that is a module.
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


@functools.cache
def import_graph() -> tuple[Edge, ...]:
    """Every edge between modules of `arvel_flow`, implicit package imports included."""
    modules = module_names()
    edges: dict[tuple[str, str], Edge] = {}
    for module, path in modules.items():
        own = {module, *_ancestors(module)}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                for target in (name, *_ancestors(name)):
                    if target in modules and target not in own:
                        edges.setdefault((module, target), Edge(module, target, node.lineno))
    return tuple(edges.values())


def _placement(module: str) -> tuple[int, str]:
    """The index in `LAYERS` and the prefix there that names ``module`` (the longest)."""
    matches = [
        (len(prefix), index, prefix)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    if not matches:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    _, index, prefix = max(matches)
    return index, prefix


def layer_of(module: str) -> int:
    """The index in `LAYERS` of ``module``'s layer."""
    return _placement(module)[0]


def unit_of(module: str) -> str:
    """The `LAYERS` prefix that places ``module``: the unit of the printed graph."""
    return _placement(module)[1]


def strongly_connected(edges: tuple[Edge, ...]) -> list[set[str]]:
    """The groups of modules that import each other, directly or not (Tarjan)."""
    successors: dict[str, list[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, []).append(edge.target)
        successors.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in successors[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(successors)))
    try:
        for node in sorted(successors):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def a_cycle(group: set[str], edges: tuple[Edge, ...]) -> list[Edge]:
    """One cycle through the group, as the edges to follow (shortest from its first module)."""
    inside = {
        (edge.source, edge.target): edge for edge in edges if {edge.source, edge.target} <= group
    }
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for (source, target), edge in sorted(inside.items()):
                if source != node:
                    continue
                if target == start:
                    return [*paths[node], edge]
                if target not in paths:
                    paths[target] = [*paths[node], edge]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {sorted(group)}")


def _known(group: set[str]) -> bool:
    return any(group <= members for _, members in KNOWN_CYCLES)


def test_every_module_has_a_layer() -> None:
    # Given every module of the package, When each is placed, Then none is left out
    unplaced = []
    for module in module_names():
        try:
            layer_of(module)
        except LookupError as error:
            unplaced.append(str(error))
    assert not unplaced, "\n".join(unplaced)


def test_imports_never_go_up_a_layer() -> None:
    # Given the import graph, When each edge is compared with the layer table
    upward = [edge for edge in import_graph() if layer_of(edge.target) > layer_of(edge.source)]
    # Then no module imports a layer above its own
    lines = [
        f"{edge}   [{LAYERS[layer_of(edge.source)][0]} imports {LAYERS[layer_of(edge.target)][0]}]"
        for edge in sorted(upward, key=str)
    ]
    assert not upward, "imports up the layers:\n" + "\n".join(lines)


def test_nothing_imports_the_cli() -> None:
    edges = [
        edge
        for edge in import_graph()
        if unit_of(edge.target) == "arvel_flow.cli" and unit_of(edge.source) != "arvel_flow.cli"
    ]
    assert not edges, "\n".join(map(str, edges))


def test_the_file_format_imports_nothing_of_the_runtime() -> None:
    # STYLE: pipeline/ depends on nothing but errors (and secrets, scalars), and on the
    # declaration of job settings it derives its keys from (itself free of the runtime).
    allowed = {
        "arvel_flow.errors",
        "arvel_flow.job_settings",
        "arvel_flow.scalars",
        "arvel_flow.secrets",
        "arvel_flow.pipeline",
    }
    edges = [
        edge
        for edge in import_graph()
        if unit_of(edge.source) == "arvel_flow.pipeline" and unit_of(edge.target) not in allowed
    ]
    assert not edges, "\n".join(map(str, edges))


def test_no_new_import_cycles() -> None:
    # Given the import graph, When its cycles are found
    edges = import_graph()
    new = [group for group in strongly_connected(edges) if not _known(group)]
    # Then each is one of the known cycles a later step removes, or part of one
    report = [
        "a cycle of "
        + ", ".join(sorted(group))
        + ":\n  "
        + "\n  ".join(map(str, a_cycle(group, edges)))
        for group in new
    ]
    assert not new, "\n".join(report)


def test_known_cycles_are_still_there() -> None:
    # A known cycle that is gone must leave the list, so that it cannot come back unseen.
    groups = strongly_connected(import_graph())
    gone = [
        reason for reason, members in KNOWN_CYCLES if not any(group <= members for group in groups)
    ]
    assert not gone, "no longer cycles; remove from KNOWN_CYCLES:\n" + "\n".join(gone)


def format_layer_graph() -> str:
    """The graph between the units of `LAYERS`, by layer, for the eye."""
    targets: dict[str, set[str]] = {}
    for edge in import_graph():
        source, target = unit_of(edge.source), unit_of(edge.target)
        if source != target:
            targets.setdefault(source, set()).add(target)
    lines = []
    for name, prefixes in reversed(LAYERS):
        lines.append(f"[{name}]")
        for prefix in prefixes:
            found = sorted(targets.get(prefix, ()), key=lambda unit: (-layer_of(unit), unit))
            lines.append(f"  {prefix} -> {', '.join(found) if found else '(nothing)'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_layer_graph())
    for reason, members in KNOWN_CYCLES:
        print(f"known cycle ({reason}):\n  " + ", ".join(sorted(members)))
