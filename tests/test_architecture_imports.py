"""Lazy imports of panbench's own modules only where they keep something heavy out: an import of a panbench module
inside a function is one whose module brings, at its top (following the panbench modules it imports there), a heavy
package that the importing module's own top does not (:data:`HEAVY`: numpy for the modules that run before it, torch
and the model libraries for ``panbench --help`` and ``score``, pandas and matplotlib for the commands that draw
nothing; and :data:`HEAVY_OWN`). The command line follows the rule too, but for its dispatch: ``panbench.cli``
imports the one command's module that runs (and, on an error, what names the fix), and the option groups of
``panbench.cli.options`` import what their help texts read as a command's parser asks for them, so that ``score``
builds neither the dataset catalog nor eval's options. A command's module holds the light modules its parser and run
use at its top, and its ``run`` imports the heavy ones.
Every other import of a panbench module is at the module's top, where a reader looks for it."""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

from test_architecture import _is_type_checking_block, _targets, modules

#: third-party packages whose import a lazy import may keep out of a module
HEAVY = frozenset({"numpy", "torch", "torchvision", "mmcv", "mmdet", "mmengine", "transformers", "timm", "pandas",
                   "matplotlib", "scipy", "cv2", "PIL", "pycocotools", "submitit", "detectron2", "deflate", "pyspng",
                   "imagecorruptions", "torchmetrics", "lightning", "huggingface_hub", "fvcore", "panopticapi"})
#: panbench's own modules that cost an import as a heavy package does: the record's dataclass (about 100 fields,
#: milliseconds to build), which ``score`` without ``--name`` never loads
HEAVY_OWN = frozenset({"panbench.records.schema"})
#: modules whose lazy imports are their purpose: the command line's dispatch and its parsers' option groups; the
#: package root's API and the start-up hook's chain, which every interpreter of the environment runs (its ``.pth``
#: file: tests/ops/test_ops_hook.py), the stand-in for ``mmcv._ext`` it installs, and the console script, whose
#: Ctrl-C handler comes before the command line's imports
EXEMPT_MODULES = frozenset({"panbench.cli", "panbench.cli.options", "panbench", "panbench.ops", "panbench.ops.hook",
                            "panbench.ops.ext", "panbench.console"})


def _top_statements(tree: ast.Module) -> list[ast.stmt]:
    """The statements that run when the module is imported: its body, into ``try``/``if`` blocks (not
    ``if TYPE_CHECKING:``), not into functions or classes' methods."""
    out: list[ast.stmt] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        out.append(node)
        if isinstance(node, ast.If) and not _is_type_checking_block(node):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.ClassDef):
            todo += [s for s in node.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return out


@cache
def _parsed() -> dict[str, tuple[set[str], set[str], list[tuple[int, str]]]]:
    """Module -> (the panbench modules it imports at its top, the third-party packages it imports there, its
    lazy imports of panbench modules as (line, module))."""
    mods = modules()
    out = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        top = _top_statements(tree)
        top_ids = {id(n) for n in top}
        typing_only = {id(n) for node in ast.walk(tree) if _is_type_checking_block(node)
                       for stmt in node.body for n in ast.walk(stmt)}
        own, third, lazy = set(), set(), []
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in typing_only:
                continue
            targets = [t for t in _targets(node, name, path, mods) if t != name]
            if id(node) in top_ids:
                own.update(targets)
                if isinstance(node, ast.Import):
                    third.update(a.name.split(".")[0] for a in node.names)
                elif not node.level and node.module:
                    third.add(node.module.split(".")[0])
            else:
                lazy += [(node.lineno, t) for t in targets]
        out[name] = (own, third & HEAVY, lazy)
    return out


@cache
def heavy_at_import(module: str) -> frozenset[str]:
    """The heavy packages importing ``module`` brings (its top, and that of every panbench module imported there,
    with their packages' ``__init__``)."""
    parsed = _parsed()
    seen, todo, out = set(), [module], set()
    while todo:
        m = todo.pop()
        if m in seen or m not in parsed:
            continue
        seen.add(m)
        own, third, _ = parsed[m]
        out |= third | ({m} & HEAVY_OWN)
        parts = m.split(".")
        todo += list(own) + [".".join(parts[:k]) for k in range(2, len(parts))]
    return frozenset(out)


def needless_lazy_imports() -> dict[str, list[str]]:
    """Module -> its lazy imports of panbench modules that keep nothing heavy out (``line: module``)."""
    out: dict[str, list[str]] = defaultdict(list)
    for name, (_, _, lazy) in _parsed().items():
        if name in EXEMPT_MODULES:
            continue
        mine = heavy_at_import(name)
        for line, target in lazy:
            if not heavy_at_import(target) - mine:
                out[name].append(f"{line}: {target}")
    return dict(out)


def test_lazy_imports_of_panbench_modules_keep_something_heavy_out() -> None:
    found = needless_lazy_imports()
    assert not found, ("import these at the module's top (they keep no heavy package out of it): "
                       + "; ".join(f"{m} {', '.join(v)}" for m, v in sorted(found.items())))


def test_a_needless_lazy_import_is_found(tmp_path: Path, monkeypatch) -> None:
    """A lazy import of a module that brings nothing the importer lacks is reported; one that keeps numpy out of a
    standard-library module is not."""
    import test_architecture

    pkg = tmp_path / "panbench"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "light.py").write_text("import os\n")
    (pkg / "sub" / "heavy.py").write_text("import numpy\n")
    (pkg / "sub" / "user.py").write_text("def f():\n    from panbench.sub import light\n\n\n"
                                         "def g():\n    from panbench.sub import heavy\n")
    monkeypatch.setattr(test_architecture, "ROOT", pkg)
    _parsed.cache_clear()
    heavy_at_import.cache_clear()
    try:
        assert needless_lazy_imports() == {"panbench.sub.user": ["2: panbench.sub.light"]}
    finally:
        _parsed.cache_clear()
        heavy_at_import.cache_clear()


def test_the_command_line_brings_nothing_heavy_at_its_modules_tops() -> None:
    """``panbench --help`` imports every command's module: none brings a heavy package at its top."""
    heavy = {m: sorted(heavy_at_import(m)) for m in modules() if m == "panbench.cli" or m.startswith("panbench.cli.")}
    assert {m: h for m, h in heavy.items() if h} == {}


def test_a_name_a_package_imports_on_first_use_counts_as_its_module() -> None:
    """``from panbench.records import load_records`` runs ``panbench.records.io`` (the package's ``__getattr__``)."""
    mods = modules()
    node = ast.parse("from panbench.records import RunRecord, load_records, provenance").body[0]
    assert _targets(node, "panbench.cli.table", mods["panbench.cli.table"], mods) == [
        "panbench.records.schema", "panbench.records.io", "panbench.records.provenance"]
