"""PQ by object size and PQ-dagger on hand-built images; PQ-dagger equals torchmetrics'
ModifiedPanopticQuality on crowd-free images without predicted VOID."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_cases import TABLE, infos, one_set, paint

from panbench.analysis import AnalysisSet, pq_by_size, pq_dagger
from panbench.analysis.collect import Totals
from panbench.analysis.metrics import size_bucket
from panbench.data.synth import coco_like_categories, perturb, random_image
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats, pq_summary


def test_size_bucket_limits_are_cocos() -> None:
    assert size_bucket(np.array([0, 1023, 1024, 9215, 9216, 10**9])).tolist() == [0, 0, 1, 1, 2, 2]


def size_image():
    # stuff S (gt id 5, pred id 50) everywhere else; things A = 1, B = 3
    gt = paint((160, 160), [(5, 0, 160, 0, 160), (30, 0, 100, 0, 100),  # B 10000 px: large
                            (10, 110, 142, 110, 142),  # A 1024 px: medium
                            (11, 0, 30, 110, 140),  # A 900 px: small, missed
                            (31, 145, 155, 145, 155)])  # B 100 px: small
    pred = paint((160, 160), [(50, 0, 160, 0, 160), (60, 0, 90, 0, 100),  # B 9000 px on the large B
                              (40, 110, 142, 110, 141),  # A 992 px (a small area) on the medium A
                              (41, 140, 150, 10, 20),  # A 100 px on stuff: small FP
                              (61, 105, 138, 20, 53),  # B 1089 px on stuff: medium FP
                              (62, 145, 155, 145, 155)])  # B exact: small TP
    return (gt, infos(gt, {5: 7, 30: 3, 10: 1, 11: 1, 31: 3}),
            pred, infos(pred, {50: 7, 60: 3, 40: 1, 41: 1, 61: 3, 62: 3}, gt=False))


def test_pq_by_size_hand_built() -> None:
    out = pq_by_size(one_set(size_image()), TABLE.isthing)
    # small: A (FP + FN, PQ 0, SQ 0, RQ 0) and B (TP IoU 1)
    assert out["small"] == pytest.approx({"PQ": 50.0, "SQ": 50.0, "RQ": 50.0, "n": 2, "segments": 2})
    # medium: A TP of IoU 992/1024 (its ground truth is medium, the prediction small), B FP 1089 px
    assert out["medium"] == pytest.approx({"PQ": 50 * 992 / 1024, "SQ": 50 * 992 / 1024, "RQ": 50.0, "n": 2,
                                           "segments": 1})
    assert out["large"] == pytest.approx({"PQ": 90.0, "SQ": 90.0, "RQ": 100.0, "n": 1, "segments": 1})


def test_size_bucket_of_tp_and_fn_is_the_json_area() -> None:
    gt, gi, pred, pi = size_image()
    for s in gi:
        if s["id"] == 11:
            s["area"] = 2000  # JSON says medium although 900 pixels are painted
    out = pq_by_size(one_set((gt, gi, pred, pi)), TABLE.isthing)
    assert out["small"]["segments"] == 1 and out["medium"]["segments"] == 2


def test_a_tp_goes_by_its_json_area_not_its_pixels() -> None:
    """A thing of 1000 painted pixels whose JSON area is 1024 (COCO's areas count pixels the PNG may not
    show), predicted exactly: a TP (IoU 1000 / 1024) in the medium bucket, not the small one."""
    gt = paint((64, 64), [(5, 0, 64, 0, 64), (10, 0, 25, 0, 40)])
    pred = paint((64, 64), [(50, 0, 64, 0, 64), (20, 0, 25, 0, 40)])
    gi = infos(gt, {5: 7, 10: 1})
    next(s for s in gi if s["id"] == 10)["area"] = 1024
    a = one_set((gt, gi, pred, infos(pred, {50: 7, 20: 1}, gt=False)))
    assert a.tp_area.tolist() == [3096, 1024] and len(a.fn_cats) == 0  # S, then A at its JSON area
    out = pq_by_size(a, TABLE.isthing)
    assert out["medium"] == pytest.approx({"PQ": 100 * 1000 / 1024, "SQ": 100 * 1000 / 1024, "RQ": 100.0, "n": 1,
                                           "segments": 1})
    assert out["small"]["segments"] == 0


def test_pq_dagger_stuff_rule_hand_built() -> None:
    # gt: S (id 5) 100 px, T (id 6) 100 px; pred: S covers 40 of S (IoU 0.4), T covers all of T and S's rest
    gt = paint((10, 20), [(5, 0, 10, 0, 10), (6, 0, 10, 10, 20)])
    pred = paint((10, 20), [(50, 0, 10, 0, 4), (60, 0, 10, 4, 20)])
    a = one_set((gt, infos(gt, {5: 7, 6: 9}), pred, infos(pred, {50: 7, 60: 9}, gt=False)))
    out = pq_dagger(a, TABLE.isthing)
    # S: IoU 0.4 (no 0.5 threshold), T: IoU 100/160; no thing present
    assert out["PQ_dagger"] == pytest.approx(100 * (0.4 + 100 / 160) / 2)
    assert out["PQ_dagger_st"] == out["PQ_dagger"] and out["PQ_dagger_th"] == 0.0


def test_pq_dagger_things_are_pq() -> None:
    a = one_set(size_image())
    t = Totals.of(a)
    iou, tp, fp, fn = t.iou, t.tp, t.fp, t.fn
    things = np.array(TABLE.isthing)
    ref = pq_summary(PQStats(np.rint(iou * 2**40).astype(np.int64), tp, fp, fn), TABLE.ids, TABLE.isthing)
    assert pq_dagger(a, TABLE.isthing)["PQ_dagger_th"] == pytest.approx(ref["PQ_th"], abs=1e-9)
    assert 0 < ref["PQ_th"] < 100 and things.sum() == 2  # both things present, neither perfect: a real check


def _merge_stuff(ids: np.ndarray, info: list[dict], stuffs: set[int]) -> list[dict]:
    """One segment per stuff category (torchmetrics merges a stuff category's instances)."""
    first: dict[int, dict] = {}
    out = []
    for s in info:
        cid = s["category_id"]
        if cid in stuffs and cid in first:
            ids[ids == s["id"]] = first[cid]["id"]
            continue
        if cid in stuffs:
            first[cid] = s
        out.append(dict(s))
    for s in out:
        s["area"] = int((ids == s["id"]).sum())
    return out


def _to_cat_instance(ids: np.ndarray, info: list[dict]) -> np.ndarray:
    """An id map as torchmetrics' (category id, instance id) pairs; VOID is category 0."""
    out = np.zeros(ids.shape + (2,), np.int64)
    for k, s in enumerate(info):
        m = ids == s["id"]
        out[m, 0] = s["category_id"]
        out[m, 1] = k + 1
    return out


@pytest.mark.parametrize("seed", range(4))
def test_pq_dagger_equals_torchmetrics(seed: int) -> None:
    import torchmetrics.detection as tm  # a test dependency (make setup installs it): never a silent skip
    torch = pytest.importorskip("torch")
    cats_json = coco_like_categories(5, 4)
    cats = CategoryTable.from_coco(cats_json)
    things = {c["id"] for c in cats_json if c["isthing"]}
    stuffs = {c["id"] for c in cats_json if not c["isthing"]}
    rng = np.random.default_rng(seed)
    metric = tm.ModifiedPanopticQuality(things=things, stuffs=stuffs, allow_unknown_preds_category=True)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torchmetrics divides int tensors: float64 IoUs, as panbench's
    try:
        tm_value = _feed(metric, torch, rng, cats_json, cats, stuffs)
    finally:
        torch.set_default_dtype(default)
    ours = pq_dagger(AnalysisSet.from_images(tm_value[1], len(cats)), cats.isthing)["PQ_dagger"]
    assert ours == pytest.approx(100 * tm_value[0], abs=1e-9)


def test_predicted_void_is_where_torchmetrics_and_panopticapi_part() -> None:
    """Why the comparison above fills predicted VOID: torchmetrics also takes the ground truth's pixels
    predicted VOID out of the union, panopticapi (and panbench) do not.  A thing of 50 px predicted on 30 px,
    its other 20 px VOID: IoU 30 / 30 = 1 for torchmetrics (PQ and PQ-dagger alike), 30 / 50 for panopticapi."""
    import torch
    import torchmetrics.detection as tm

    gt = paint((10, 10), [(5, 0, 10, 0, 10), (1, 0, 10, 0, 5)])  # S everywhere, A on the left half
    pred = paint((10, 10), [(5, 0, 10, 5, 10), (1, 0, 10, 0, 3)])  # A on 30 px, VOID on A's other 20 px
    cats = {1: 1, 5: 7}
    gi, pi = infos(gt, cats), infos(pred, cats, gt=False)
    pair = [torch.tensor(_to_cat_instance(m, info)[None]) for m, info in ((pred, pi), (gt, gi))]
    for metric in (tm.PanopticQuality, tm.ModifiedPanopticQuality):
        m = metric(things={1, 3}, stuffs={7, 9}, allow_unknown_preds_category=True)
        m.update(*pair)
        assert float(m.compute()) == 1.0  # A: IoU 1; S: IoU 1
    stats = score_pair(TABLE, gt, gi, pred, pi, "void image").stats
    assert stats.tp_ious.tolist() == [0.6, 1.0]  # panopticapi's IoUs: A 30 / 50, S 50 / 50
    assert pq_dagger(one_set((gt, gi, pred, pi)), TABLE.isthing)["PQ_dagger"] == pytest.approx(80.0)


def _feed(metric, torch, rng, cats_json, cats, stuffs):
    recs = []
    for _ in range(4):
        gt = random_image(rng, 48, 64, cats_json, crowd_prob=0.0)
        pred = perturb(rng, gt, cats_json)
        # crowd-free, and no predicted VOID: torchmetrics also takes predicted-VOID pixels out of the union
        holes = pred.ids == 0
        if holes.any():
            extra = 16777000
            pred.ids[holes] = extra
            pred.segments_info.append({"id": extra, "category_id": min(stuffs), "iscrowd": 0})
        gt.segments_info[:] = _merge_stuff(gt.ids, gt.segments_info, stuffs)
        pred.segments_info[:] = _merge_stuff(pred.ids, pred.segments_info, stuffs)
        match = score_pair(cats, gt.ids, gt.segments_info, pred.ids, pred.segments_info).match
        recs.append(match)
        metric.update(torch.from_numpy(_to_cat_instance(pred.ids, pred.segments_info))[None],
                      torch.from_numpy(_to_cat_instance(gt.ids, gt.segments_info))[None])
    return float(metric.compute()), recs
