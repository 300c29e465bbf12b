"""panbench's ops against torchvision's own ``nms``, ``batched_nms`` and ``roi_align`` (the kernels panbench's ops
call for CUDA tensors), all on CPU tensors: run in the torchvision tier (``make test-vision``), skipped without
torchvision.  Numbers in docs/ops.md#against-torchvision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from panbench.ops import install, kernels
from panbench.package import REPO_ROOT

tv = pytest.importorskip("torchvision", reason="torchvision is not installed (make setup-vision; make test-vision)")
pytestmark = pytest.mark.torchvision

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "mmcv_ops"
SEEDS = range(20)
THRESHOLDS = (0.3, 0.5, 0.7)


def _boxes(seed: int, ties: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clustered boxes (as a detector's overlap), scores continuous or from 20 levels (many ties), 5 classes."""
    g = torch.Generator().manual_seed(seed)
    n, clusters = [5, 50, 400, 1500, 3000][seed % 5], 1 + 10 * (seed % 5)
    which = torch.randint(0, clusters, (n,), generator=g)
    centre = (torch.rand(clusters, 2, generator=g) * 800)[which]
    size = (torch.rand(clusters, 2, generator=g) * 200 + 1)[which] * (0.8 + 0.4 * torch.rand(n, 2, generator=g))
    xy = centre + torch.randn(n, 2, generator=g) * 5 - size / 2
    scores = torch.randint(0, 20, (n,), generator=g).float() / 20 if ties else torch.rand(n, generator=g)
    return torch.cat([xy, xy + size], 1), scores, torch.randint(0, 5, (n,), generator=g)


@pytest.mark.parametrize("seed", SEEDS)
def test_c_nms_keeps_what_torchvision_nms_keeps_without_tied_scores(seed: int) -> None:
    boxes, scores, _ = _boxes(seed, ties=False)
    for thr in THRESHOLDS:
        assert torch.equal(kernels.nms_c(boxes, scores, thr, 0), tv.ops.nms(boxes, scores, thr))


def test_tied_scores_are_visited_in_another_order_by_torchvision_and_in_mmcvs_by_panbenchs_cuda_path() -> None:
    """torchvision sorts the scores stably, mmcv (and panbench's C) not: with ties the kept boxes differ.
    ``nms_torchvision`` (what CUDA tensors run) hands torchvision the boxes in mmcv's order: the same as C."""
    differ = 0
    for seed in SEEDS:
        boxes, scores, _ = _boxes(seed, ties=True)
        for thr in THRESHOLDS:
            c = kernels.nms_c(boxes, scores, thr, 0)
            differ += not torch.equal(c, tv.ops.nms(boxes, scores, thr))
            assert torch.equal(kernels.nms_torchvision(boxes, scores, thr), c), (seed, thr)
    assert differ == 48  # of the 60 cases (docs/ops.md)


def test_recorded_compiled_mmcv_nms_is_what_panbenchs_torchvision_path_keeps() -> None:
    nms = np_load("nms.npz")
    cases = sorted({k.split("/")[0] for k in nms.files if int(nms[k.split("/")[0] + "/offset"]) == 0})
    assert len(cases) >= 3
    for case in cases:
        if f"{case}/idxs" in nms.files:
            continue  # batched: below
        boxes, scores = torch.from_numpy(nms[f"{case}/boxes"]), torch.from_numpy(nms[f"{case}/scores"])
        keep = kernels.nms_torchvision(boxes, scores, float(nms[f"{case}/thr"]))
        assert torch.equal(keep, torch.from_numpy(nms[f"{case}/keep"])), case


@pytest.mark.parametrize("seed", SEEDS)
def test_mmcv_batched_nms_on_panbenchs_ops_keeps_what_torchvision_batched_nms_keeps(seed: int) -> None:
    """mmcv's ``batched_nms`` (class offsets added to the boxes, as torchvision's coordinate trick) on panbench's
    C nms vs torchvision's ``batched_nms``: equal without ties; with ties, equal once panbench's CUDA path (mmcv's
    order handed to torchvision) replaces the C nms."""
    install()
    import mmcv.ops

    for ties in (False, True):
        boxes, scores, idxs = _boxes(seed, ties)
        for thr in THRESHOLDS:
            _, keep = mmcv.ops.batched_nms(boxes, scores, idxs, {"type": "nms", "iou_threshold": thr})
            if not ties:
                assert torch.equal(keep, tv.ops.batched_nms(boxes, scores, idxs, thr)), thr
            max_coordinate = boxes.max()
            shifted = boxes + (idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes)))[:, None]
            on_cuda_path = kernels.nms_torchvision(shifted, scores, thr)
            assert torch.equal(keep, on_cuda_path), (ties, thr)


def np_load(name: str):  # noqa: ANN201
    import numpy as np

    return np.load(FIXTURES / name)


def test_c_roi_align_equals_torchvision_roi_align_bit_for_bit_on_random_rois() -> None:
    """Average pooling (torchvision has no max pooling): aligned or not, sampling ratio 0, 1, 2, three scales."""
    checked = 0
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        feat = torch.randn(2, 3, 25 + seed, 38, generator=g)
        boxes, _, _ = _boxes(seed + 1, ties=False)
        boxes = boxes[:60]
        rois = torch.cat([torch.randint(0, 2, (len(boxes), 1), generator=g).float(), boxes / 4 - 40], 1)
        for scale, size in ((0.125, (7, 7)), (0.3, (14, 9)), (0.25, (7, 7))):
            for aligned in (True, False):
                for sr in (0, 1, 2):
                    out = feat.new_zeros((len(rois), 3, *size))
                    kernels.roi_align_c(feat, rois, out, feat.new_zeros(0), feat.new_zeros(0), *size, scale, sr, 1,
                                        aligned)
                    assert torch.equal(out, tv.ops.roi_align(feat, rois, size, scale, sr, aligned)), \
                        (seed, scale, aligned, sr)
                    checked += 1
    assert checked == 72


def test_recorded_compiled_mmcv_roi_align_is_what_panbenchs_torchvision_path_writes() -> None:
    """Average pooling (torchvision has none of mmcv's max pooling) on every recorded configuration: panbench's
    CUDA path (torchvision's ``roi_align`` with the scale rounded to float32, as mmcv's binding takes it) equals
    compiled mmcv bit for bit.  Handed the float64 scale 1/3 as it is, torchvision differs from mmcv on float64
    input (by 1.5e-6 at most here, docs/ops.md)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import record_mmcv_ops as record
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    roi = np_load("roi_align.npz")
    checked, unrounded_differ, largest = 0, 0, 0.0
    for dt, aligned, mode, sr, scale in record.ROI_CONFIGS:
        if mode != 1:
            continue
        x, r = torch.from_numpy(roi[f"{dt}/input"]), torch.from_numpy(roi[f"{dt}/rois"])
        want = torch.from_numpy(roi[f"{record.roi_key(dt, aligned, mode, sr, scale)}/output"])
        out = torch.zeros_like(want)
        kernels.roi_align_torchvision(x, r, out, *record.ROI_OUT, scale, sr, aligned)
        assert torch.equal(out, want), (dt, aligned, sr, scale)
        unrounded = tv.ops.roi_align(x, r, record.ROI_OUT, scale, sr, aligned)
        unrounded_differ += not torch.equal(unrounded, want)
        largest = max(largest, float((unrounded - want).abs().max()))
        checked += 1
    assert checked == 16
    assert unrounded_differ == 4 and 1.5e-6 < largest < 1.55e-6  # the rounding is what makes them equal


# panbench/ops/kernels.py's CUDA dispatch on CPU tensors: torchvision's kernels serve every tensor, as they serve
# CUDA ones (nms with offset 0, RoIAlign with average pooling; the rest as on the CPU), their calls counted
CUDA_PATH_ON_CPU = """
import sys
from panbench.ops import kernels
calls = {"nms": 0, "roi_align": 0}
def counted(name, fn):
    def run(*args):
        calls[name] += 1
        return fn(*args)
    return run
kernels._torchvision_serves = lambda t: True
kernels.nms_torchvision = counted("nms", kernels.nms_torchvision)
kernels.roi_align_torchvision = counted("roi_align", kernels.roi_align_torchvision)
from panbench.cli import main
rc = main(sys.argv[1:])
print("torchvision calls", calls["nms"], calls["roi_align"])
sys.exit(rc)
"""


@pytest.mark.slow
def test_demo_panoptic_fpn_on_torchvisions_kernels_predicts_what_compiled_mmcv_predicted(tmp_path: Path) -> None:
    """PanopticFPN (the demo model that reaches nms and RoIAlign) with torchvision's kernels in place of the C ones,
    as CUDA tensors run: every segment map and segment list equals the one recorded with compiled mmcv."""
    from panbench.data.demo import make_demo

    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import record_mmcv_ops as record
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    make_demo(REPO_ROOT / "data" / "demo")
    res, preds = tmp_path / "results", tmp_path / "preds"
    env = {**os.environ, "PANBENCH_OPS": "panbench", "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run([sys.executable, "-c", CUDA_PATH_ON_CPU, "eval", "--model", "demo-panoptic-fpn", "--dataset",
                        "demo", "--results", str(res), "--save-predictions", str(preds), "--no-progress",
                        "--workers", "0", "--no-resume", "--device", "cpu"],  # CPU tensors on the CUDA path's kernels
                       capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    nms_calls, roi_calls = map(int, r.stdout.split("torchvision calls")[1].split())
    assert nms_calls > 0 and roi_calls > 0
    want = json.loads((FIXTURES / "demo_predictions.json").read_text())["demo-panoptic-fpn"]
    got = record.demo_digests(res, preds)["demo-panoptic-fpn"]
    assert got["images"] == want["images"] and got["PQ"] == want["PQ"]


def test_roi_align_backward_on_torchvisions_kernel_is_the_autograd_gradient(monkeypatch) -> None:
    """RoIAlign's backward as CUDA tensors take it (torchvision's ``_roi_align_backward``, its arguments in
    torchvision's order), here on CPU tensors, against autograd through the PyTorch RoIAlign."""
    g = torch.Generator().manual_seed(3)
    shape = (2, 4, 13, 17)
    rois = torch.tensor([[0, 1.0, 2.0, 40.0, 30.0], [1, 10.5, 3.5, 20.0, 50.0], [1, -6.0, -2.0, 9.0, 7.0],
                         [0, 0.0, 0.0, 67.0, 51.0]])
    grad_out = torch.randn(4, 4, 3, 5, generator=g)
    want = kernels.roi_align_grad(grad_out, rois, shape, 3, 5, 0.25, 2, True)  # autograd: CPU tensors
    monkeypatch.setattr(kernels, "_torchvision_serves", lambda t: True)
    got = kernels.roi_align_grad(grad_out, rois, shape, 3, 5, 0.25, 2, True)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert got.abs().sum() > 0
