"""Ground-truth PNG ids that ``segments_info`` does not list are scored as panopticapi scores them
(neither matched nor VOID: a prediction overlapping them keeps them in its union), equal to
panopticapi and hotcoco on the C kernels and on their numpy twins (tests/kernel_references.py); ``--strict``
refuses them in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import panopticapi_reference
from helpers import GENERATED_CATS as CATS
from kernel_references import numpy_kernels

from panbench.cli import main
from panbench.data.synth import PanopticImage, write_panoptic
from panbench.pq import batch
from panbench.pq.matching import METRIC_KEYS
from panbench.pq.score import score_files

THING, STUFF = CATS[0]["id"], CATS[1]["id"]


def _img(rows: list[list[int]], segs: list[tuple[int, int]], unlisted: tuple[int, ...] = ()) -> PanopticImage:
    ids = np.array(rows, np.uint32)
    info = [{"id": i, "category_id": c, "iscrowd": 0, "area": int((ids == i).sum())} for i, c in segs]
    assert all((ids == u).any() for u in unlisted)
    return PanopticImage(ids, info)


def _files(tmp_path: Path):
    # GT id 9 (2 px in image 1) and id 40 (3 px in image 2) are in no segment of segments_info.
    # Image 1: prediction 5 covers GT segment 5 (4 px) and the 2 unlisted px: IoU 4/6 keeps the match only
    # because the unlisted pixels stay in its union (as VOID they would leave it: IoU 1).
    gt1 = _img([[5, 5, 9, 9], [5, 5, 7, 7], [7, 7, 7, 7]], [(5, THING), (7, STUFF)], unlisted=(9,))
    pr1 = _img([[5, 5, 5, 5], [5, 5, 8, 8], [8, 8, 8, 8]], [(5, THING), (8, STUFF)])
    # Image 2: prediction 3 lies mostly on unlisted pixels: a false positive (they are not VOID).
    gt2 = _img([[1, 1, 1, 40], [1, 1, 40, 40], [2, 2, 2, 2]], [(1, THING), (2, STUFF)], unlisted=(40,))
    pr2 = _img([[1, 1, 1, 3], [1, 1, 3, 3], [2, 2, 2, 2]], [(1, THING), (3, THING), (2, STUFF)])
    gt_json, gt_dir = write_panoptic(tmp_path, "gt", [(1, gt1), (2, gt2)], CATS)
    pred_json, pred_dir = write_panoptic(tmp_path, "pred", [(1, pr1), (2, pr2)], CATS)
    return gt_json, gt_dir, pred_json, pred_dir


def _hotcoco(gt_json, gt_dir, pred_json, pred_dir) -> dict:
    from hotcoco.panoptic import PanopticEval

    ev = PanopticEval(str(gt_json), str(pred_json), gt_folder=str(gt_dir), pred_folder=str(pred_dir))
    ev.evaluate()
    return ev.results()


@pytest.mark.parametrize("path", ["native", "numpy"])
def test_unlisted_ground_truth_ids_score_as_panopticapi_and_hotcoco(tmp_path: Path, monkeypatch, path) -> None:
    if path == "numpy":
        numpy_kernels(monkeypatch)
        monkeypatch.setattr(batch, "available", lambda: False)  # the per-image path, where the twins run
    files = _files(tmp_path)
    ours = score_files(*files)
    ref = panopticapi_reference(*files)
    for k in METRIC_KEYS:
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k
    for cid, r in ref["per_class"].items():
        o = ours["per_class"][cid]
        assert (o["TP"], o["FP"], o["FN"]) == (r["TP"], r["FP"], r["FN"]), cid
        assert o["PQ"] == pytest.approx(r["PQ"], abs=1e-9), cid
    thing = ours["per_class"][str(THING)]
    assert (thing["TP"], thing["FP"]) == (2, 1)  # the match of image 1 kept, the prediction of image 2 a FP
    assert ours["unlisted_gt"] == {"pixels": 5, "images": 2}
    hc = _hotcoco(*files)
    for group, sfx in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        assert 100 * hc[group]["pq"] == pytest.approx(ours["PQ" + sfx], abs=1e-9), group
        assert 100 * hc[group]["sq"] == pytest.approx(ours["SQ" + sfx], abs=1e-9), group


def test_unlisted_ground_truth_ids_are_counted_by_score_and_refused_with_strict(tmp_path: Path, capsys) -> None:
    gt_json, gt_dir, pred_json, pred_dir = _files(tmp_path)
    base = ["score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json", str(pred_json),
            "--pred-dir", str(pred_dir), "--json"]
    assert main(base) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)  # the analysis path (per-image matches kept) scores them as score_files does
    assert res["unlisted_gt"] == {"pixels": 5, "images": 2}
    plain = score_files(gt_json, gt_dir, pred_json, pred_dir)
    assert [res[k] for k in METRIC_KEYS] == [plain[k] for k in METRIC_KEYS]
    assert "5 ground-truth pixels of 2 image(s)" in err and "--strict" in err
    assert main([*base, "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert "PNG segment id 9 is absent from segments_info" in err and "\n" not in err
    assert main([*base, "--strict", "--no-analysis"]) == 2
    assert "absent from segments_info" in capsys.readouterr().err
