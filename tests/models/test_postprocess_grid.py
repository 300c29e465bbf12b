"""``panbench.postprocess_grid`` (docs/api.md, "Post-processing grids"): one image's query outputs under every
setting of a grid, each equal to the model's own fusion or the merging rule run under that setting alone (nothing
shared), in the ids and segments a run writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import panbench
from panbench.errors import PanbenchError
from panbench.models.encoding import panoptic_to_segments
from panbench.models.mmdet.fast_fusion import maskformer_fusion
from panbench.models.postprocess import PostProcess, merge_queries

NUM_CLASSES, NUM_THINGS, Q = 9, 5, 24


def _outputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class logits whose top scores spread over (0, 1) and mask logits of a padded-away size."""
    g = torch.Generator().manual_seed(seed)
    mask_cls = torch.randn(Q, NUM_CLASSES + 1, generator=g) * torch.linspace(0.5, 6.0, Q)[:, None]
    return mask_cls, torch.randn(Q, 24, 32, generator=g) * 4


def _alone(mask_cls: torch.Tensor, mask_pred: torch.Tensor, values: dict, size: tuple[int, int] | None,
           cats: list[int]) -> tuple[np.ndarray, list[dict]]:
    """A setting run by itself, as a separate run's fusion head runs it."""
    pp_name, scores = values.get("postprocess", "default"), {}
    if pp_name == "default":
        pan = maskformer_fusion(mask_cls, mask_pred, NUM_CLASSES, NUM_THINGS,
                                values.get("model.test_cfg.object_mask_thr", 0.8),
                                values.get("model.test_cfg.iou_thr", 0.8),
                                values.get("model.test_cfg.filter_low_score", False), size, scores=scores)
    else:
        up = mask_pred if size is None else F.interpolate(mask_pred[:, None], size=size, mode="bilinear",
                                                          align_corners=False)[:, 0]
        pp = PostProcess(pp_name, keep_thr=values.get("pp_keep", PostProcess.keep_thr))
        pan = merge_queries(mask_cls, up, NUM_CLASSES, NUM_THINGS, pp, scores)
    return panoptic_to_segments(pan, NUM_CLASSES, cats, scores)


@pytest.mark.parametrize("size", [None, (50, 70)])
def test_every_setting_equals_the_fusion_run_alone(size) -> None:
    cats = [10 * (k + 1) for k in range(NUM_CLASSES)]
    grid = ["object_mask_thr=0.2,0.5,0.8", "iou_thr=0.3,0.8", "filter_low_score=False,True",
            "postprocess=default,maskwise,argmax", "pp_keep=0.3,0.6"]
    mask_cls, mask_pred = _outputs(0)
    got = panbench.postprocess_grid(mask_cls, mask_pred, grid, NUM_THINGS, size=size, label2cat=cats)
    assert len(got) == 3 * 2 * 2 + 2 + 1  # the thresholds go with the model's fusion, pp_keep with maskwise
    kinds = set()
    for r in got:
        values = dict(r.setting.values)
        ids, segments = _alone(mask_cls, mask_pred, values, size, cats)
        assert np.array_equal(r.ids, ids) and r.segments == segments, r.setting.label()
        assert all(0 < s["score"] <= 1 for s in segments)  # every segment of these rules has its query's score
        kinds.add((values["postprocess"], len(segments)))
    assert len({n for _, n in kinds}) > 3  # the settings made different maps


def test_a_grid_given_as_a_dict_and_a_bad_key_refused() -> None:
    mask_cls, mask_pred = _outputs(1)
    got = panbench.postprocess_grid(mask_cls, mask_pred, {"object_mask_thr": [0.3, 0.9]}, NUM_THINGS)
    assert [r.setting.label() for r in got] == ["object_mask_thr=0.3", "object_mask_thr=0.9"]
    assert got[0].ids.dtype == np.uint32 and got[0].ids.shape == (24, 32)
    with pytest.raises(PanbenchError, match="not a post-processing key"):
        panbench.postprocess_grid(mask_cls, mask_pred, {"mask_overlap": [0.5]}, NUM_THINGS)


def test_argmax_in_a_grid_decides_again_the_pixels_its_own_sigmoid_rounds_apart_from_the_shared_one() -> None:
    """Every query alike (one class row, one mask): each pixel is a tie that the rounding of its elements decides,
    and pixel-wise argmax sigmoids its queries as a tensor of their own, rounded by place apart from the shared
    probabilities (fast_fusion.sigmoid_as_in); the grid's argmax, on this process's threads, still equals the rule run
    alone on one thread (the rounding panbench defines for every layout).  The mask's last rows hold a value that
    torch's scalar code rounds above its vector code, and 121 columns leave the rule's tensor a scalar tail under
    a block of 8, 16 or 32, so the last query wins pixels there that the shared probabilities give the first."""
    from panbench.models.mmdet.fast_fusion import GridFusion, _scalar_sigmoid, _sigmoid_block
    from panbench.models.postprocess import argmax_queries

    g = torch.Generator().manual_seed(3)
    q, size = 40, (90, 121)  # 40 x 90 x 121 elements: above a thread's grain, so torch splits the sigmoid
    row = torch.randn(NUM_CLASSES + 1, generator=g)
    row[-1] = -9.0  # not "no object"
    mask_cls = row.repeat(q, 1)
    mask_cls[:7, -1] = 9.0  # seven queries "no object": the rule's tensor is not the shared one
    mask_pred = torch.randn(45, 60, generator=g) * 6
    values = torch.linspace(-9.0, 9.0, 8192)
    higher = values[_scalar_sigmoid(values) > values.sigmoid()]
    if len(higher):
        mask_pred[-6:] = higher[0]
    mask_pred = mask_pred.repeat(q, 1, 1)
    up = F.interpolate(mask_pred[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        want = merge_queries(mask_cls, up, NUM_CLASSES, NUM_THINGS, PostProcess("argmax"))
        qs, p, _ = argmax_queries(mask_cls, NUM_CLASSES)
        plain = (p.view(-1, 1, 1) * up[qs].sigmoid()).argmax(0)
        torch.set_num_threads(max(threads, 2))  # the fusion on more than one thread: torch splits its sigmoid
        fusion = GridFusion(mask_cls, mask_pred, NUM_CLASSES, NUM_THINGS, [{"object_mask_thr": 0.0}] * 2,
                            [PostProcess(), PostProcess("argmax")], size)
        assert torch.equal(fusion.panoptic(1), want)
        if _sigmoid_block() and len(higher):  # this CPU's sigmoid rounds apart by place: the shared owner is wrong
            assert (up[:, -2:] == higher[0]).all()
            assert not torch.equal(fusion.probs.owner(qs, p), plain)
            assert torch.equal(fusion.argmax_owner(qs, p), plain)
    finally:
        torch.set_num_threads(threads)
