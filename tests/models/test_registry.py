"""The model registry: every config loads and builds; names, aliases and suggestions."""

from __future__ import annotations

import pytest

from panbench.errors import PanbenchError
from panbench.models.mmdet import mm
from panbench.models.registry import CONFIG_DIR, all_models, load_spec, resolve

ZOO = [p for p in sorted(CONFIG_DIR.glob("*.py"))]


def test_registry_has_the_zoo_models() -> None:
    names = {s.name for s in all_models(dataset="coco")}
    for n in ("panoptic-fpn_r50_1x", "panoptic-fpn_r50_3x", "panoptic-fpn_r101_1x", "panoptic-fpn_r101_3x",
              "maskformer_r50", "maskformer_swin-l", "mask2former_r50", "mask2former_r101", "mask2former_swin-t",
              "mask2former_swin-s", "mask2former_swin-b", "mask2former_swin-b-in21k", "mask2former_swin-l-in21k"):
        assert n in names


def test_every_spec_has_url_hash_and_published_pq() -> None:
    for s in all_models(dataset="coco", framework="mmdet"):
        assert s.checkpoint and s.checkpoint.startswith("https://download.openmmlab.com/")
        assert s.sha256_prefix and len(s.sha256_prefix) == 8 and s.checkpoint.endswith(f"-{s.sha256_prefix}.pth")
        assert s.published["PQ"] > 35


def test_aliases_and_lists() -> None:
    assert [s.name for s in resolve("mask2former")] == ["mask2former_r50"]
    assert [s.name for s in resolve("panoptic-fpn,maskformer")] == ["panoptic-fpn_r50_1x", "maskformer_r50"]
    assert len(resolve("all")) == len(all_models(dataset="coco", framework="mmdet"))
    assert resolve(str(ZOO[0]))[0].config == ZOO[0]
    assert [s.name for s in resolve("mask2former,mask2former_r50")] == ["mask2former_r50"]  # each model once
    both = resolve("maskformer,all")
    assert len(both) == len(resolve("all")) and both[0].name == "maskformer_r50"


@pytest.mark.parametrize("bad,suggestion", [("mask2formr", "mask2former"), ("maskformer_r5", "maskformer_r50"),
                                            ("panoptic_fpn", "panoptic-fpn")])
def test_unknown_name_suggests(bad, suggestion) -> None:
    with pytest.raises(PanbenchError, match=f"did you mean .*{suggestion}"):
        resolve(bad)


@pytest.mark.slow
@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_every_config_file_loads_and_builds(path) -> None:
    cfg = mm.load_config(path)
    model = mm.build_model(cfg, path)
    assert mm.count_parameters(model) == load_spec(path).params  # the count `panbench ls` shows
    names = mm.class_names(cfg)
    assert len(names) == 133
