"""panbench's ops give compiled mmcv 2.1.0's answers bit for bit: nms and RoIAlign against outputs recorded
with compiled mmcv (tests/fixtures/mmcv_ops, made by scripts/record_mmcv_ops.py), the C extension against the
PyTorch path on random inputs, and the demo models' predictions against those made with compiled mmcv."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from panbench.ops import ext, install, kernels
from panbench.package import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "mmcv_ops"
NMS = np.load(FIXTURES / "nms.npz")
ROI = np.load(FIXTURES / "roi_align.npz")
NMS_CASES = sorted({k.split("/")[0] for k in NMS.files})
PATHS = ["c", "torch"]


def _record_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("record_mmcv_ops", REPO_ROOT / "scripts" / "record_mmcv_ops.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RECORD = _record_script()


def _kernels(path: str) -> types.SimpleNamespace:
    """The stand-in's functions with one path forced: the C extension or the PyTorch code."""
    nms = kernels.nms_c if path == "c" else kernels.nms_torch

    def roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width, spatial_scale,
                          sampling_ratio, pool_mode, aligned):
        if path == "c":
            kernels.roi_align_c(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width,
                                spatial_scale, sampling_ratio, pool_mode, aligned)
            return
        out, ay, ax = kernels.roi_align_torch(input, rois, aligned_height, aligned_width, spatial_scale,
                                              sampling_ratio, pool_mode, aligned)
        output.copy_(out)
        if pool_mode == 0:
            argmax_y.copy_(ay)
            argmax_x.copy_(ax)

    def nms_any(boxes, scores, iou_threshold, offset):
        if boxes.numel() == 0:
            return ext.nms(boxes, scores, iou_threshold, offset)
        return nms(boxes, scores, iou_threshold, offset)

    return types.SimpleNamespace(nms=nms_any, roi_align_forward=roi_align_forward)


@pytest.fixture
def mmcv_ops_on(monkeypatch):
    """mmcv's own Python wrappers (mmcv.ops.nms, batched_nms, roi_align) running on a chosen path of panbench's
    kernels, whichever backend this process installed."""
    install()
    import mmcv.ops.nms
    import mmcv.ops.roi_align

    def use(path: str) -> types.ModuleType:
        k = _kernels(path)
        monkeypatch.setattr(sys.modules["mmcv.ops.nms"], "ext_module", k)
        monkeypatch.setattr(sys.modules["mmcv.ops.roi_align"], "ext_module", k)
        return mmcv.ops

    return use


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", NMS_CASES)
def test_nms_keeps_what_compiled_mmcv_keeps(mmcv_ops_on, case: str, path: str) -> None:
    ops = mmcv_ops_on(path)
    boxes, scores = torch.from_numpy(NMS[f"{case}/boxes"]), torch.from_numpy(NMS[f"{case}/scores"])
    thr, offset = float(NMS[f"{case}/thr"]), int(NMS[f"{case}/offset"])
    if f"{case}/idxs" in NMS.files:
        cfg = {"type": "nms", "iou_threshold": thr, "offset": offset}
        _, keep = ops.batched_nms(boxes, scores, torch.from_numpy(NMS[f"{case}/idxs"]), cfg)
    else:
        _, keep = ops.nms(boxes, scores, thr, offset)
    assert torch.equal(keep, torch.from_numpy(NMS[f"{case}/keep"]))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("config", RECORD.ROI_CONFIGS, ids=lambda c: RECORD.roi_key(*c))
def test_roi_align_equals_compiled_mmcv_bit_for_bit(config: tuple, path: str) -> None:
    dt, aligned, mode, sr, scale = config
    key = RECORD.roi_key(*config)
    x, r = torch.from_numpy(ROI[f"{dt}/input"]), torch.from_numpy(ROI[f"{dt}/rois"])
    shape = (r.shape[0], x.shape[1], *RECORD.ROI_OUT)
    o = x.new_zeros(shape)
    ay, ax = (x.new_zeros(shape), x.new_zeros(shape)) if mode == 0 else (x.new_zeros(0), x.new_zeros(0))
    _kernels(path).roi_align_forward(x, r, o, ay, ax, *RECORD.ROI_OUT, scale, sr, mode, aligned)
    assert torch.equal(o, torch.from_numpy(ROI[f"{key}/output"]))
    if mode == 0:
        assert torch.equal(ay, torch.from_numpy(ROI[f"{key}/argmax_y"]))
        assert torch.equal(ax, torch.from_numpy(ROI[f"{key}/argmax_x"]))


@pytest.mark.parametrize("path", PATHS)
def test_roi_align_through_mmcv_wrapper_equals_compiled_mmcv(mmcv_ops_on, path: str) -> None:
    ops = mmcv_ops_on(path)
    for dt, aligned, mode, sr, scale in RECORD.ROI_CONFIGS:
        x, r = torch.from_numpy(ROI[f"{dt}/input"]), torch.from_numpy(ROI[f"{dt}/rois"])
        out = ops.roi_align(x, r, RECORD.ROI_OUT, scale, sr, "max" if mode == 0 else "avg", aligned)
        assert torch.equal(out, torch.from_numpy(ROI[f"{RECORD.roi_key(dt, aligned, mode, sr, scale)}/output"]))


def _random_boxes(g: torch.Generator, n: int, clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    which = torch.randint(0, clusters, (n,), generator=g)
    centre = (torch.rand(clusters, 2, generator=g) * 800)[which]
    size = (torch.rand(clusters, 2, generator=g) * 200 + 1)[which] * (0.8 + 0.4 * torch.rand(n, 2, generator=g))
    xy = centre + torch.randn(n, 2, generator=g) * 5 - size / 2
    scores = torch.randint(0, 20, (n,), generator=g).float() / 20  # many ties
    return torch.cat([xy, xy + size], 1), scores


@pytest.mark.parametrize("seed", range(6))
def test_c_nms_equals_the_torch_path_on_random_boxes(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    boxes, scores = _random_boxes(g, [1, 2, 50, 400, 1500, 3000][seed], 1 + 10 * seed)
    for thr in (0.3, 0.5, 0.7, 0.9):
        for offset in (0, 1):
            assert torch.equal(kernels.nms_c(boxes, scores, thr, offset), kernels.nms_torch(boxes, scores, thr, offset))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", range(2))
def test_c_roi_align_equals_the_torch_path_on_random_rois(seed: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(2, 3, 25 + seed, 38, generator=g).to(dtype)
    boxes, _ = _random_boxes(g, 60, 30)
    rois = torch.cat([torch.randint(0, 2, (60, 1), generator=g).float(), boxes / 4 - 40], 1).to(dtype)
    scale, size = ((0.125, (7, 7)), (0.3, (14, 9)))[seed]
    for aligned in (True, False):
        for mode in (0, 1):
            for sr in (0, 1, 3):
                shape = (60, 3, *size)
                o = feat.new_zeros(shape)
                ay, ax = (feat.new_zeros(shape), feat.new_zeros(shape)) if mode == 0 else (feat.new_zeros(0),) * 2
                kernels.roi_align_c(feat, rois, o, ay, ax, *size, scale, sr, mode, aligned)
                out, ty, tx = kernels.roi_align_torch(feat, rois, *size, scale, sr, mode, aligned)
                assert torch.equal(o, out), (aligned, mode, sr, scale)
                if mode == 0:
                    assert torch.equal(ay, ty) and torch.equal(ax, tx)


def test_roi_align_refuses_a_negative_roi_when_aligned_on_every_path() -> None:
    feat = torch.zeros(1, 1, 8, 8)
    rois = torch.tensor([[0.0, 5, 5, 4, 6]])
    for p in PATHS:
        with pytest.raises(RuntimeError, match="negative width or height"):
            _kernels(p).roi_align_forward(feat, rois, feat.new_zeros(1, 1, 2, 2), feat.new_zeros(0),
                                          feat.new_zeros(0), 2, 2, 1.0, 2, 1, True)
    out = feat.new_zeros(1, 1, 2, 2)
    ext.roi_align_forward(feat, rois, out, feat.new_zeros(0), feat.new_zeros(0), 2, 2, 1.0, 2, 1, False)


@pytest.mark.slow
def test_demo_predictions_are_pixel_identical_to_compiled_mmcv(tmp_path: Path) -> None:
    """The three demo models with panbench's ops: the same segment maps and segments as with compiled mmcv,
    image by image, and the pinned PQs."""
    from panbench.data.demo import make_demo

    make_demo(REPO_ROOT / "data" / "demo")
    res, preds = tmp_path / "results", tmp_path / "preds"
    env = {**os.environ, "PANBENCH_OPS": "panbench", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", "all", "--dataset", "demo", "--results", str(res),
           "--save-predictions", str(preds), "--no-progress", "--workers", "0", "--device", "cpu"]  # the CPU's ops
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    want = json.loads((FIXTURES / "demo_predictions.json").read_text())
    got = RECORD.demo_digests(res, preds)
    assert sorted(got) == sorted(want) == ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"]
    for model in want:
        assert got[model]["images"] == want[model]["images"], model
        assert got[model]["PQ"] == want[model]["PQ"], model
    for rec in (res / "runs").glob("*.json"):
        assert json.loads(rec.read_text())["provenance"]["versions"]["mmcv_ops"] == "panbench"


def test_c_roi_align_refuses_an_image_index_outside_the_batch() -> None:
    feat = torch.zeros(2, 1, 8, 8)
    for index in (2.0, -1.0):
        rois = torch.tensor([[index, 1, 1, 4, 4]])
        with pytest.raises(IndexError, match=r"image index is outside 0\.\.1"):
            kernels.roi_align_c(feat, rois, feat.new_zeros(1, 1, 2, 2), feat.new_zeros(0), feat.new_zeros(0),
                                2, 2, 1.0, 2, 1, True)


def test_deformable_attention_through_mmcv_function_is_mmcv_pytorch_version(monkeypatch) -> None:
    """What runs for CUDA tensors (MultiScaleDeformableAttnFunction -> ms_deform_attn_forward), here on CPU
    tensors: mmcv's own PyTorch function, the one mmcv runs on the CPU."""
    install()
    import mmcv.ops.multi_scale_deform_attn as msda

    monkeypatch.setattr(msda, "ext_module", ext)
    g = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[6, 8], [3, 4]])
    start = torch.tensor([0, 48])
    value = torch.randn(2, 60, 4, 8, generator=g)
    loc = torch.rand(2, 10, 4, 2, 3, 2, generator=g)
    attn = torch.rand(2, 10, 4, 2, 3, generator=g).softmax(-1)
    out = msda.MultiScaleDeformableAttnFunction.apply(value, shapes, start, loc, attn, 64)
    assert out.shape == (2, 10, 32)
    assert torch.equal(out, msda.multi_scale_deformable_attn_pytorch(value, shapes, loc, attn))


def test_torchvision_nms_is_given_mmcv_order_for_tied_scores(monkeypatch) -> None:
    """nms_torchvision (CUDA tensors) with a stand-in for torchvision.ops.nms that follows torchvision's
    kernel (a stable descending sort, then greedy suppression at IoU > threshold), since torchvision's ops do
    not load with this CPU torch: the kept boxes are mmcv's, ties included."""

    def tv_nms(boxes, scores, thr):
        order = scores.sort(stable=True, dim=0, descending=True)[1]
        keep = kernels.nms_torch(boxes[order], torch.arange(len(order), 0, -1).float(), thr, 0)
        return order[keep]

    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(ops=types.SimpleNamespace(nms=tv_nms)))
    for case in ("ties_offset0", "duplicates_offset0", "rpn_random"):
        boxes, scores = torch.from_numpy(NMS[f"{case}/boxes"]), torch.from_numpy(NMS[f"{case}/scores"])
        keep = kernels.nms_torchvision(boxes, scores, float(NMS[f"{case}/thr"]))
        assert torch.equal(keep, torch.from_numpy(NMS[f"{case}/keep"])), case
