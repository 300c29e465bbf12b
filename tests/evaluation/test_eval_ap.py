"""AP and mIoU through `panbench eval`: the record's AP equals pycocotools' COCOeval on the instance JSON that
--save-predictions writes (ground truth converted here from the panoptic PNGs, as panopticapi's converter does);
mIoU and its source are in the record; --no-ap gives no AP and the same PQ; PanopticFPN's AP is its instance
branch's.  Forked CPU processes and torchrun ranks giving one process's AP and mIoU:
tests/evaluation/test_eval_analysis.py, whose runs compute AP.  The command runs in-process (``panbench.cli.main``):
these tests are about what it computes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ap_cases import pycocotools_ap
from PIL import Image

from panbench.cli import main

pytestmark = pytest.mark.slow
pytest.importorskip("hotcoco", reason="AP is computed with hotcoco (pip install hotcoco)")
LIMIT = 6
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def eval_args(demo_root: Path, results: Path, *extra: str, model: str = "mask2former") -> list[str]:
    return ["eval", "--model", model, "--dataset", "demo", "--data-root", str(demo_root), "--results", str(results),
            "--workers", "0", "--no-progress", "--device", "cpu", "--limit", str(LIMIT), "--no-resume",
            "--flops-images", "0", *extra]  # no FLOPs pass (a pass of its own after the scoring): not checked here


def run(args: list[str]) -> None:
    assert main(args) == 0


def record(results: Path) -> dict:
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())


@pytest.fixture(scope="module")
def with_ap(demo_root, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("ap")
    run(eval_args(demo_root, results, "--cpu-procs", "1", "--save-predictions", str(results / "pred")))
    return results


def reference_gt(demo_root: Path, image_ids: list[int]) -> dict:
    """The thing segments of the demo's panoptic ground truth as COCO detection annotations (pycocotools' RLEs)."""
    from pycocotools import mask as cocomask

    pan = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    things = {c["id"] for c in pan["categories"] if c["isthing"]}
    images, anns = [], []
    for a in sorted(pan["annotations"], key=lambda a: a["image_id"]):
        if a["image_id"] not in image_ids:
            continue
        rgb = np.asarray(Image.open(demo_root / "annotations" / "panoptic_val2017" / a["file_name"]), np.uint32)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        images.append({"id": a["image_id"], "height": ids.shape[0], "width": ids.shape[1]})
        for s in a["segments_info"]:
            if s["category_id"] in things:
                rle = cocomask.encode(np.asfortranarray((ids == s["id"]).astype(np.uint8)[..., None]))[0]
                rle["counts"] = rle["counts"].decode()
                anns.append({"id": len(anns) + 1, "image_id": a["image_id"], "category_id": s["category_id"],
                             "iscrowd": s.get("iscrowd", 0), "area": s["area"], "bbox": s["bbox"],
                             "segmentation": rle})
    cats = [{"id": c["id"], "name": c["name"]} for c in pan["categories"] if c["isthing"]]
    return {"images": images, "annotations": anns, "categories": cats}


def test_record_ap_equals_pycocotools_on_the_saved_instance_json(with_ap, demo_root) -> None:
    rec = record(with_ap)
    assert rec["ap_source"] == "mmdet instance_on"
    saved = sorted((with_ap / "pred").glob("*_instances.json"))
    assert len(saved) == 1
    results = json.loads(saved[0].read_text())
    assert results and {"image_id", "category_id", "segmentation", "score"} <= set(results[0])
    ref = pycocotools_ap(reference_gt(demo_root, rec["provenance"]["dataset"]["image_ids"]), saved[0])
    got = np.array([rec["ap"][k] / 100 if rec["ap"][k] >= 0 else -1.0 for k in AP_KEYS])
    assert np.max(np.abs(got - ref)) <= 1e-9, (got, ref)
    assert rec["ap"]["AP"] > 0


def test_record_has_miou_and_its_source(with_ap) -> None:
    rec = record(with_ap)
    assert rec["miou_source"] == "panoptic"  # mmdet 3.3's MaskFormer fusion head has no semantic output beside
    assert rec["miou"] == rec["semantic"]["mIoU"] and 0 < rec["miou"] <= 100


def test_no_ap_gives_no_ap_and_the_same_pq(with_ap, demo_root, tmp_path) -> None:
    run(eval_args(demo_root, tmp_path, "--cpu-procs", "1", "--no-ap", "--save-predictions", str(tmp_path / "pred")))
    rec, ref = record(tmp_path), record(with_ap)
    assert "ap" not in rec and "ap_source" not in rec
    assert rec["metrics"] == ref["metrics"] and rec["per_class"] == ref["per_class"]
    assert rec["miou"] == ref["miou"]
    assert not list((tmp_path / "pred").glob("*_instances.json"))


def test_panoptic_fpn_ap_is_its_instance_branch_scored_as_pycocotools(demo_root, tmp_path) -> None:
    run(eval_args(demo_root, tmp_path, "--cpu-procs", "1", "--save-predictions", str(tmp_path / "pred"),
                  model="demo-panoptic-fpn"))
    rec = record(tmp_path)
    assert rec["model"] == "demo-panoptic-fpn" and rec["ap_source"] == "mmdet roi_head"
    saved = sorted((tmp_path / "pred").glob("*_instances.json"))
    ref = pycocotools_ap(reference_gt(demo_root, rec["provenance"]["dataset"]["image_ids"]), saved[0])
    got = np.array([rec["ap"][k] / 100 if rec["ap"][k] >= 0 else -1.0 for k in AP_KEYS])
    assert np.max(np.abs(got - ref)) <= 1e-9 and rec["ap"]["AP"] > 0, (got, ref)
