"""`panbench eval` of the three R50 architectures at full size on the real COCO sample (CPU),
with random-init checkpoints written as the zoo's files were (PanopticFPN: mmdet 2.x, mmcv 1.x meta with
`CLASSES` spelled `' truck'`; MaskFormer/Mask2Former: mmdet 3.x, mmengine meta with `dataset_meta`,
both through publish_model); and the refusals of bad checkpoints."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import save_zoo_style_checkpoint

from panbench.cli import main
from panbench.models.registry import resolve
from panbench.pq.matching import METRIC_KEYS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ckpts")


@pytest.mark.parametrize("model", ["panoptic-fpn", "maskformer", "mask2former"])
def test_eval_writes_record_and_csv_row(coco_sample, tmp_path, ckpt_dir, model, capsys) -> None:
    spec = resolve(model)[0]
    ckpt = save_zoo_style_checkpoint(spec, ckpt_dir)
    meta = torch.load(ckpt, weights_only=True)["meta"]
    if model == "panoptic-fpn":  # the 2.x spelling of the class names
        assert meta["CLASSES"][7] == " truck" and "mmcv_version" in meta and "hook_msgs" in meta
    else:
        assert meta["dataset_meta"]["classes"][7] == "truck" and "mmengine_version" in meta
    results = tmp_path / "results"
    rc = main(["eval", "--model", model, "--data-root", str(coco_sample), "--checkpoint", str(ckpt),
               "--results", str(results), "--workers", "0", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    # random weights are not the zoo's: no comparison with the zoo's numbers, and the record says why
    assert "All" in out and "published (" not in out and "WARNING" not in out
    rows = list(csv.DictReader(open(results / "runs.csv")))
    assert len(rows) == 1 and rows[0]["model"] == spec.name and rows[0]["n_images"] == "2"
    rec = json.loads((results / rows[0]["record"]).read_text())
    assert set(METRIC_KEYS) <= set(rec["metrics"]) and rec["n_images"] == 2
    assert rec["published"] == {} and rec["published_source"].startswith("own checkpoint")
    assert len(rec["per_class"]) == 133
    prov = rec["provenance"]
    assert prov["checkpoint"]["sha256"].startswith(ckpt.stem.rsplit("-", 1)[1])
    assert prov["dataset"]["image_ids"] == [142238, 439180]
    assert json.loads(prov["config"])["model"]["type"] and len(prov["config_sha256_16"]) == 16
    for k in ("torch", "mmcv", "mmengine", "mmdet", "numpy", "panbench"):
        assert prov["versions"][k]
    t = rec["timings"]
    assert t["timed_images"] + t["warmup_images"] == 2 and t["forward_s"] >= 0
    assert rec["fusion"] == "panbench" and 0 <= t["fusion_s"] <= t["postprocess_s"]
    assert rec["flops"]["images"] == 1 and rec["flops"]["input_hw"] == [[800, 1199]]  # 142238, resized
    assert rec["flops"]["gflops"] > 50  # full size (the paper comparison: tests/evaluation/test_flops.py)


def test_wrong_architecture_is_refused(coco_sample, tmp_path, ckpt_dir, capsys) -> None:
    ckpt = save_zoo_style_checkpoint(resolve("maskformer")[0], ckpt_dir, stem="mf")
    rc = main(["eval", "--model", "mask2former", "--data-root", str(coco_sample), "--checkpoint", str(ckpt),
               "--results", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit the model" in err and "missing keys" in err and "\n" not in err.strip()


def test_sha_mismatch_and_truncated_checkpoints_are_refused(coco_sample, tmp_path, ckpt_dir, capsys) -> None:
    good = save_zoo_style_checkpoint(resolve("panoptic-fpn")[0], ckpt_dir, stem="pf")
    bad = tmp_path / "pf_random_20230101_000000-deadbeef.pth"
    shutil.copy(good, bad)
    rc = main(["eval", "--model", "panoptic-fpn", "--data-root", str(coco_sample), "--checkpoint", str(bad),
               "--results", str(tmp_path), "--no-progress"])
    assert rc == 2 and "does not match the expected deadbeef" in capsys.readouterr().err
    trunc = tmp_path / "pf_truncated.pth"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    rc = main(["eval", "--model", "panoptic-fpn", "--data-root", str(coco_sample), "--checkpoint", str(trunc),
               "--results", str(tmp_path), "--no-progress"])
    assert rc == 2 and "truncated or corrupt" in capsys.readouterr().err
