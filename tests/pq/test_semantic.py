"""Semantic metrics from panoptic outputs (pixel accuracy, mIoU, mean Dice) against an independent
per-pixel reference on the same label maps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panbench.data.synth import coco_like_categories, perturb, random_image
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable

CATS = coco_like_categories(5, 4)
TABLE = CategoryTable.from_coco(CATS)


def semantic_map(ids: np.ndarray, segments: list[dict]) -> np.ndarray:
    """Category index per pixel, -1 for VOID."""
    out = np.full(ids.shape, -1, np.int64)
    for s in segments:
        out[ids == s["id"]] = TABLE.index[s["category_id"]]
    return out


def reference(pairs) -> dict[str, float]:
    """Straightforward per-class pixel counting over all images."""
    c = len(TABLE)
    tp, gt_n, pred_n = np.zeros(c), np.zeros(c), np.zeros(c)
    correct = labelled = 0
    for g, p in pairs:
        gs, ps = semantic_map(g.ids, g.segments_info), semantic_map(p.ids, p.segments_info)
        valid = gs >= 0
        correct += int((gs[valid] == ps[valid]).sum())
        labelled += int(valid.sum())
        for k in range(c):
            gk, pk = (gs == k) & valid, (ps == k) & valid
            tp[k] += (gk & pk).sum()
            gt_n[k] += gk.sum()
            pred_n[k] += pk.sum()
    present = gt_n + pred_n > 0
    iou = tp[present] / (gt_n + pred_n - tp)[present]
    dice = 2 * tp[present] / (gt_n + pred_n)[present]
    return {"pixel_acc": 100 * correct / labelled, "mIoU": 100 * iou.mean(), "mDice": 100 * dice.mean()}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_semantic_metrics_match_the_reference(seed, n) -> None:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        g = random_image(rng, int(rng.integers(20, 60)), int(rng.integers(20, 60)), CATS)
        pairs.append((g, perturb(rng, g, CATS)))
    ev = PanopticAccumulator(TABLE)
    for g, p in pairs:
        ev.add(score_pair(ev.categories, g.ids, g.segments_info, p.ids, p.segments_info))
    ours, ref = ev.evaluate(), reference(pairs)
    for k in ("pixel_acc", "mIoU", "mDice"):
        assert ours[k] == pytest.approx(ref[k], abs=1e-9), k


def test_perfect_prediction_scores_100() -> None:
    g = random_image(np.random.default_rng(1), 40, 50, CATS)
    ev = PanopticAccumulator(TABLE)
    ev.add(score_pair(ev.categories, g.ids, g.segments_info, g.ids, g.segments_info))
    res = ev.evaluate()
    assert res["pixel_acc"] == res["mIoU"] == res["mDice"] == 100.0
