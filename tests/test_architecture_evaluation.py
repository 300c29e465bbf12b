"""The floors of ``panbench.evaluation``, as code (:data:`FLOORS`; its ``__init__.py`` docstring says them in words):
a module imports evaluation modules of its own floor or of the floors below, never above, and every module of the
package is on a floor."""

from __future__ import annotations

from test_architecture import import_graph

PACKAGE = "panbench.evaluation"

#: module or subpackage of panbench.evaluation -> its floor, from the bottom up
FLOORS: dict[str, int] = {
    "options": 1, "timings": 1, "context": 1, "progress": 1,  # the run's vocabulary, its progress bar
    "runtime": 2,  # where it executes: device, ranks, memory
    "storage": 3,  # what it writes beside the record: the resume cache, the saved predictions
    "loading": 4,  # the loaded model
    "inference": 5,  # the images through the model into the run's evaluators (panbench.evaluators)
    "run": 6, "record_fields": 6, "flops": 6, "speed": 6,  # the run and what it records
}


def _floor(module: str, table: dict[str, int]) -> int | None:
    parts = module.split(".")
    return table.get(parts[2]) if len(parts) > 2 and module.startswith(PACKAGE + ".") else None


def upward_imports(graph: dict[str, set[str]], table: dict[str, int]) -> list[str]:
    """``a -> b`` imports within the evaluation where ``b``'s floor is above ``a``'s."""
    bad = []
    for a, targets in sorted(graph.items()):
        fa = _floor(a, table)
        for b in sorted(targets):
            fb = _floor(b, table)
            if fa is not None and fb is not None and fb > fa:
                bad.append(f"{a} -> {b}")
    return bad


def test_every_evaluation_module_is_on_a_floor() -> None:
    modules = {m for m in import_graph() if m.startswith(PACKAGE + ".")}
    assert sorted(m for m in modules if _floor(m, FLOORS) is None) == []


def test_no_evaluation_module_imports_a_floor_above_its_own() -> None:
    assert upward_imports(import_graph(), FLOORS) == []


def test_an_import_up_a_floor_is_found() -> None:
    table = {"options": 1, "timings": 1, "runtime": 2, "run": 3}
    graph = {"panbench.evaluation.runtime.memory": {"panbench.evaluation.timings", "panbench.evaluation.run"},
             "panbench.evaluation.run": {"panbench.evaluation.runtime.memory", "panbench.pq.sums"}}
    assert upward_imports(graph, table) == ["panbench.evaluation.runtime.memory -> panbench.evaluation.run"]
