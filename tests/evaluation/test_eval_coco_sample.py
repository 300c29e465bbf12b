"""`panbench eval` of the three R50 architectures at full size (CPU) on a crop of a COCO image and its mirror
(helpers.zoo_pair_eval: the eval that test_batch_size.py compares its batch of two with; MaskFormer and
Mask2Former keep every query, as random weights score them all below the zoo's thresholds), with random-init
checkpoints written as the zoo's files were (PanopticFPN: mmdet 2.x, mmcv 1.x meta with `CLASSES` spelled
`' truck'`; MaskFormer/Mask2Former: mmdet 3.x, mmengine meta with `dataset_meta`, both through publish_model);
and the refusals of bad checkpoints."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from helpers import PAIR_IDS, zoo_checkpoint, zoo_pair_eval

from panbench.cli import main
from panbench.models.registry import resolve
from panbench.pq.matching import METRIC_KEYS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", ["panoptic-fpn", "maskformer", "mask2former"])
def test_eval_writes_record_and_csv_row(coco_sample, request, model) -> None:
    spec = resolve(model)[0]
    ckpt = zoo_checkpoint(request, model)
    meta = torch.load(ckpt, weights_only=True)["meta"]
    if model == "panoptic-fpn":  # the 2.x spelling of the class names
        assert meta["CLASSES"][7] == " truck" and "mmcv_version" in meta and "hook_msgs" in meta
    else:
        assert meta["dataset_meta"]["classes"][7] == "truck" and "mmengine_version" in meta
    run = zoo_pair_eval(request, coco_sample, model)
    # random weights are not the zoo's: no comparison with the zoo's numbers, and the record says why
    assert "All" in run.out and "published (" not in run.out and "WARNING" not in run.out
    rows = list(csv.DictReader(open(run.results / "runs.csv")))
    assert len(rows) == 1 and rows[0]["model"] == spec.name and rows[0]["n_images"] == "2"
    rec = json.loads((run.results / rows[0]["record"]).read_text())
    assert rec == run.record
    assert set(METRIC_KEYS) <= set(rec["metrics"]) and rec["n_images"] == 2
    assert rec["published"] == {} and rec["published_source"].startswith("own checkpoint")
    assert len(rec["per_class"]) == 133
    prov = rec["provenance"]
    assert prov["checkpoint"]["sha256"].startswith(ckpt.stem.rsplit("-", 1)[1])
    assert prov["dataset"]["image_ids"] == list(PAIR_IDS)
    assert json.loads(prov["config"])["model"]["type"] and len(prov["config_sha256_16"]) == 16
    for k in ("torch", "mmcv", "mmengine", "mmdet", "numpy", "panbench"):
        assert prov["versions"][k]
    t = rec["timings"]
    assert t["timed_images"] + t["warmup_images"] == 2 and t["forward_s"] >= 0
    assert rec["fusion"] == "panbench" and 0 <= t["fusion_s"] <= t["postprocess_s"]
    if model == "panoptic-fpn":  # eval's FLOPs pass at full size, once (the paper comparison: test_flops.py)
        assert rec["flops"]["images"] == 1 and rec["flops"]["input_hw"] == [[800, 824]]  # the first image, resized
        assert rec["flops"]["gflops"] > 50
    else:
        assert rec["flops"] is None


def test_wrong_architecture_is_refused(coco_sample, request, tmp_path, capsys) -> None:
    ckpt = zoo_checkpoint(request, "maskformer")
    rc = main(["eval", "--model", "mask2former", "--data-root", str(coco_sample), "--checkpoint", str(ckpt),
               "--results", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit the model" in err and "missing keys" in err and "\n" not in err.strip()


def test_sha_mismatch_and_truncated_checkpoints_are_refused(coco_sample, request, tmp_path, capsys) -> None:
    good = zoo_checkpoint(request, "panoptic-fpn")
    bad = tmp_path / "pf_random_20230101_000000-deadbeef.pth"
    shutil.copyfile(good, bad)
    rc = main(["eval", "--model", "panoptic-fpn", "--data-root", str(coco_sample), "--checkpoint", str(bad),
               "--results", str(tmp_path), "--no-progress"])
    assert rc == 2 and "does not match the expected deadbeef" in capsys.readouterr().err
    trunc = tmp_path / "pf_truncated.pth"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    rc = main(["eval", "--model", "panoptic-fpn", "--data-root", str(coco_sample), "--checkpoint", str(trunc),
               "--results", str(tmp_path), "--no-progress"])
    assert rc == 2 and "truncated or corrupt" in capsys.readouterr().err
