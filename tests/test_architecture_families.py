"""The model families own their frameworks: outside a family's subpackage (``panbench/models/mmdet/``,
``panbench/models/hf/``: where the classes of ``panbench.models.families.FAMILIES`` are defined) no module imports
MMDetection's model code (``mmdet.models``: heads, detectors) or transformers (its model classes live there), at the
top or inside a function, and none touches an mmdet fusion head (``panoptic_fusion_head``) or transformers' outputs
(``class_queries_logits``, ``masks_queries_logits``, ``post_process_panoptic_segmentation``), as an attribute or a
``getattr`` string, and none reads a model input's image tensor by its framework's key (mmdet's ``inputs``,
transformers' ``pixel_values``: ``x["inputs"]``, ``x.get("pixel_values")``, ``"inputs" in x``; the family's
``input_hw`` says its size), so that the evaluation, the analyses and the reports see a model only through
``panbench.models.protocol.PanopticModel``."""

from __future__ import annotations

import ast
from pathlib import Path

from panbench.models.families import FAMILIES

PACKAGE = Path(__file__).resolve().parents[1] / "panbench"
FRAMEWORK_NAMES = {"panoptic_fusion_head", "class_queries_logits", "masks_queries_logits",
                   "post_process_panoptic_segmentation"}
INPUT_KEYS = {"inputs", "pixel_values"}  # the image tensor of a model input: mmdet's, transformers'


def family_dirs(root: Path = PACKAGE) -> list[Path]:
    """The subpackage of each family under ``root``: the package its class is defined in."""
    return [root.joinpath(*type(f).__module__.split(".")[1:]) for f in FAMILIES.values()]


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


def framework_attributes(tree: ast.AST) -> list[str]:
    """The mmdet head and transformers output names ``tree`` reads: attributes, and strings that are exactly one
    of them (``getattr(model, "panoptic_fusion_head")``, a config key)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FRAMEWORK_NAMES:
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and node.value in FRAMEWORK_NAMES:
            found.add(str(node.value))
    return sorted(found)


def input_key_reads(tree: ast.AST) -> list[str]:
    """The framework input keys ``tree`` reads from a model input: a subscript, ``.get``/``.pop``, ``in``."""
    found = set()

    def key(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and node.value in INPUT_KEYS:
            found.add(str(node.value))

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            key(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"get", "pop"}:
            for a in node.args[:1]:
                key(a)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            key(node.left)
    return sorted(found)


def violations(root: Path = PACKAGE) -> dict[str, list[str]]:
    out = {}
    families = family_dirs(root)
    for path in sorted(root.rglob("*.py")):
        if any(d == path.parent or d in path.parents for d in families):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        found = framework_model_imports(tree) + framework_attributes(tree) + input_key_reads(tree)
        if found:
            out[str(path.relative_to(root.parent))] = found
    return out


def test_no_module_outside_a_family_touches_mmdet_heads_or_transformers_models() -> None:
    assert violations() == {}


def test_each_family_is_a_subpackage() -> None:
    assert all((d / "__init__.py").is_file() for d in family_dirs()), family_dirs()


def test_the_check_sees_imports_at_the_top_and_inside_functions() -> None:
    src = "import mmdet.models\ndef f():\n    from transformers import Mask2FormerModel\n    import mmdet.apis\n"
    assert framework_model_imports(ast.parse(src)) == ["mmdet.models", "transformers",
                                                       "transformers.Mask2FormerModel"]


def test_the_check_sees_heads_and_outputs_read_as_attributes_or_getattr_strings() -> None:
    src = ('"""Docs may name panoptic_fusion_head."""\n'
           "h = getattr(model, 'panoptic_fusion_head', None)\nx = out.masks_queries_logits\ny = 'logits'\n")
    assert framework_attributes(ast.parse(src)) == ["masks_queries_logits", "panoptic_fusion_head"]


def test_the_check_sees_input_keys_read_but_not_written() -> None:
    src = ('x = data["inputs"]\ny = data.get("pixel_values")\nz = "inputs" in data\n'
           'batch = {"inputs": [img]}\nw = data["img"]\n')
    assert input_key_reads(ast.parse(src)) == ["inputs", "pixel_values"]
    assert input_key_reads(ast.parse('z = "pixel_values" in data\n')) == ["pixel_values"]


def test_the_check_fails_on_a_module_outside_the_families(tmp_path: Path) -> None:
    pkg = tmp_path / "panbench"
    for d in [pkg / "evaluation", *family_dirs(pkg)]:
        d.mkdir(parents=True, exist_ok=True)
    (family_dirs(pkg)[0] / "family.py").write_text("import mmdet.models\nhead = model.panoptic_fusion_head\n")
    (pkg / "models" / "fusion.py").write_text("def f(m):\n    return m.panoptic_fusion_head\n")
    (pkg / "evaluation" / "run.py").write_text("from transformers import AutoModel\n")
    (pkg / "evaluation" / "flops.py").write_text("def hw(data):\n    return data['inputs'].shape[-2:]\n")
    assert violations(pkg) == {"panbench/evaluation/flops.py": ["inputs"],
                               "panbench/evaluation/run.py": ["transformers", "transformers.AutoModel"],
                               "panbench/models/fusion.py": ["panoptic_fusion_head"]}



def module_string_lookups(root: Path = PACKAGE) -> list[str]:
    """The calls under ``root/models`` that import a module named by a string (``importlib.import_module``, the
    package's ``named("module:function")``), as ``path:function`` of the innermost function around each."""
    found = set()

    def visit(node: ast.AST, where: str, fn: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            fn = node.name
        called = getattr(node, "func", None)
        name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", None)
        if isinstance(node, ast.Call) and name in ("import_module", "named"):
            found.add(f"{where}:{fn}")
        for child in ast.iter_child_nodes(node):
            visit(child, where, fn)

    for path in sorted((root / "models").rglob("*.py")):
        visit(ast.parse(path.read_text(), filename=str(path)), path.relative_to(root).as_posix(), "<module>")
    return sorted(found)


def test_no_family_is_found_by_a_module_string() -> None:
    """A family is its class in ``FAMILIES``; the one import by name under models/ is the stand-in of a module
    mmdet imports but inference never uses, forwarding a call to the real one (``mmdet/mm.py``)."""
    assert module_string_lookups() == ["models/mmdet/mm.py:forward"]


def test_the_check_sees_a_lookup_by_module_string(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "families.py").write_text(
        "import importlib\nfrom panbench.package import named\n\n\ndef entry(p):\n    return importlib.import_module(p)"
        "\n\n\nDOCTOR = named('x:checks')\n")
    assert module_string_lookups(tmp_path) == ["models/families.py:<module>", "models/families.py:entry"]


def upward_imports(graph: dict[str, set[str]], families: set[str]) -> list[str]:
    """The imports inside ``panbench.models`` from a shared module (``protocol``, ``grid``, ``postprocess``, ...) into
    a family's subpackage (``families``): only the table of families, ``families.py``, stands above them."""
    def in_family(m: str) -> bool:
        return any(m == f or m.startswith(f + ".") for f in families)

    return sorted(f"{a} -> {b}" for a, targets in graph.items() if a.startswith("panbench.models.")
                  and not in_family(a) and a != "panbench.models.families" for b in targets if in_family(b))


def test_the_shared_modules_of_models_import_no_family() -> None:
    from test_architecture import import_graph

    assert upward_imports(import_graph(), {type(f).__module__ for f in FAMILIES.values()}) == []
    graph = {"panbench.models.grid": {"panbench.models.mmdet.fast_fusion"}, "panbench.models.families":
             {"panbench.models.mmdet"}, "panbench.models.mmdet": {"panbench.models.grid"}}
    assert upward_imports(graph, {"panbench.models.mmdet"}) == [
        "panbench.models.grid -> panbench.models.mmdet.fast_fusion"]
