"""Post-processing on hand-made query outputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from panbench.models.postprocess import PostProcess, mask_wise_merge, pixel_argmax

BIG = 20.0  # logit that saturates sigmoid/softmax


def logits_for(probs: list[list[float]]) -> torch.Tensor:
    return torch.log(torch.tensor(probs))


def masks(*grids: list[list[int]]) -> torch.Tensor:
    """0/1 grids -> mask logits (+-BIG), or floats in (0, 1) -> their logit."""
    out = []
    for g in grids:
        t = torch.tensor(g, dtype=torch.float32)
        out.append(torch.where(t == 1, BIG, torch.where(t == 0, -BIG, torch.log(t / (1 - t)))))
    return torch.stack(out)


# 2 thing classes (0, 1), 1 stuff class (2); num_classes = 3, "no object" = 3
CLS = logits_for([[0.9, 0.03, 0.03, 0.04],   # q0: thing 0, p=0.9
                  [0.02, 0.8, 0.08, 0.1],    # q1: thing 1, p=0.8
                  [0.05, 0.05, 0.85, 0.05],  # q2: stuff 2, p=0.85
                  [0.01, 0.01, 0.01, 0.97]])  # q3: no object
M = masks([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]],
          [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]],
          [[0, 0, 0, 1], [0, 0, 0, 1], [1, 1, 1, 1]],
          [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]])


def test_mask_wise_merging_fills_by_confidence_and_removes_overlaps() -> None:
    pan = mask_wise_merge(CLS, M, 3, 2, PostProcess("maskwise", alpha=1.0, beta=1.0, conf_thr=0.5, keep_thr=0.4))
    # q0 (s=0.9) first, q2 (0.85) next, q1 (0.8) keeps 2 of its 4 pixels (0.5 >= 0.4); q3 is "no object"
    # but its best real class has p=0.01 -> below conf_thr
    expected = [[1000, 1000, 2001, 2], [1000, 1000, 2001, 2], [2, 2, 2, 2]]
    assert pan.tolist() == expected


def test_mask_wise_keep_threshold_drops_mostly_covered_masks() -> None:
    pan = mask_wise_merge(CLS, M, 3, 2, PostProcess("maskwise", alpha=1.0, beta=1.0, conf_thr=0.5, keep_thr=0.6))
    assert pan.tolist() == [[1000, 1000, 3, 2], [1000, 1000, 3, 2], [2, 2, 2, 2]]  # q1 dropped: VOID left


def test_confidence_uses_alpha_beta_and_mask_quality() -> None:
    cls = logits_for([[0.6, 0.1, 0.1, 0.2], [0.1, 0.7, 0.1, 0.1]])
    soft = masks([[0.6, 0.6], [0.6, 0.6]], [[0.9, 0.9], [0.9, 0.9]])
    # s0 = 0.6^a * 0.6^b, s1 = 0.7^a * 0.9^b; with a=b=1: 0.36 < 0.63 -> q1 wins every pixel
    pan = mask_wise_merge(cls, soft, 3, 2, PostProcess("maskwise", alpha=1.0, beta=1.0, conf_thr=0.0, keep_thr=0.5))
    assert pan.tolist() == [[1001, 1001], [1001, 1001]]
    assert math.isclose(0.7 * 0.9, 0.63)


def test_pixel_argmax_assigns_each_pixel_to_the_best_query() -> None:
    pan = pixel_argmax(CLS, M, 3, 2)
    # overlap pixels (0,1),(1,1): q0 0.9 beats q1 0.8; (0,3): q2; row 2: q2; (0,2): q1
    assert pan.tolist() == [[1000, 1000, 2001, 2], [1000, 1000, 2001, 2], [2, 2, 2, 2]]


def test_pixel_argmax_with_only_no_object_is_void() -> None:
    assert pixel_argmax(CLS[3:], M[3:], 3, 2).tolist() == [[3] * 4] * 3


def _argmax_painted_one_query_at_a_time(mask_cls, mask_pred, num_classes, num_things):
    """pixel-wise argmax as a loop: each query painted where it wins, in order (the rule's definition)."""
    import torch.nn.functional as F

    from panbench.models.postprocess import _paint

    p, labels = F.softmax(mask_cls.float(), dim=-1).max(-1)
    pan = torch.full(mask_pred.shape[-2:], num_classes, dtype=torch.int32)
    qs = torch.nonzero(labels != num_classes).flatten()
    if len(qs) == 0:
        return pan
    winner = (p[qs].view(-1, 1, 1) * mask_pred[qs].float().sigmoid()).argmax(0)
    instance = 1
    for k, q in enumerate(qs.tolist()):
        if (mask := winner == k).any():
            _, instance = _paint(pan, mask, int(labels[q]), num_things, instance)
    return pan


@pytest.mark.parametrize("seed", range(4))
def test_pixel_argmax_paints_as_the_query_by_query_loop(seed) -> None:
    from panbench.models.postprocess import pixel_argmax

    g = torch.Generator().manual_seed(seed)
    mask_cls = torch.randn(30, 8, generator=g) * 3  # 7 classes, 4 of them things; some queries "no object"
    mask_pred = torch.randn(30, 40, 50, generator=g) * 3
    got = pixel_argmax(mask_cls, mask_pred, 7, 4)
    want = _argmax_painted_one_query_at_a_time(mask_cls, mask_pred, 7, 4)
    assert got.dtype == want.dtype and torch.equal(got, want)
    assert len(torch.unique(got)) > 4  # things and stuff painted


@pytest.mark.parametrize("keep", [0.0, 0.6])
def test_maskwise_gives_a_stuff_segment_the_score_of_a_query_that_painted_pixels(keep) -> None:
    """With --pp-keep 0 a query whose mask is all taken has nothing left to paint: it is no part of its class's
    segment and does not lend it its score (in C and on the torch path alike)."""
    from panbench.models.postprocess import MaskStats, PostProcess, mask_wise_merge

    cls = torch.full((3, 9), -10.0)
    cls[0, 7], cls[1, 5], cls[2, 5] = 10.0, 5.0, 0.0  # stuff 7 first; then two queries of stuff 5
    pred = torch.full((3, 4, 4), -10.0)
    pred[0, :2], pred[1, :1], pred[2, 3:] = 10.0, 10.0, 10.0  # query 1 lies inside query 0's mask
    pp = PostProcess("maskwise", keep_thr=keep)
    m = pred.sigmoid()
    binary = m > 0.5
    torch_path = MaskStats(binary.flatten(1).sum(1), (m.double() * binary).flatten(1).sum(1), None, binary)
    for stats in (None, torch_path):
        scores: dict[int, float] = {}
        pan = mask_wise_merge(cls, pred, 8, 4, pp, scores, m, stats)
        assert sorted(torch.unique(pan).tolist()) == [5, 7, 8]
        p = torch.softmax(cls, -1)[2, 5].item() ** 0.25 * m[2, 3, 0].item()  # query 2's confidence
        assert scores[5] == pytest.approx(p, rel=1e-6) and scores[5] < torch.softmax(cls, -1)[1, 5].item() ** 0.25


def test_mask_paint_never_counts_or_paints_the_last_words_bits_past_the_pixels() -> None:
    """A mask's bits past its n pixels (the last word's) are never free: a query set only there paints nothing and
    nothing is written past the map's end."""
    import numpy as np

    from panbench.pq.extensions import load_extension

    merge = load_extension("panbench.models._merge")
    n = 70  # two words, the second with 6 pixels
    bits = np.zeros((2, 2), np.uint64)
    bits[0, 1] = np.uint64(0xFF) << np.uint64(6)  # query 0: only bits past the pixels
    bits[1, 0] = np.uint64(0b1011)  # query 1: pixels 0, 1 and 3
    room = np.full(n + 64, -7, np.int32)  # the map and room after it, to see a write past its end
    painted = merge.mask_paint(bits, 2, n, np.array([0, 1], np.int64), np.ones(2, np.float32),
                               np.array([5, -3], np.int32), room[:n])
    assert np.frombuffer(painted, np.int64).tolist() == [1]
    assert (room[n:] == -7).all() and np.flatnonzero(room[:n] != -7).tolist() == [0, 1, 3]
    assert (room[[0, 1, 3]] == 2 + 1000).all()  # a thing of label 2, the first painted
