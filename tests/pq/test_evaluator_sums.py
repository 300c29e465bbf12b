"""The evaluator is the only writer of its sums: images, other processes' sums and all-reduced
sums go in through its methods, and the result equals scoring every image in one evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.pq.evaluator import PanopticEvaluator, score_image
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
    a.add(score_image(CATS, *images[0], "image 0"))  # scored elsewhere (the resume cache)
    a.process(*images[1])
    for im in images[2:]:
        b.process(*im)
    a.merge(b.stats)  # another process's sums
    assert a.evaluate() == whole.evaluate()
    c = PanopticEvaluator(CATS)
    c.replace_with_reduced(a.sums_array())  # what torch.distributed's all-reduce hands back
    assert c.stats == whole.stats


def test_the_sums_cannot_be_replaced_from_outside() -> None:
    ev = PanopticEvaluator(CATS)
    with pytest.raises(AttributeError):
        ev.stats = PQStats.zeros(len(CATS))  # type: ignore[misc]
