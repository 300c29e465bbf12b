"""The package's shape (docs/architecture.md): no import circle among modules or packages, counting
imports inside functions; modules hold one concept each, and one over 600 lines says why in its docstring (a
paragraph that starts "Over 600 lines:"); no function of 50 lines or more."""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "panbench"
MAX_MODULE_LINES = 600  # beyond it, the module's docstring says why
MAX_FUNCTION_LINES = 49


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        name = ".".join(p.relative_to(ROOT.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The module that ``name`` (a module, or a name inside one) lives in."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, name: str, path: Path, mods: dict[str, Path]) -> list[str]:
    """The panbench modules one import statement reads."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1]) if node.level else ""
        mod = ".".join(p for p in (base, node.module or "") if p)
        lazy = _lazy_exports(mod, mods)
        names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else lazy.get(a.name, mod) for a in node.names]
    else:
        return []
    return [t for n in names if n.startswith("panbench") and (t := _resolve(n, mods))]


def _lazy_exports(package: str, mods: dict[str, Path]) -> dict[str, str]:
    """The names a package's ``__getattr__`` imports on first use (PEP 562), by the module each comes from: those of
    its ``if TYPE_CHECKING:`` imports (``from panbench.records import load_records`` runs ``panbench.records.io``)."""
    path = mods.get(package)
    return _package_lazy_exports(path) if path is not None and path.name == "__init__.py" else {}


@cache
def _package_lazy_exports(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    tree = ast.parse(path.read_text())
    if not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
        return {}
    return {a.asname or a.name: node.module for block in tree.body if _is_type_checking_block(block)
            for node in block.body if isinstance(node, ast.ImportFrom) and node.module for a in node.names}


def import_graph() -> dict[str, set[str]]:
    """Module -> the panbench modules it imports, at the top or inside functions (not the imports for type
    checkers alone, under ``if TYPE_CHECKING:``: they never run)."""
    mods = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for node in ast.walk(tree) if _is_type_checking_block(node)
                       for stmt in node.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) not in typing_only:
                graph[name].update(t for t in _targets(node, name, path, mods) if t != name)
    return graph


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                out.append(sorted([v, *comp]))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between panbench's sub-packages (``panbench.pq``, ``panbench.models``, ...)."""
    def pkg(m: str) -> str:
        return ".".join(m.split(".")[:2])

    out: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        out[pkg(a)].update(pkg(b) for b in targets if pkg(b) != pkg(a))
    return out


def test_no_import_circle_among_modules() -> None:
    assert cycles(import_graph()) == []


def test_no_import_circle_among_packages() -> None:
    assert cycles(package_graph(import_graph())) == []


def test_cycles_finds_a_circle_through_a_lazy_import() -> None:
    graph = {"panbench.a": {"panbench.b"}, "panbench.b": {"panbench.c"}, "panbench.c": {"panbench.a"}}
    assert cycles(graph) == [["panbench.a", "panbench.b", "panbench.c"]]
    tree = ast.parse("def f():\n    from panbench.pq import matching\n")
    mods = {"panbench.pq": Path("__init__.py"), "panbench.pq.matching": Path("matching.py"), "panbench.x": Path()}
    found = [t for n in ast.walk(tree) for t in _targets(n, "panbench.x", Path("x.py"), mods)]
    assert found == ["panbench.pq.matching"]


def test_a_module_over_600_lines_says_why() -> None:
    long = []
    for name, path in modules().items():
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        if len(text.splitlines()) > MAX_MODULE_LINES and "\nOver 600 lines:" not in "\n" + doc:
            long.append(f"{name}: {len(text.splitlines())} lines, and its docstring does not say why")
    assert long == []


def test_every_function_is_under_50_lines() -> None:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert long == []
