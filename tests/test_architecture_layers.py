"""The layer rules, as code: every import of a panbench package (at the top or inside a function) is one that
:data:`MAY_IMPORT` allows its package.  docs/architecture.md's table "The packages and what each may import"
says the same in words, with why."""

from __future__ import annotations

from test_architecture import import_graph

from panbench.package import REPO_ROOT

# the package's own facts (__version__, REPO_ROOT: the leaf under the root, which only re-exports the public API);
# where the data is; the phase lines of a command that waits; the lock between processes that waits with a limit;
# the garbage collector paused around a block; Ctrl-C held off
ALWAYS = {"panbench.package", "panbench.resources", "panbench.announce", "panbench.locks", "panbench.collector",
          "panbench.interrupts"}
_LIBRARY = {"panbench.pq", "panbench.analysis", "panbench.errors"}

#: package -> the panbench packages it may import (besides :data:`ALWAYS`), from the bottom up
MAY_IMPORT: dict[str, set[str]] = {
    "panbench.pq": {"panbench.errors"},
    "panbench.records": {"panbench.analyses", "panbench.data", "panbench.errors", "panbench.ops", "panbench.pq"},
    "panbench.analysis": {"panbench.analyses", "panbench.errors", "panbench.pq", "panbench.records"},
    "panbench.data": {"panbench.downloads", "panbench.errors", "panbench.pq"},
    "panbench.ops": {"panbench.errors", "panbench.pq"},
    "panbench.models": {"panbench.analysis", "panbench.downloads", "panbench.errors", "panbench.ops", "panbench.pq"},
    "panbench.robustness": {"panbench.errors", "panbench.records"},
    # the evaluator contract, its one composite and score's driver: the PQ core and the analyses, nothing above
    "panbench.evaluators": _LIBRARY,
    "panbench.evaluation": {"panbench.analyses", "panbench.analysis", "panbench.data", "panbench.downloads",
                            "panbench.errors", "panbench.evaluators", "panbench.models", "panbench.ops", "panbench.pq",
                            "panbench.records", "panbench.robustness"},
    # the library's streaming metrics: the PQ core, the analyses' pure functions, the evaluators' composite and the
    # errors, nothing of the application (evaluation, models, reporting, cli)
    "panbench.metrics": _LIBRARY | {"panbench.evaluators"},
    "panbench.integrations": {"panbench.errors", "panbench.metrics", "panbench.pq"},
    "panbench.reporting": {"panbench.analyses", "panbench.analysis", "panbench.data", "panbench.errors",
                           "panbench.models", "panbench.pq", "panbench.records", "panbench.robustness"},
    "panbench.cluster": {"panbench.errors", "panbench.records"},
    "panbench.cli": {"panbench.analyses", "panbench.analysis", "panbench.cli", "panbench.cluster", "panbench.data",
                     "panbench.downloads", "panbench.errors", "panbench.evaluation", "panbench.evaluators",
                     "panbench.integrations",
                     "panbench.metrics", "panbench.models", "panbench.ops", "panbench.pq", "panbench.records",
                     "panbench.reporting", "panbench.robustness"},
}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def allowed() -> dict[str, set[str]]:
    return {p: deps | ALWAYS for p, deps in MAY_IMPORT.items()}


def violations(graph: dict[str, set[str]], allowed: dict[str, set[str]]) -> list[str]:
    """``module -> module`` imports that cross into a package the importer's row does not name."""
    bad = []
    for a, targets in sorted(graph.items()):
        pa = _package(a)
        if pa not in allowed:
            continue
        for b in sorted(targets):
            pb = _package(b)
            if pb != pa and pb not in allowed[pa]:
                bad.append(f"{a} -> {b}")
    return bad


def test_every_package_has_a_row() -> None:
    packages = {_package(m) for m in import_graph() if m.count(".") >= 1}
    top_level = {p for p in packages if (REPO_ROOT / "panbench" / f"{p.split('.')[1]}.py").is_file()}
    assert sorted(packages - top_level - set(MAY_IMPORT)) == []


def test_imports_follow_the_layer_rules() -> None:
    assert violations(import_graph(), allowed()) == []


def test_the_library_imports_nothing_of_the_application() -> None:
    graph = import_graph()
    assert sorted(f"{a} -> {b}" for a, targets in graph.items() if _package(a) == "panbench.metrics"
                  for b in targets
                  if _package(b) not in _LIBRARY | ALWAYS | {"panbench.metrics", "panbench.evaluators"}) == []


def test_a_crossing_the_rules_do_not_allow_is_found() -> None:
    rules = {"panbench.pq": {"panbench.errors"}, "panbench.models": {"panbench.pq"},
             "panbench.cli": {"panbench.pq", "panbench.models"}}
    graph = {"panbench.pq.score": {"panbench.errors", "panbench.models.registry"},
             "panbench.models.load": {"panbench.pq.score", "panbench.cli.eval"},
             "panbench.cli.eval": {"panbench.pq.score"}}
    assert violations(graph, rules) == ["panbench.models.load -> panbench.cli.eval",
                                        "panbench.pq.score -> panbench.models.registry"]


def test_no_panbench_module_imports_the_integrations() -> None:
    """panbench.integrations is imported by users (a config's custom_imports) and tests only: the command line
    and the library never load mmengine's evaluator through it."""
    importers = sorted(a for a, targets in import_graph().items() if not a.startswith("panbench.integrations")
                       and any(_package(b) == "panbench.integrations" for b in targets))
    assert importers == []
