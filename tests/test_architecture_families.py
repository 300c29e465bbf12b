"""The model families own their frameworks: outside ``panbench/models/`` no module imports MMDetection's
model code (``mmdet.models``: heads, detectors) or transformers' model classes, at the top or inside a
function, so that the evaluation, the analyses and the reports see a model only through
``panbench.models.protocol.PanopticModel``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "panbench"
FAMILIES = PACKAGE / "models"


def framework_model_imports(tree: ast.AST) -> list[str]:
    """The imports in ``tree`` of mmdet's model code or of transformers (its model classes live there)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [n for n in names if n == "mmdet.models" or n.startswith("mmdet.models.")
                  or n == "transformers" or n.startswith("transformers.")]
    return sorted(set(found))


def violations(root: Path = PACKAGE) -> dict[str, list[str]]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        if FAMILIES in path.parents:
            continue
        found = framework_model_imports(ast.parse(path.read_text(), filename=str(path)))
        if found:
            out[str(path.relative_to(root.parent))] = found
    return out


def test_no_module_outside_a_family_imports_mmdet_heads_or_transformers_models() -> None:
    assert violations() == {}


def test_the_check_sees_imports_at_the_top_and_inside_functions() -> None:
    src = "import mmdet.models\ndef f():\n    from transformers import Mask2FormerModel\n    import mmdet.apis\n"
    assert framework_model_imports(ast.parse(src)) == ["mmdet.models", "transformers",
                                                       "transformers.Mask2FormerModel"]
