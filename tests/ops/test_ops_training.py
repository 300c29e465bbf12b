"""The mmcv ops a training step reaches on CUDA, in panbench's stand-in: mmdet's FocalLoss through mmcv's
``sigmoid_focal_loss`` and the backward passes of RoIAlign and multi-scale deformable attention.  mmcv's own
autograd functions call them here on CPU tensors (the same code runs for CUDA tensors, torchvision's RoIAlign
backward there; scripts/gpu_check.py compares the two devices on a GPU)."""

from __future__ import annotations

import pytest
import torch

from panbench.errors import PanbenchError
from panbench.ops import install

if install() != "panbench":  # compiled mmcv's own ops (PANBENCH_MMCV=compiled) serve these calls instead
    pytest.skip("mmcv's ops backend is compiled mmcv, not panbench's", allow_module_level=True)
from mmcv.ops import RoIAlign, sigmoid_focal_loss  # noqa: E402  (after the stand-in is installed)
from mmcv.ops.multi_scale_deform_attn import (  # noqa: E402
    MultiScaleDeformableAttnFunction,
    multi_scale_deformable_attn_pytorch,
)


def _focal_inputs(dtype: torch.dtype, saturated: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 7, generator=g, dtype=torch.float64) * 4).to(dtype)
    if saturated:
        x[0], x[1] = 200.0, -200.0  # p rounds to 1 and to 0: the logs take FLT_MIN
    target = torch.randint(0, 8, (64,), generator=g)  # 7 = background
    weight = torch.rand(7, generator=g, dtype=torch.float64).to(dtype)
    return x, target, weight


@pytest.mark.parametrize("with_weight", [False, True])
def test_focal_loss_and_its_gradient_are_mmdets_python_focal_loss(with_weight) -> None:
    """mmdet's ``py_sigmoid_focal_loss`` (what FocalLoss runs on the CPU) is the reference, in float64."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    x, target, weight = _focal_inputs(torch.float64)
    w = weight if with_weight else None
    a = x.clone().requires_grad_()
    loss = sigmoid_focal_loss(a, target, 2.0, 0.25, w, "mean")
    loss.backward()
    b = x.clone().requires_grad_()
    onehot = torch.nn.functional.one_hot(target, 8)[:, :7].to(x.dtype)
    ref = py_sigmoid_focal_loss(b, onehot, None, 2.0, 0.25, "none")
    if with_weight:  # a row's class weight; background rows unweighted
        ref = ref * torch.where(target < 7, weight[target.clamp(max=6)], 1.0)[:, None]
    ref = ref.sum() / x.shape[0]
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-12)


def test_a_saturated_sigmoid_takes_the_log_of_flt_min_as_mmcvs_kernel() -> None:
    from panbench.ops import kernels

    x, target, _ = _focal_inputs(torch.float32, saturated=True)
    loss = kernels.sigmoid_focal_loss(x, target, torch.empty(0), 2.0, 0.25, derivative=False)
    floor = -torch.log(torch.tensor(kernels.FLT_MIN, dtype=torch.float32))  # 87.34
    row0 = torch.where(torch.arange(7) == target[0], torch.tensor(0.0), 0.75 * floor)  # p = 1: positives lose 0
    torch.testing.assert_close(loss[0], row0)
    row1 = torch.where(torch.arange(7) == target[1], 0.25 * floor, torch.tensor(0.0))  # p = 0: negatives lose 0
    torch.testing.assert_close(loss[1], row1)


def test_focal_loss_gradient_is_the_derivative_of_its_loss() -> None:
    """mmcv's analytic backward against autograd through the forward formula (float64: in float32 the two round
    1 - p differently where p is near 1)."""
    from panbench.ops import kernels

    x, target, weight = _focal_inputs(torch.float64, saturated=True)
    a = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(kernels.sigmoid_focal_loss(a, target, weight, 2.0, 0.25, derivative=False).sum(), a)
    mine = kernels.sigmoid_focal_loss(x, target, weight, 2.0, 0.25, derivative=True)
    finite = x.abs() < 50  # where p saturates, autograd differentiates the clamp, mmcv's kernel the formula
    torch.testing.assert_close(mine[finite], grad[finite], rtol=1e-9, atol=1e-12)


def test_deformable_attention_backward_is_autograd_through_mmcvs_pytorch_function() -> None:
    g = torch.Generator().manual_seed(1)
    shapes = torch.tensor([[8, 12], [4, 6]])
    start = torch.tensor([0, 96])
    value = torch.randn(2, 120, 4, 8, generator=g, dtype=torch.float64)
    loc = torch.rand(2, 10, 4, 2, 3, 2, generator=g, dtype=torch.float64) * 1.2 - 0.1  # some outside: zero padding
    att = torch.rand(2, 10, 4, 2, 3, generator=g, dtype=torch.float64)
    mine = [t.clone().requires_grad_() for t in (value, loc, att)]
    out = MultiScaleDeformableAttnFunction.apply(mine[0], shapes, start, mine[1], mine[2], 64)
    ref = [t.clone().requires_grad_() for t in (value, loc, att)]
    expected = multi_scale_deformable_attn_pytorch(ref[0], shapes, ref[1], ref[2])
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    w = torch.randn(expected.shape, generator=g, dtype=torch.float64)
    (out * w).sum().backward()
    (expected * w).sum().backward()
    for m, r in zip(mine, ref):
        torch.testing.assert_close(m.grad, r.grad, rtol=0, atol=0)


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_backward_passes_gradcheck(aligned) -> None:
    """Average-pooled RoIAlign (mmcv's autograd function on panbench's forward and backward) against finite
    differences in float64, with RoIs inside, across and beyond the feature map."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.0, 1.0, 20.0, 14.0], [1, 5.5, 2.5, 9.0, 30.0], [0, -4.0, -3.0, 6.0, 4.0],
                         [1, 30.0, 20.0, 50.0, 44.0], [1, 0.0, 0.0, 43.0, 35.0]], dtype=torch.float64)
    layer = RoIAlign((3, 4), spatial_scale=0.25, sampling_ratio=0, aligned=aligned)
    assert torch.autograd.gradcheck(lambda t: layer(t, rois), (x,), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_roi_align_backward_without_rois_is_zero() -> None:
    from panbench.ops import kernels

    grad = kernels.roi_align_grad(torch.zeros(0, 3, 2, 2), torch.zeros(0, 5), (1, 3, 6, 6), 2, 2, 1.0, 2, True)
    assert grad.shape == (1, 3, 6, 6) and not grad.any()


def test_roi_align_max_pooling_backward_stops_in_one_line() -> None:
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    layer = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, pool_mode="max")
    out = layer(x, torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]]))
    with pytest.raises(PanbenchError, match="max pooling's backward is not in panbench's ops") as e:
        out.sum().backward()
    assert "\n" not in str(e.value)
