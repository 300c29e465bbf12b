"""One name per concept: a public top-level name (function, class or constant) of the package is defined in one
module only, so that ``render``, ``summarize`` or ``GROUPS`` never mean two things (docs/architecture.md,
"Glossary").  The exceptions are names that are the same concept in several modules on purpose: the contract a
command module implements, listed in :data:`SAME_CONCEPT` with the reason.  (A model family's contract is the
methods of its ``Family`` subclass, not names of its modules.)"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "panbench"

#: Names defined in several modules as one concept, each with the modules it may be defined in.
SAME_CONCEPT: dict[str, tuple[str, ...]] = {
    # every command module of panbench.cli has add_parser(sub, common) and run(args) (panbench/cli/__init__.py)
    "add_parser": ("cli/",),
    "run": ("cli/",),
    # a script's entry point: the command line and MMDetection's reference test loop run as `python -m`
    "main": ("cli/__init__.py",),
    # a dataset module's `panbench data NAME` (its row in data/catalog.py DATASETS names it)
    "data_command": ("data/",),
    # ops/ext.py stands in for mmcv._ext under mmcv's own names; ops/kernels.py implements them
    "nms": ("ops/ext.py", "ops/kernels.py"),
    "roi_align_forward": ("ops/ext.py", "ops/kernels.py"),
}

def top_level_names(source: str) -> set[str]:
    """The public names a module defines at its top level: functions, classes, assigned constants."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def defined_twice(root: Path = PACKAGE, allowed: dict[str, tuple[str, ...]] = SAME_CONCEPT) -> dict[str, list[str]]:
    """Each public name defined in more than one module under ``root`` (paths relative to it), but for the
    allowed names in their allowed modules."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for name in top_level_names(path.read_text()):
            where[name].append(rel)
    out = {}
    for name, modules in where.items():
        rest = [m for m in modules if not any(m.startswith(a) for a in allowed.get(name, ()))]
        if len(modules) > 1 and rest:
            out[name] = modules
    return out


def test_every_public_name_is_defined_in_one_module() -> None:
    found = defined_twice()
    assert not found, f"one name per concept: give each a name saying what it is: {found}"


def test_the_rule_finds_a_name_defined_twice(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("GROUPS = ('All', 'Things')\ndef render(x):\n    return x\n_private = 1\n")
    (tmp_path / "b.py").write_text("from a import render\nGROUPS: dict = {}\nclass render:\n    pass\n_private = 2\n")
    assert defined_twice(tmp_path, {}) == {"GROUPS": ["a.py", "b.py"], "render": ["a.py", "b.py"]}
    assert defined_twice(tmp_path, {"render": ("a.py", "b.py")}) == {"GROUPS": ["a.py", "b.py"]}


def test_an_allowed_name_outside_its_modules_is_found(tmp_path: Path) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "eval.py").write_text("def run(args):\n    return 0\n")
    (tmp_path / "cli" / "score.py").write_text("def run(args):\n    return 0\n")
    assert defined_twice(tmp_path, SAME_CONCEPT) == {}
    (tmp_path / "reference.py").write_text("def run(models):\n    return []\n")
    assert defined_twice(tmp_path, SAME_CONCEPT) == {"run": ["cli/eval.py", "cli/score.py", "reference.py"]}
