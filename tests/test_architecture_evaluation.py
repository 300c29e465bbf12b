"""The floors of ``panbench.evaluation`` (its ``__init__.py`` docstring, a numbered list naming each module or
subpackage as ``:mod:`.name```) hold for the code: a module imports evaluation modules of its own floor or of the
floors below, never above, and every module of the package is on a floor."""

from __future__ import annotations

import re

from test_architecture import import_graph

import panbench.evaluation

PACKAGE = "panbench.evaluation"


def floors(doc: str) -> dict[str, int]:
    """Module or subpackage name (``run``, ``runtime``) -> its floor, read from the numbered list of ``doc``."""
    out: dict[str, int] = {}
    floor = 0
    for line in doc.splitlines():
        if m := re.match(r"\s*(\d+)\. ", line):
            floor = int(m.group(1))
        if floor:
            for name in re.findall(r":mod:`\.(\w+)`", line):
                out.setdefault(name, floor)
    return out


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
    table = floors(panbench.evaluation.__doc__ or "")
    modules = {m for m in import_graph() if m.startswith(PACKAGE + ".")}
    assert sorted(m for m in modules if _floor(m, table) is None) == []


def test_no_evaluation_module_imports_a_floor_above_its_own() -> None:
    assert upward_imports(import_graph(), floors(panbench.evaluation.__doc__ or "")) == []


def test_an_import_up_a_floor_is_found() -> None:
    doc = "Floors.\n\n1. :mod:`.options` and\n   :mod:`.timings`.\n2. :mod:`.runtime`: devices.\n3. :mod:`.run`.\n"
    table = floors(doc)
    assert table == {"options": 1, "timings": 1, "runtime": 2, "run": 3}
    graph = {"panbench.evaluation.runtime.memory": {"panbench.evaluation.timings", "panbench.evaluation.run"},
             "panbench.evaluation.run": {"panbench.evaluation.runtime.memory", "panbench.pq.sums"}}
    assert upward_imports(graph, table) == ["panbench.evaluation.runtime.memory -> panbench.evaluation.run"]
