"""The model protocol: the MMDetection family implements it, the panoptic encoding is a leaf, and the modules
of panbench.models import one another without a circle (imports inside functions counted)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
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
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve
    from panbench.package import REPO_ROOT

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


def _demo(name: str):
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve
    from panbench.package import REPO_ROOT

    ds = load_dataset(make_demo(REPO_ROOT / "data" / "demo"), name="demo")
    return ds, load_model(resolve(name, dataset="demo")[0], ds.categories, None, False, "cpu")


def test_configure_says_what_runs_the_fusion_and_refuses_what_a_model_cannot_take() -> None:
    from panbench.errors import PanbenchError
    from panbench.models.postprocess import PostProcess

    _, m2f = _demo("demo-mask2former")
    assert m2f.family.configure(PostProcess(), "mmdet") == "mmdet"
    assert m2f.family.configure(PostProcess(), "panbench") == "panbench"
    _, m2f = _demo("demo-mask2former")
    assert m2f.family.configure(PostProcess("maskwise"), "panbench") is None  # the head's own fusion replaced
    _, fpn = _demo("demo-panoptic-fpn")
    with pytest.raises(PanbenchError, match="--postprocess argmax needs a MaskFormer"):
        fpn.family.configure(PostProcess("argmax"), "panbench")


def test_query_masks_are_the_best_queries_at_the_images_size_beside_the_same_output() -> None:
    ds, lm = _demo("demo-mask2former")
    s = ds.samples[0]
    data = lm.pipeline({"img_path": str(s.image_path), "img_id": s.image_id})
    with torch.inference_mode():
        out, queries = lm.family.query_masks(data, "cpu", 3)
        (plain,) = lm.family.forward([data], "cpu", None)
    assert len(queries) == 3 and [q[1] for q in queries] == sorted((q[1] for q in queries), reverse=True)
    assert all(0 <= label < len(lm.names) and m.shape == (s.height, s.width) and 0 <= m.min() <= m.max() <= 1
               for label, _, m in queries)
    assert np.array_equal(lm.family.to_segments(out)[0], lm.family.to_segments(plain)[0])
    _, fpn = _demo("demo-panoptic-fpn")  # no queries: the output alone
    with torch.inference_mode():
        assert fpn.family.query_masks(fpn.pipeline({"img_path": str(s.image_path), "img_id": s.image_id}),
                                      "cpu", 3)[1] == []


def test_every_registered_model_has_a_family_and_the_registry_is_read_only() -> None:
    import dataclasses

    from panbench.models.families import FAMILIES, by_prefix
    from panbench.models.protocol import Family
    from panbench.models.registry import all_models, resolve

    assert {s.framework for s in all_models()} == set(FAMILIES)
    assert all(isinstance(f, Family) and f.name == name for name, f in FAMILIES.items())
    assert by_prefix("hf:org/model") == (FAMILIES["transformers"], "org/model") and by_prefix("x.py") is None
    spec = resolve("hf:/no/such-model")[0]
    assert (spec.framework, spec.ref, spec.unregistered, spec.name) == ("transformers", "/no/such-model", True,
                                                                          "hf-such-model")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.architecture = "Mask2Former"  # type: ignore[misc]
