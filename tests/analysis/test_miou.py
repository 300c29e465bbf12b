"""mIoU of a semantic output: the confusion matrix and mIoU equal torchmetrics' and mmseg's rule on random data,
parts of any split add to the same integers, and a semantic map painted from a panoptic prediction gives the
panoptic-derived mIoU of PQStats exactly (one rule for both sources)."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.analysis.semantic import SemanticConfusion, miou_fields
from panbench.data.synth import coco_like_categories, perturb, random_image
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable


def mmseg_miou(gts: list[np.ndarray], preds: list[np.ndarray], n: int, ignore: int = 255) -> float:
    """mmseg's ``intersect_and_union`` summed over images, then ``nanmean(intersect / union)`` (float64)."""
    inter, union = np.zeros(n), np.zeros(n)
    for g, p in zip(gts, preds):
        keep = g != ignore
        g, p = g[keep], p[keep]
        i = np.histogram(p[p == g], bins=n, range=(0, n - 1))[0]
        ap, al = np.histogram(p, bins=n, range=(0, n - 1))[0], np.histogram(g, bins=n, range=(0, n - 1))[0]
        inter += i
        union += ap + al - i
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * float(np.nanmean(inter / union))


def random_maps(seed: int, n: int, void: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(5):
        shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
        g = rng.integers(0, n - 2, shape)  # the last two categories absent from the ground truth
        p = np.where(rng.random(shape) < 0.6, g, rng.integers(0, n - 1, shape))  # the last: in neither
        if void:
            g[rng.random(shape) < 0.1] = 255
            p[rng.random(shape) < 0.05] = 255  # a VOID prediction on a labelled pixel: a miss
        gts.append(g)
        preds.append(p)
    return gts, preds


def confusion(gts: list[np.ndarray], preds: list[np.ndarray], n: int) -> SemanticConfusion:
    c = SemanticConfusion(list(range(n)))
    for g, p in zip(gts, preds):
        c.add(np.where(g == 255, -1, g), np.where(p == 255, -1, p))
    return c


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miou_is_mmsegs_rule_with_void_and_absent_categories(seed: int) -> None:
    gts, preds = random_maps(seed, 12, void=True)
    assert abs(confusion(gts, preds, 12).metrics()["mIoU"] - mmseg_miou(gts, preds, 12)) <= 1e-12


@pytest.mark.parametrize("seed", [3, 4])
def test_confusion_and_miou_equal_torchmetrics(seed: int) -> None:
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    n = 9
    gts, preds = random_maps(seed, n, void=False)
    ours = confusion(gts, preds, n)
    cm = tm.MulticlassConfusionMatrix(num_classes=n)
    jac = tm.MulticlassJaccardIndex(num_classes=n, average="none")
    for g, p in zip(gts, preds):
        cm.update(torch.as_tensor(p.ravel()), torch.as_tensor(g.ravel()))
        jac.update(torch.as_tensor(p.ravel()), torch.as_tensor(g.ravel()))
    assert np.array_equal(ours.conf[:n, :n], cm.compute().numpy())  # the integers, exactly
    per_class = jac.compute().double().numpy()
    present = ours.conf[:n].sum(1) + ours.conf[:, :n].sum(0) > 0
    assert abs(ours.metrics()["mIoU"] - 100 * per_class[present[:n]].mean()) <= 1e-5  # torchmetrics divides in fp32
    assert abs(ours.metrics()["mIoU"] - mmseg_miou(gts, preds, n)) <= 1e-12


def test_parts_of_any_split_add_to_the_same_matrix() -> None:
    gts, preds = random_maps(5, 10, void=True)
    whole = confusion(gts, preds, 10)
    parts = confusion(gts[3:], preds[3:], 10) + confusion(gts[:3], preds[:3], 10)
    assert np.array_equal(parts.conf, whole.conf) and parts.n_images == 5
    assert parts.metrics() == whole.metrics()


def test_a_semantic_map_painted_from_the_panoptic_prediction_gives_the_panoptic_miou() -> None:
    rng = np.random.default_rng(6)
    cats = coco_like_categories()
    table = CategoryTable.from_coco(cats)
    ev = PanopticAccumulator(table)
    sem = SemanticConfusion(table.ids)
    for _ in range(4):
        gt = random_image(rng, 60, 80, cats)
        pred = perturb(rng, gt, cats)
        gt.segments_info.pop()  # an id the ground truth's segments_info does not list: not counted
        ev.add(score_pair(ev.categories, gt.ids, gt.segments_info, pred.ids, pred.segments_info))
        pred_cats = np.full(pred.ids.shape, -1)  # VOID: -1
        for s in pred.segments_info:
            pred_cats[pred.ids == s["id"]] = s["category_id"]
        sem.add_image(gt.ids, gt.segments_info, pred_cats)
    res = ev.evaluate()
    assert np.array_equal(sem.conf[:-1], ev.stats.conf[:-1])
    assert sem.metrics() == {k: res[k] for k in ("pixel_acc", "mIoU", "mDice")}
    assert miou_fields(res, sem) == {"miou": res["mIoU"], "miou_source": "semantic"}
    assert miou_fields(res) == {"miou": res["mIoU"], "miou_source": "panoptic"}


def test_category_maps_with_unknown_ids_and_an_image_without_segments() -> None:
    c = SemanticConfusion([3, 8, 5])
    assert c.indices(np.array([[8, 3], [-1, 99]])).tolist() == [[1, 0], [-1, -1]]
    assert c.indices(np.array([4, 5])).tolist() == [-1, 2]
    ids = np.array([[0, 7], [9, 7]], np.uint32)
    assert c.gt_indices(ids, [{"id": 7, "category_id": 5}]).tolist() == [[-1, 2], [-1, 2]]
    assert c.gt_indices(ids, []).tolist() == [[-1, -1], [-1, -1]]
