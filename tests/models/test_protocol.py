"""The model protocol: the MMDetection family implements it, the panoptic encoding is a leaf, and the modules
of panbench.models import one another without a circle (imports inside functions counted)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import torch

import panbench.models
from panbench.models.encoding import INSTANCE_OFFSET
from panbench.models.protocol import PanopticModel

MODELS = Path(panbench.models.__file__).parent


def _imports(path: Path) -> set[str]:
    """The panbench modules ``path`` imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("panbench"):
            out |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("panbench")}
    return out


def _name(path: Path) -> str:
    """``panbench/models/mmdet/mm.py`` -> ``mmdet.mm``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(MODELS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_models_modules_import_one_another_without_a_circle() -> None:
    paths = {_name(p): p for p in MODELS.rglob("*.py") if p != MODELS / "__init__.py"}
    names = set(paths)
    graph = {n: {m.removeprefix("panbench.models.") for m in _imports(paths[n])
                 if m.removeprefix("panbench.models.") in names} - {n} for n in names}
    done: set[str] = set()

    def visit(n: str, path: list[str]) -> None:
        assert n not in path, f"import circle: {' -> '.join(path[path.index(n):] + [n])}"
        if n not in done:
            for m in sorted(graph[n]):
                visit(m, path + [n])
            done.add(n)

    for n in sorted(names):
        visit(n, [])


def test_the_panoptic_encoding_imports_nothing_of_panbench() -> None:
    assert _imports(MODELS / "encoding.py") == set()


def test_the_mmdetection_family_implements_the_protocol() -> None:
    from panbench import REPO_ROOT
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve

    ds = load_dataset(make_demo(REPO_ROOT / "data" / "demo"), name="demo")
    lm = load_model(resolve("demo-panoptic-fpn", dataset="demo")[0], ds.categories, None, False, "cpu")
    model = lm.family
    assert isinstance(model, PanopticModel) and model.module is lm.model
    s = ds.samples[0]
    data = model.pipeline({"img_path": str(s.image_path), "img_id": s.image_id})
    times: list[float] = []
    with torch.inference_mode(), model.timed_fusion(times, lambda: None):
        (out,) = model.forward([data], "cpu", None)
    assert len(times) == 1 and times[0] > 0  # the fusion head's predict ran once, timed
    ids, segs = model.to_segments(out)
    pan = out.pred_panoptic_seg.sem_seg[0]
    assert ids.dtype == np.uint32 and ids.shape == (s.height, s.width) == tuple(pan.shape)
    assert sorted(np.unique(ids[ids > 0]).tolist()) == [g["id"] for g in segs]
    labels = {int(v) % INSTANCE_OFFSET for v in torch.unique(pan)} - {len(lm.names)}
    assert {g["category_id"] for g in segs} == {lm.label2cat[k] for k in labels}
