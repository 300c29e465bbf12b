"""docs/architecture.md's table "The packages and what each may import" holds for the code: every import of a
panbench package (at the top or inside a function) is one its row names.  A row's "may import" cell names
packages as `panbench.X` (those after "Never" are forbidden, not allowed); "everything above" allows the
packages of the rows above it, "every package" all."""

from __future__ import annotations

import re

from test_architecture import import_graph

from panbench import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"
ALWAYS = {"panbench", "panbench.resources"}  # the package root (__version__, REPO_ROOT); where the data is
# "Outside the packages"
TOP_LEVEL = {"panbench.errors", "panbench.downloads", "panbench.resources", "panbench.analyses"}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def allowed_imports(text: str) -> dict[str, set[str]]:
    """Package -> the panbench packages it may import, read from the table of ``text``."""
    rows = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("| package | holds | may import |"):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            break
        if in_table and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((cells[0].strip("`"), cells[-1]))
    out: dict[str, set[str]] = {}
    names = [name for name, _ in rows]
    for k, (name, cell) in enumerate(rows):
        allowed = set(re.findall(r"`(panbench(?:\.\w+)?)", cell.split("Never")[0])) | ALWAYS
        if "everything above" in cell:
            allowed |= set(names[:k]) | TOP_LEVEL
        if "every package" in cell:
            allowed |= set(names) | TOP_LEVEL
        out[name] = allowed
    return out


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
    allowed = allowed_imports(DOC.read_text())
    packages = {_package(m) for m in import_graph() if m.count(".") >= 1}
    top_level = {p for p in packages if (REPO_ROOT / "panbench" / f"{p.split('.')[1]}.py").is_file()}
    assert sorted(packages - top_level - set(allowed)) == []


def test_imports_follow_the_may_import_table() -> None:
    assert violations(import_graph(), allowed_imports(DOC.read_text())) == []


def test_a_crossing_the_table_does_not_name_is_found() -> None:
    doc = ("| package | holds | may import |\n| --- | --- | --- |\n"
           "| `panbench.pq` | PQ | numpy; `panbench.errors` |\n"
           "| `panbench.models` | models | `panbench.pq`. Never `panbench.cli` |\n"
           "| `panbench.cli` | the command | every package |\n")
    allowed = allowed_imports(doc)
    graph = {"panbench.pq.score": {"panbench.errors", "panbench.models.registry"},
             "panbench.models.load": {"panbench.pq.score", "panbench.cli.eval"},
             "panbench.cli.eval": {"panbench.pq.score"}}
    assert violations(graph, allowed) == ["panbench.models.load -> panbench.cli.eval",
                                          "panbench.pq.score -> panbench.models.registry"]


def test_no_panbench_module_imports_the_integrations() -> None:
    """panbench.integrations is imported by users (a config's custom_imports) and tests only: the command line
    and the library never load mmengine's evaluator through it."""
    importers = sorted(a for a, targets in import_graph().items() if not a.startswith("panbench.integrations")
                       and any(_package(b) == "panbench.integrations" for b in targets))
    assert importers == []
