"""panbench's vectorized panoptic fusion gives mmdet's maps pixel for pixel: MaskFormer/Mask2Former's
(``MaskFormerFusionHead``) and PanopticFPN's (``HeuristicFusionHead``), on generated query outputs
(ties, empty masks, thresholds), on the demo models and on the full-size zoo models with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from panbench.models.mmdet.family import install_fusion
from panbench.models.mmdet.fast_fusion import heuristic_fusion, maskformer_fusion

N_TH, N_ST = 3, 2
N_CLS = N_TH + N_ST


def mmdet_maskformer(mask_cls, mask_pred, out_size, **cfg):
    from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
    from mmengine.config import ConfigDict

    head = MaskFormerFusionHead(N_TH, N_ST, test_cfg=ConfigDict(cfg))
    up = F.interpolate(mask_pred[:, None], size=out_size, mode="bilinear", align_corners=False)[:, 0]
    return head.panoptic_postprocess(mask_cls, up).sem_seg[0]


def mmdet_heuristic(scores, labels, masks, seg, mask_overlap, stuff_area_limit):
    from mmdet.models.seg_heads.panoptic_fusion_heads import HeuristicFusionHead
    from mmengine.config import ConfigDict
    from mmengine.structures import InstanceData

    head = HeuristicFusionHead(N_TH, N_ST, test_cfg=ConfigDict(mask_overlap=mask_overlap,
                                                               stuff_area_limit=stuff_area_limit))
    res = InstanceData(bboxes=torch.zeros(len(scores), 4), scores=scores, labels=labels, masks=masks)
    return head._predict_single(res, seg.clone()).sem_seg[0]


@st.composite
def query_outputs(draw):
    """Q queries over an h x w map: class logits from a few levels (ties between queries and classes),
    mask logits as rectangles on a background (empty, full, overlapping, equal masks), thresholds."""
    q = draw(st.integers(0, 7))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = np.array([-3.0, 0.0, 2.0, 6.0, 9.0])
    cls = torch.tensor(levels[rng.integers(0, len(levels), (q, N_CLS + 1))], dtype=torch.float32)
    pred = torch.full((q, h, w), float(draw(st.sampled_from([-6.0, -0.0, -20.0]))))
    for k in range(q):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        pred[k, y0: y0 + rng.integers(0, h + 1), x0: x0 + rng.integers(0, w + 1)] = float(rng.choice([0.0, 3.0, 8.0]))
    if q > 1 and draw(st.booleans()):  # two identical queries: argmax ties go to the first
        cls[1], pred[1] = cls[0], pred[0]
    out = (draw(st.integers(1, 12)), draw(st.integers(1, 12))) if draw(st.booleans()) else (h, w)
    cfg = {"object_mask_thr": draw(st.sampled_from([0.0, 0.5, 0.8, 0.95])),
           "iou_thr": draw(st.sampled_from([0.0, 0.5, 0.8, 1.0])), "filter_low_score": draw(st.booleans())}
    return cls, pred, out, cfg


def _equal_queries_case():
    """Two equal queries (one class, score exactly 1) over 1 x 27 masks of a logit that torch's CPU sigmoid rounds one
    ulp apart in its vector and its scalar code, two more queries dropped: mmdet sigmoids the 4 x 27 masks, all of the
    second query's pixels with vector code (AVX2's and AVX512's blocks of 16 and 32), panbench before its fix the
    2 x 27 kept ones, where its last pixels are the scalar tail: the second query won those pixels' argmax tie."""
    from panbench.models.mmdet.fast_fusion import _scalar_sigmoid

    x = torch.linspace(0.0, 9.0, 8192)  # positive: the masks cover their pixels
    differ = (x.sigmoid() != _scalar_sigmoid(x)).nonzero()
    logit = float(x[differ[0, 0]]) if len(differ) else 0.5000002384185791
    cls = torch.tensor([[30.0, 0, 0, 0, 0, 0]] * 2 + [[0, 0, 0, 0, 0, 30.0]] * 2)
    return cls, torch.full((4, 1, 27), logit), (1, 27), {"object_mask_thr": 0.8, "iou_thr": 0.0,
                                                         "filter_low_score": False}


@settings(max_examples=300, deadline=None)
@given(query_outputs())
@example(_equal_queries_case())
def test_maskformer_fusion_equals_mmdet_pixel_for_pixel(case) -> None:
    cls, pred, out, cfg = case
    ref = mmdet_maskformer(cls, pred, out, **cfg)
    ours = maskformer_fusion(cls, pred, N_CLS, N_TH, cfg["object_mask_thr"], cfg["iou_thr"],
                             cfg["filter_low_score"], out)
    assert ours.dtype == ref.dtype == torch.int32
    assert torch.equal(ours, ref)


@st.composite
def instance_outputs(draw):
    """N instances (rectangles; empty, nested, equal masks; tied scores) over a semantic map, thresholds."""
    n = draw(st.integers(0, 8))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    masks = torch.zeros((n, h, w), dtype=torch.bool)
    for k in range(n):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        masks[k, y0: y0 + rng.integers(0, h + 1), x0: x0 + rng.integers(0, w + 1)] = True
    if n > 1 and draw(st.booleans()):
        masks[1] = masks[0]
    scores = torch.tensor(rng.choice([0.3, 0.5, 0.9], n), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, N_TH, n), dtype=torch.long)
    seg = torch.tensor(rng.choice([0.0, 1.0, 2.0], (N_ST + 1, h, w)), dtype=torch.float32)
    return scores, labels, masks, seg, draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])), draw(st.sampled_from([0, 1, 5, 40]))


@settings(max_examples=300, deadline=None)
@given(instance_outputs())
def test_heuristic_fusion_equals_mmdet_pixel_for_pixel(case) -> None:
    scores, labels, masks, seg, overlap, limit = case
    ref = mmdet_heuristic(scores, labels, masks, seg, overlap, limit)
    ours = heuristic_fusion(scores, labels, masks, seg, N_TH, N_CLS, overlap, limit)
    assert ours.dtype == ref.dtype == torch.int32
    assert torch.equal(ours, ref)


def _panoptic_maps(model, datas):
    with torch.inference_mode():
        return [out.pred_panoptic_seg.sem_seg[0].clone() for d in datas for out in model.forward([d], "cpu", None)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"])
def test_demo_models_give_mmdets_maps_with_panbench_fusion(name) -> None:
    """The first 20 demo val images (scripts/bench_eval.py compares all 60 through the metrics), each demo model
    with its committed weights: the same map with either fusion."""
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.evaluation.inference import Items
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve
    from panbench.package import REPO_ROOT

    root = make_demo(REPO_ROOT / "data" / "demo")
    ds = load_dataset(root, name="demo")
    spec = resolve(name, dataset="demo")[0]
    lm = load_model(spec, ds.categories, None, False, "cpu")
    items = Items(ds, list(range(20)), lm.pipeline)
    datas = [items[k]["data"] for k in range(len(items))]
    ref = _panoptic_maps(lm.family, datas)
    assert install_fusion(lm.model, "panbench") in ("MaskFormerFusionHead", "HeuristicFusionHead")
    ours = _panoptic_maps(lm.family, datas)
    assert sum(len(torch.unique(r)) for r in ref) > 2 * len(ref)  # segments, not an empty prediction
    for r, o in zip(ref, ours):
        assert torch.equal(r, o)


def mmdet_instances(mask_cls, mask_pred, out_size, max_per_image):
    from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
    from mmengine.config import ConfigDict

    head = MaskFormerFusionHead(N_TH, N_ST, test_cfg=ConfigDict(max_per_image=max_per_image))
    up = F.interpolate(mask_pred[:, None], size=out_size, mode="bilinear", align_corners=False)[:, 0]
    return head.instance_postprocess(mask_cls, up)


def _query_picked_twice_case() -> tuple:
    """Query 3 picked for two classes: mmdet sigmoids its mask at two places of one tensor, and torch's CPU sigmoid
    rounds one of its elements an ulp apart there (found by Hypothesis)."""
    cls = torch.tensor([[0., -3., 6., 9., 0., 6.], [6., 6., 2., 0., 9., 0.], [0., 2., 9., 2., -3., 6.],
                        [6., 9., -3., 6., 9., 6.], [2., 0., -3., -3., 2., 2.]])
    pred = torch.tensor([[[-6., -6.], [-6., 0.]], [[-6., -6.], [-6., -6.]], [[3., -6.], [3., -6.]],
                         [[-6., -6.], [8., -6.]], [[-6., -6.], [-6., -6.]]])
    return cls, pred, (5, 1), {"object_mask_thr": 0.0, "iou_thr": 0.0, "filter_low_score": False}


@settings(max_examples=300, deadline=None)
@given(query_outputs(), st.integers(1, 40))
@example(_query_picked_twice_case(), 11)
def test_maskformer_instances_equal_mmdets_bit_for_bit(case, max_per_image) -> None:
    """Scores, labels, boxes and masks of mmdet's ``instance_postprocess``, in its order (ties, repeated queries,
    a top-k over more or fewer entries than the queries hold)."""
    from panbench.models.mmdet.fast_fusion import maskformer_instances

    cls, pred, out, _ = case
    max_per_image = min(max_per_image, cls.shape[0] * N_CLS)
    ref = mmdet_instances(cls, pred, out, max_per_image)
    scores, labels, boxes, masks = maskformer_instances(cls, pred, N_CLS, N_TH, max_per_image, out)
    assert torch.equal(scores, ref.scores) and torch.equal(labels, ref.labels)
    assert torch.equal(boxes, ref.bboxes) and torch.equal(masks, ref.masks)
    assert masks.shape[1:] == out


@settings(max_examples=200, deadline=None)
@given(query_outputs(), st.integers(1, 40))
def test_masks_upsampled_once_for_both_outputs_give_the_same_panoptic_map_and_instances(case, max_per_image) -> None:
    """The fusion and the instance output reading one :class:`QueryMasks` (the union of their queries upsampled
    together, as the eval runs them) give what each gives upsampling its own queries alone."""
    from panbench.models.mmdet.fast_fusion import QueryMasks, fusion_queries, instance_queries, maskformer_instances

    cls, pred, out, cfg = case
    max_per_image = min(max_per_image, cls.shape[0] * N_CLS)
    shared = QueryMasks(pred, out)
    shared.prepare(fusion_queries(cls, N_CLS, cfg["object_mask_thr"])[0],
                   instance_queries(cls, N_CLS, N_TH, max_per_image)[2])
    args = (cfg["object_mask_thr"], cfg["iou_thr"], cfg["filter_low_score"], out)
    assert torch.equal(maskformer_fusion(cls, pred, N_CLS, N_TH, *args, masks_of=shared),
                       maskformer_fusion(cls, pred, N_CLS, N_TH, *args))
    for a, b in zip(maskformer_instances(cls, pred, N_CLS, N_TH, max_per_image, out, masks_of=shared),
                    maskformer_instances(cls, pred, N_CLS, N_TH, max_per_image, out)):
        assert torch.equal(a, b)


def _instances(model, datas):
    with torch.inference_mode():
        return [out.pred_instances.clone() for d in datas for out in model.forward([d], "cpu", None)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo-mask2former", "demo-maskformer"])
def test_demo_models_give_mmdets_instances_with_panbench_fusion(name, monkeypatch) -> None:
    """With AP on (``instance_on``), panbench's fusion runs (the record's ``fusion`` says so) and its instance
    output equals mmdet's bit for bit on the first 12 demo images."""
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.evaluation.inference import Items
    from panbench.evaluation.loading import load_model
    from panbench.models.postprocess import PostProcess
    from panbench.models.registry import resolve
    from panbench.package import REPO_ROOT

    root = make_demo(REPO_ROOT / "data" / "demo")
    ds = load_dataset(root, name="demo")
    spec = resolve(name, dataset="demo")[0]
    lm = load_model(spec, ds.categories, None, False, "cpu", ap=True)
    assert lm.family.instance_source == "mmdet instance_on"
    items = Items(ds, list(range(12)), lm.pipeline)
    datas = [items[k]["data"] for k in range(len(items))]
    ref = _instances(lm.family, datas)
    from panbench.models.mmdet import fast_fusion

    calls, real = [], fast_fusion.maskformer_instances
    monkeypatch.setattr(fast_fusion, "maskformer_instances", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert lm.family.configure(PostProcess(), "panbench") == "panbench"
    ours = _instances(lm.family, datas)
    assert len(calls) == len(datas)  # panbench's instance output ran, not mmdet's
    assert sum(len(r) for r in ref) > 0
    for r, o in zip(ref, ours):
        for k in ("scores", "labels", "bboxes", "masks"):
            assert torch.equal(getattr(r, k), getattr(o, k)), k


def test_mmdets_fusion_runs_and_is_named_where_panbench_does_not_compute_every_output() -> None:
    """A head configured for an output panbench's fusion does not compute keeps mmdet's ``predict``, and the
    record's ``fusion`` says ``mmdet``."""
    from types import SimpleNamespace

    from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
    from mmengine.config import ConfigDict

    from panbench.models.mmdet.family import MMDetModel
    from panbench.models.postprocess import PostProcess

    for cfg, expect in ((dict(panoptic_on=True, instance_on=True), "panbench"),
                        (dict(panoptic_on=False, instance_on=True), "mmdet")):
        head = MaskFormerFusionHead(N_TH, N_ST, test_cfg=ConfigDict(cfg))
        fam = MMDetModel.__new__(MMDetModel)
        fam.detector, fam.where = SimpleNamespace(panoptic_fusion_head=head), "model"
        assert fam.configure(PostProcess(), "panbench") == expect
        assert ("predict" in vars(head)) == (expect == "panbench")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_first_argmax_is_torch_argmax_with_ties_and_nans(dtype) -> None:
    """The fusion's per-pixel argmax over the queries: torch's ``argmax(0)`` (first index on ties, a NaN the
    largest, its first index), in C (float32) and on the running maximum (another dtype); pixel counts that are and
    are not a block's multiple."""
    from panbench.models.mmdet import fast_fusion

    g = torch.Generator().manual_seed(0)
    for k, h, w in ((2, 3, 5), (7, 33, 31), (24, 40, 64), (5, 1, 1)):
        x = torch.randint(0, 4, (k, h, w), generator=g).to(dtype)  # many ties
        x[k // 2, 0, :] = float("nan")  # NaNs in one query's first row
        x[-1, -1, -1] = float("nan")
        x[0, -1, -1] = float("nan")  # the first NaN of a pixel wins
        assert torch.equal(fast_fusion.first_argmax(x), x.argmax(0)), (k, h, w)
        y = torch.rand((k, h, w), generator=g, dtype=dtype)
        assert torch.equal(fast_fusion.first_argmax(y), y.argmax(0))
        assert torch.equal(fast_fusion.first_argmax(y.transpose(1, 2)), y.transpose(1, 2).argmax(0))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_sigmoid_as_in_rounds_each_element_as_the_whole_tensors_sigmoid_on_one_thread(threads, monkeypatch) -> None:
    """Some queries' masks sigmoided, on any thread count, as torch sigmoids all of them on one thread (contiguous,
    or a view with padding cut off as mmdet's ``predict`` without ``rescale`` gives it), bit for bit: below and above
    the size where torch splits the work over its threads, every element a logit whose vector and scalar roundings
    differ where there is one."""
    from panbench.models.mmdet.fast_fusion import _inner_run, _scalar_sigmoid, sigmoid_as_in

    x = torch.linspace(0.0, 9.0, 8192)  # positive: the masks cover their pixels
    differ = (x.sigmoid() != _scalar_sigmoid(x)).nonzero()
    logit = float(x[differ[0, 0]]) if len(differ) else 0.5
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for q, h, w, crop in ((4, 1, 27, None), (7, 5, 9, None), (9, 37, 101, None), (6, 41, 93, (33, 70)),
                              (5, 130, 150, None), (5, 130, 150, (129, 150)), (3, 1, 1, None)):
            full = torch.full((q, h, w), logit)
            full[:, ::3] = 0.5  # other values beside
            ref_in = full if crop is None else full[:, : crop[0], : crop[1]]
            torch.set_num_threads(1)
            ref = ref_in.sigmoid()
            torch.set_num_threads(threads)
            for rows in (torch.arange(q), torch.tensor([0, q - 1]), torch.tensor([q // 2]), torch.arange(1, q)):
                rows = rows.unique()
                run = None if crop is None else _inner_run(ref_in)
                got = sigmoid_as_in(ref_in[rows], rows, q, run)
                assert torch.equal(got, ref[rows]), (threads, q, h, w, crop, rows.tolist())
    finally:
        torch.set_num_threads(previous)


def test_mask_boxes_are_mmdets_mask2bbox() -> None:
    from mmdet.structures.mask import mask2bbox

    from panbench.models.mmdet.fast_fusion import mask_boxes

    g = torch.Generator().manual_seed(1)
    m = torch.rand((9, 23, 37), generator=g) > 0.97
    m[2] = False  # empty
    m[3] = True  # full
    m[4] = False
    m[4, -1, -1] = True  # the last pixel only
    for masks in (m, m[:0], torch.zeros((2, 0, 5), dtype=torch.bool)):
        assert torch.equal(mask_boxes(masks), mask2bbox(masks)), masks.shape


def test_the_scaled_argmax_equals_the_argmax_of_the_scaled_rows_nans_and_ties_included() -> None:
    """``first_argmax_scaled`` (a grid's: no product tensor made) against ``first_argmax`` of the product."""
    from panbench.models.mmdet import fast_fusion as ff

    g = torch.Generator().manual_seed(3)
    x = torch.rand(12, 37, 29, generator=g).round(decimals=1)  # ties
    x[3, :5, :5] = float("nan")
    rows = torch.tensor([1, 3, 4, 7, 8, 11])
    scores = torch.tensor([0.5, 2.0, 1.0, 1.0, 0.25, 3.0])
    out = torch.empty((37, 29), dtype=torch.long)
    ff._fusion.first_argmax_scaled(x.numpy(), rows.numpy(), scores.numpy(), out.numel(), out.numpy())
    want = ff.first_argmax(scores.view(-1, 1, 1) * x[rows])
    assert torch.equal(out, want) and (out == 1).any()  # the NaN rows' pixels go to it
    with pytest.raises(ValueError, match="rows below r"):
        ff._fusion.first_argmax_scaled(x.numpy(), torch.tensor([12]).numpy(), scores[:1].numpy(), out.numel(),
                                       out.numpy())
