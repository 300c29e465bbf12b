"""``panbench.pq_compute`` is panopticapi's ``pq_compute``: the same dict, every number to 1e-9, on COCO's own
PNGs with perturbed predictions and on the demo set with a demo model's predictions."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from helpers import write_perturbed_sample

from panbench import pq_compute


def panopticapi_pq_compute(gt_json: Path, pred_json: Path, gt_dir: Path, pred_dir: Path) -> dict:
    from panopticapi.evaluation import pq_compute as reference

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its table
        return reference(str(gt_json), str(pred_json), str(gt_dir), str(pred_dir))


def assert_same_dict(ours: dict, ref: dict) -> None:
    assert set(ours) == set(ref) == {"All", "Things", "Stuff", "per_class"}
    for group in ("All", "Things", "Stuff"):
        assert set(ours[group]) == set(ref[group]) == {"pq", "sq", "rq", "n"}
        assert ours[group]["n"] == ref[group]["n"]
        for k in ("pq", "sq", "rq"):
            assert ours[group][k] == pytest.approx(ref[group][k], abs=1e-9), (group, k)
    assert set(ours["per_class"]) == set(ref["per_class"])
    for cid, r in ref["per_class"].items():
        for k in ("pq", "sq", "rq"):
            assert ours["per_class"][cid][k] == pytest.approx(r[k], abs=1e-9), (cid, k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pq_compute_returns_panopticapis_dict_on_coco_pngs_with_perturbed_predictions(coco_sample: Path,
                                                                                     tmp_path: Path, seed: int) -> None:
    ann = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, seed)
    gt_json, gt_dir = ann / "panoptic_val2017.json", ann / "panoptic_val2017"
    ours = pq_compute(gt_json, pred_json, gt_dir, pred_dir)
    ref = panopticapi_pq_compute(gt_json, pred_json, gt_dir, pred_dir)
    assert ref["All"]["pq"] < 0.99  # the predictions differ from the ground truth
    assert_same_dict(ours, ref)


def test_pq_compute_finds_the_folders_beside_the_jsons_as_panopticapi(coco_sample: Path, tmp_path: Path) -> None:
    ann = coco_sample / "annotations"
    pred_json, _ = write_perturbed_sample(ann, tmp_path, 3)  # tmp/pred.json beside tmp/pred/
    ours = pq_compute(str(ann / "panoptic_val2017.json"), str(pred_json))
    assert_same_dict(ours, panopticapi_pq_compute(ann / "panoptic_val2017.json", pred_json, ann / "panoptic_val2017",
                                                  tmp_path / "pred"))


@pytest.mark.slow
def test_pq_compute_returns_panopticapis_dict_on_the_demo_set_with_a_demo_models_predictions(demo_root: Path,
                                                                                          tmp_path: Path) -> None:
    from panbench.cli import main

    pred = tmp_path / "pred"
    assert main(["eval", "--model", "demo-panoptic-fpn", "--dataset", "demo", "--data-root", str(demo_root),
                 "--results", str(tmp_path / "res"), "--save-predictions", str(pred), "--no-resume", "--no-progress",
                 "--workers", "0", "--limit", "12"]) == 0
    pred_json = next(p for p in pred.glob("*.json") if not p.name.endswith("_instances.json"))
    # the ground truth of the 12 images predicted
    gt = json.loads((demo_root / "annotations" / "panoptic_val2017.json").read_text())
    done = {a["image_id"] for a in json.loads(pred_json.read_text())["annotations"]}
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in done]
    gt["images"] = [i for i in gt["images"] if i["id"] in done]
    gt_json = tmp_path / "gt.json"
    gt_json.write_text(json.dumps(gt))
    gt_dir = demo_root / "annotations" / "panoptic_val2017"
    ours = pq_compute(gt_json, pred_json, gt_dir, pred_json.with_suffix(""))
    ref = panopticapi_pq_compute(gt_json, pred_json, gt_dir, pred_json.with_suffix(""))
    assert len(done) == 12 and 0.3 < ref["All"]["pq"] < 0.95
    assert_same_dict(ours, ref)


def test_pq_compute_names_the_missing_folder_and_its_argument(coco_sample: Path, tmp_path: Path) -> None:
    from panbench.errors import InputError

    gt_json = coco_sample / "annotations" / "panoptic_val2017.json"
    with pytest.raises(InputError) as e:
        pq_compute(gt_json, tmp_path / "pred.json")
    assert str(e.value) == (f"{tmp_path / 'pred'}: no such folder of panoptic PNGs; pass pred_folder (the PNGs of "
                            f"{tmp_path / 'pred.json'})")
