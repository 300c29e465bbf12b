"""The evaluator contract says what it means: nothing in ``panbench/evaluators/`` probes a member (``getattr`` or
``hasattr``) for an ability, which a member declares by its class (panbench.evaluators.contract's abilities; its
optional ``name``, ``version`` and ``needs`` may be read so), and the composite ``Evaluators`` stays small (its
methods, properties included, at most :data:`MAX_METHODS`)."""

from __future__ import annotations

import ast

from panbench.package import REPO_ROOT

EVALUATORS = REPO_ROOT / "panbench" / "evaluators"
#: the abilities' names: each is a method or a declaration of an ability's class, never probed for
ABILITY_NAMES = {"uses", "provides", "add_scored", "add_state_sums", "codes", "built_in", "share_is_result", "fresh",
                 "instance_results", "columns", "evaluate_with", "merge_at", "add_results", "counted_rules"}
MAX_METHODS = 12


def probes(source: str) -> list[str]:
    """Each ``getattr(x, "name", ...)`` or ``hasattr(x, "name")`` of an ability's name in ``source``, as
    ``line: name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in ABILITY_NAMES):
            found.append(f"{node.lineno}: {node.args[1].value}")
    return found


def methods(source: str, cls: str) -> list[str]:
    """The names of the functions defined in class ``cls`` of ``source`` (properties and class methods too)."""
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == cls)
    return [n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_nothing_in_the_evaluators_probes_a_member_for_an_ability() -> None:
    found = {p.name: probes(p.read_text()) for p in sorted(EVALUATORS.glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_probe_check_finds_a_getattr_or_hasattr_of_an_ability() -> None:
    src = "a = getattr(m, 'uses', None)\nb = hasattr(m, 'add_scored')\nc = getattr(m, 'name', None)\n"
    assert probes(src) == ["1: uses", "2: add_scored"]


def test_the_composite_has_at_most_twelve_methods() -> None:
    found = methods((EVALUATORS / "composite.py").read_text(), "Evaluators")
    assert len(found) <= MAX_METHODS, found


def test_the_method_count_sees_properties_and_class_methods() -> None:
    src = "class Evaluators:\n    @property\n    def a(self): ...\n    @classmethod\n    def b(cls): ...\n" \
          "    def c(self): ...\n"
    assert methods(src, "Evaluators") == ["a", "b", "c"]
