"""The CI smoke test: eval of a demo model on the demo set, and of a full-size zoo architecture on the
COCO sample through the committed subset file."""

from __future__ import annotations

import json

import pytest
from helpers import zoo_checkpoint

from panbench.cli import main
from panbench.data.demo import make_demo
from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow


def test_smoke_demo_model(tmp_path) -> None:
    make_demo(REPO_ROOT / "data" / "demo")
    assert main(["eval", "--model", "panoptic-fpn", "--dataset", "demo", "--limit", "10", "--results",
                 str(tmp_path), "--no-progress", "--workers", "1"]) == 0
    rec = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    assert rec["n_images"] == 10 and rec["model"] == "demo-panoptic-fpn" and rec["metrics"]["PQ"] > 0


def test_smoke_zoo_architecture_on_the_coco_sample_subset(request, coco_sample, tmp_path) -> None:
    """PanopticFPN R-50, the cheapest of the three zoo architectures at COCO's size (each of them runs the zoo's path
    on COCO images in tests/evaluation/test_eval_coco_sample.py), with its zoo-style checkpoint, on the COCO sample
    through the committed subset file; without eval's FLOPs pass (a third full-size forward, checked at COCO's size
    in test_eval_coco_sample.py)."""
    ckpt = zoo_checkpoint(request, "panoptic-fpn")
    subset = REPO_ROOT / "data" / "subsets" / "coco_sample.txt"
    assert main(["eval", "--model", "panoptic-fpn", "--data-root", str(coco_sample), "--subset", str(subset),
                 "--checkpoint", str(ckpt), "--results", str(tmp_path), "--no-progress", "--workers", "0",
                 "--flops-images", "0"]) == 0
    rec = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    assert rec["provenance"]["dataset"]["image_ids"] == [142238, 439180] and rec["flops"] is None


def test_subset_files_are_well_formed() -> None:
    from panbench.data.datasets import read_subset

    ids = read_subset(REPO_ROOT / "data" / "subsets" / "coco_val_smoke.txt")
    assert len(ids) == len(set(ids)) >= 10 and {142238, 439180} <= set(ids)
