"""The evaluator is the only writer of its sums: images, other processes' sums and all-reduced
sums go in through its methods, and the result equals scoring every image in one evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.pq.evaluator import PanopticEvaluator, score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats

CATS = CategoryTable([1, 2], ["a", "b"], [True, False])


def _image(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 3, (16, 16)).astype(np.uint32)
    pred = gt.copy()
    pred[rng.random((16, 16)) < 0.2] = 0
    info = [{"id": 1, "category_id": 1, "iscrowd": 0}, {"id": 2, "category_id": 2, "iscrowd": 0}]
    keep = [s for s in info if (gt == s["id"]).any()]
    keep_p = [s for s in info if (pred == s["id"]).any()]
    for s in keep:
        s["area"] = int((gt == s["id"]).sum())
    return gt, keep, pred, keep_p


def test_add_merge_and_reduced_sums_equal_one_evaluator() -> None:
    images = [_image(k) for k in range(4)]
    whole = PanopticEvaluator(CATS)
    for im in images:
        whole.process(*im)
    a, b = PanopticEvaluator(CATS), PanopticEvaluator(CATS)
    a.add(score_pair(CATS, *images[0], "image 0"))  # scored elsewhere (the resume cache)
    a.process(*images[1])
    for im in images[2:]:
        b.process(*im)
    a.merge(b.stats)  # another process's sums
    assert a.evaluate() == whole.evaluate()
    assert PQStats.from_array(a.sums_array()) == whole.stats  # what crosses process boundaries


def test_the_sums_cannot_be_replaced_from_outside() -> None:
    ev = PanopticEvaluator(CATS)
    with pytest.raises(AttributeError):
        ev.stats = PQStats.zeros(len(CATS))  # type: ignore[misc]


@pytest.mark.parametrize("batch", [1, 3, 2**22])
def test_adding_images_at_once_gives_the_sums_of_adding_them_one_by_one(monkeypatch: pytest.MonkeyPatch,
                                                                          batch: int) -> None:
    """Every field (IoU fraction and carry, TP/FP/FN, confusion, unlisted pixels, images), whatever the batch
    after which add_images carries the IoU fraction."""
    from panbench.pq import sums
    from panbench.pq.matching import ImageStats

    monkeypatch.setattr(sums, "_BATCH_MATCHES", batch)
    rng = np.random.default_rng(3)
    images = []
    for k in range(40):
        n_tp, n_sem = int(rng.integers(0, 5)), int(rng.integers(0, 4))
        images.append(ImageStats(
            tp_cats=rng.integers(0, 2, n_tp), tp_ious=rng.uniform(0.5, 1.0, n_tp), fn_cats=rng.integers(0, 2, k % 3),
            fp_cats=rng.integers(0, 2, k % 2), sem_gt=rng.integers(-1, 2, n_sem), sem_pred=rng.integers(-1, 2, n_sem),
            sem_px=rng.integers(1, 100, n_sem),
            unlisted_px=np.array([k], np.int64) if k % 7 == 1 else np.zeros(0, np.int64)))
    one_by_one, at_once = PQStats.zeros(2), PQStats.zeros(2)
    for s in images:
        one_by_one.add_image(s)
    at_once.add_images(images)
    assert at_once == one_by_one and at_once.n_images == 40
    assert at_once.unlisted.tolist() == [1 + 8 + 15 + 22 + 29 + 36, 6]
    assert at_once.iou_int.sum() > 0 and (at_once.iou < 2**sums.IOU_BITS).all()  # carried


def test_sums_survive_pickling_with_a_sparse_confusion_matrix() -> None:
    import pickle

    stats = PQStats.zeros(133)
    stats.conf[3, 7], stats.conf[133, 0], stats.iou[5], stats.n_images = 11, 2**40, 9, 4
    data = pickle.dumps(stats)
    back = pickle.loads(data)
    assert back == stats and back.n_images == 4 and back.conf.shape == (134, 134) and back.conf[133, 0] == 2**40
    assert len(data) < 134 * 134 * 8 / 10  # sparse: not the dense matrix
