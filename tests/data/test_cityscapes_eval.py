"""Cityscapes panoptic scored by panbench equals cityscapesscripts' own evaluation: the tiny gtFine/leftImg8bit
input of test_cityscapes_ade20k.py converted by `panbench data cityscapes`, predictions made from its ground-truth
PNGs by perturbing them (a shifted car, a dropped car, a class changed, segments added over road, over the crowd
region and over VOID, a car moved too far to match), then `panbench score` and `panbench.pq_compute` against
cityscapesscripts' `evaluatePanoptic` (cityscapesscripts.evaluation.evalPanopticSemanticLabeling, run as it is)
on the same files: All, Things, Stuff and every class, PQ/SQ/RQ, the class counts n and, from the statistics
its `evaluatePanoptic` sums, each class's TP, FP, FN and IoU sum."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cityscapes_ade20k import make_cityscapes, rgb2id

from panbench.cli import main
from panbench.data.synth import write_png

pytest.importorskip("cityscapesscripts", reason="pip install cityscapesscripts (scripts/setup.sh does)")

# cityscapesscripts sums each IoU as a float64; panbench sums them as integers in units of 2^-40
# (IOU_BITS in panbench/pq/sums.py), so an IoU sum may differ by ~1e-12 per matched segment. The tiny set has a
# few matches per class: 1e-11 on fractions 0-1 is that rounding and nothing more (a single TP, FP or FN more or
# less changes a number here by 0.01 or more). Counts (TP, FP, FN, n) are compared exactly.
TOL = 1e-11

# label ids (cityscapesscripts' labels.py): road 7, sidewalk 8, building 11, person 24, rider 25, car 26
ROAD, SIDEWALK, BUILDING, PERSON, RIDER, CAR = 7, 8, 11, 24, 25, 26


def perturb(k: int, ids: np.ndarray, segs: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A prediction made from image ``k``'s ground truth (ids map and segments_info; see make_cityscapes)."""
    p = ids.copy()
    cat = {s["id"]: s["category_id"] for s in segs}
    car_a, car_b = 26000 + k, 26001 + k
    if k == 0:
        p[ids == car_a] = ROAD
        p[4:8, 3:7] = car_a  # the first car one column to the right: IoU 12/20, a TP below 1
        p[ids == car_b] = 0  # the second car predicted VOID: an FN
        cat[24000] = RIDER  # the person predicted a rider: an FN for person, an FP for rider
        p[9:, 5:8] = 90000  # a car over road: an FP
        cat[90000] = CAR
        p[9:, 9:13] = 90001  # a car mostly over the crowd of cars (9 of 12 pixels): ignored, not an FP
        cat[90001] = CAR
        p[0:2, 4:10] = 90002  # building over the unlabeled rows (VOID): ignored
        cat[90002] = BUILDING
        p[2:4, 12:] = 90003  # sidewalk over road: an FP for sidewalk, road's IoU below 1
        cat[90003] = SIDEWALK
    else:
        p[ids == car_b] = ROAD
        p[4:8, 11:15] = car_b  # the second car three columns to the right: IoU 4/28, an FN and an FP
        p[10:, 3:5] = 90004  # a person over road, beside the ground-truth person: an FP
        cat[90004] = PERSON
        p[2:4, :4] = ROAD  # road over the ego vehicle (VOID): left out of road's union, its IoU stays 1
    present = {int(v) for v in np.unique(p)} - {0}
    return p, [{"id": i, "category_id": cat[i]} for i in sorted(present)]


def make_predictions(root: Path, out: Path) -> tuple[Path, Path]:
    gt = json.loads((root / "annotations" / "cityscapes_panoptic_val.json").read_text())
    pred_dir = out / "cityscapes_panoptic_val"
    pred_dir.mkdir(parents=True)
    anns = []
    for k, ann in enumerate(gt["annotations"]):
        ids = rgb2id(root / "annotations" / "cityscapes_panoptic_val" / ann["file_name"])
        p, segs = perturb(k, ids, ann["segments_info"])
        write_png(pred_dir / ann["file_name"], p)
        anns.append({"image_id": ann["image_id"], "file_name": ann["file_name"], "segments_info": segs})
    pred_json = out / "cityscapes_panoptic_val.json"
    pred_json.write_text(json.dumps({"annotations": anns, "categories": gt["categories"]}))
    return pred_json, pred_dir


def cityscapesscripts_eval(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path, results: Path,
                           monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """cityscapesscripts' evaluatePanoptic, run as it is: its results and, per class, the TP/FP/FN and IoU sum of
    the statistics it averaged (its pq_compute_multi_core's return value, seen on the way)."""
    from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs

    seen = []
    compute = cs.pq_compute_multi_core

    def spy(*args: Any) -> Any:
        seen.append(compute(*args))
        return seen[-1]

    monkeypatch.setattr(cs, "pq_compute_multi_core", spy)
    monkeypatch.setattr(cs.multiprocessing, "cpu_count", lambda: 1)  # one worker process, not one per core
    res = cs.evaluatePanoptic(str(gt_json), str(gt_dir), str(pred_json), str(pred_dir), str(results))
    counts = {cid: {"tp": s.tp, "fp": s.fp, "fn": s.fn, "iou": float(s.iou)} for cid, s in seen[0].pq_per_cat.items()}
    return res, counts


def test_cityscapes_pq_equals_cityscapesscripts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from panbench import pq_compute

    src, root = tmp_path / "cs", tmp_path / "out"
    make_cityscapes(src)
    assert main(["data", "cityscapes", "--from", str(src), "--root", str(root)]) == 0
    gt_json = root / "annotations" / "cityscapes_panoptic_val.json"
    gt_dir = root / "annotations" / "cityscapes_panoptic_val"
    pred_json, pred_dir = make_predictions(root, tmp_path / "pred")

    theirs, their_counts = cityscapesscripts_eval(gt_json, gt_dir, pred_json, pred_dir, tmp_path / "cs.json",
                                                  monkeypatch)
    capsys.readouterr()
    assert main(["score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json", str(pred_json),
                 "--pred-dir", str(pred_dir), "--json", "--no-analysis"]) == 0
    scored = json.loads(capsys.readouterr().out)
    ours = pq_compute(str(gt_json), str(pred_json), str(gt_dir), str(pred_dir))

    # the case is not vacuous: every kind of outcome is there
    assert {cid for cid, c in their_counts.items() if c["tp"]} == {ROAD, PERSON, CAR}
    assert their_counts[CAR]["fp"] == 2 and their_counts[CAR]["fn"] == 2  # FP over road, the car moved too far
    assert their_counts[PERSON]["fn"] == 1 and their_counts[RIDER]["fp"] == 1  # the class changed
    assert their_counts[SIDEWALK]["fp"] == 1
    assert their_counts[BUILDING] == {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0}  # over VOID: ignored
    assert (theirs["All"]["n"], theirs["Things"]["n"], theirs["Stuff"]["n"]) == (5, 3, 2)

    # All, Things, Stuff: pq_compute's dict (fractions) and `panbench score --json` (0-100)
    assert scored["n_categories"] == {"All": 5, "Things": 3, "Stuff": 2}
    for group, key in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        assert ours[group]["n"] == theirs[group]["n"]
        for m in ("pq", "sq", "rq"):
            assert ours[group][m] == pytest.approx(theirs[group][m], rel=0, abs=TOL), (group, m)
            assert scored[m.upper() + key] == pytest.approx(100 * theirs[group][m], rel=0, abs=100 * TOL), (group, m)
    # every class (the 19 label ids): PQ, SQ, RQ, TP, FP, FN and the IoU sum (SQ x TP)
    assert set(ours["per_class"]) == set(theirs["per_class"]) == {int(c) for c in scored["per_class"]}
    for cid, t in theirs["per_class"].items():
        c, s = their_counts[cid], scored["per_class"][str(cid)]
        assert (s["TP"], s["FP"], s["FN"]) == (c["tp"], c["fp"], c["fn"]), cid
        for m in ("pq", "sq", "rq"):
            assert ours["per_class"][cid][m] == pytest.approx(t[m], rel=0, abs=TOL), (cid, m)
            if c["tp"] + c["fp"] + c["fn"]:  # else panbench says None (absent), cityscapesscripts 0
                assert s[m.upper()] == pytest.approx(100 * t[m], rel=0, abs=100 * TOL), (cid, m)
            else:
                assert s[m.upper()] is None and t[m] == 0
        assert (s["SQ"] or 0) / 100 * s["TP"] == pytest.approx(c["iou"], rel=0, abs=TOL), cid
