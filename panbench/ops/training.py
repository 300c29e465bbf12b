"""The mmcv ops a training step of PanopticFPN, MaskFormer and Mask2Former reaches on CUDA, for the stand-in
``mmcv._ext`` (:mod:`panbench.ops.ext`): mmdet's ``FocalLoss`` (mmcv's sigmoid focal loss, forward and
backward) and the backward passes of RoIAlign (average pooling) and multi-scale deformable attention.  PyTorch on
any device; torchvision's RoIAlign backward kernel for CUDA tensors.
"""

from __future__ import annotations

from typing import Any

from panbench.ops import kernels

FLT_MIN = 1.1754943508222875e-38  # C's FLT_MIN, the floor mmcv's focal-loss kernels put under each log


def sigmoid_focal_loss(input: Any, target: Any, weight: Any, gamma: float, alpha: float, derivative: bool) -> Any:
    """mmcv's ``sigmoid_focal_loss_forward`` (``derivative`` False: each element's loss) or ``_backward`` (True: its
    derivative by ``input``), element for element as mmcv's CUDA kernel (``sigmoid_focal_loss_cuda_kernel.cuh``)
    writes them, on any device: ``p = 1 / (1 + exp(-x))``; where the target is the column's class
    ``-alpha (1 - p)^gamma log p``, elsewhere ``-(1 - alpha) p^gamma log(1 - p)`` (each log of at least FLT_MIN),
    times ``weight[target]`` when ``weight`` is not empty (mmdet passes none; a background row, for which mmcv's
    kernel would read past the end of ``weight``, keeps its loss unweighted).  ``target`` is (N,) int64, a class or
    ``num_classes`` (background)."""
    import torch

    p = 1.0 / (1.0 + torch.exp(-input))
    q = 1.0 - p
    log_p, log_q = torch.log(p.clamp_min(FLT_MIN)), torch.log(q.clamp_min(FLT_MIN))
    if derivative:
        term_p = q.pow(gamma) * (q - gamma * p * log_p)
        term_n = p.pow(gamma) * (gamma * q * log_q - p)
    else:
        term_p = q.pow(gamma) * log_p
        term_n = p.pow(gamma) * log_q
    classes = torch.arange(input.shape[1], device=input.device)
    out = torch.where(target[:, None] == classes[None, :], -alpha * term_p, -(1.0 - alpha) * term_n)
    if weight.numel():
        n_cls = input.shape[1]
        out = out * torch.where(target < n_cls, weight[target.clamp(max=n_cls - 1)], 1.0)[:, None]
    return out


def ms_deform_attn_grads(value: Any, spatial_shapes: Any, sampling_locations: Any, attention_weights: Any,
                         grad_output: Any) -> tuple[Any, Any, Any]:
    """The gradients of mmcv's multi-scale deformable attention by ``value``, ``sampling_locations`` and
    ``attention_weights``: autograd through mmcv's own PyTorch function (bilinear sampling with zero padding, the
    function mmcv's CUDA kernel computes), recomputed from the saved inputs."""
    import torch
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

    with torch.enable_grad():
        inputs = [t.detach().requires_grad_() for t in (value, sampling_locations, attention_weights)]
        out = multi_scale_deformable_attn_pytorch(inputs[0], spatial_shapes, inputs[1], inputs[2])
        grads = torch.autograd.grad(out, inputs, grad_output)
    return grads[0], grads[1], grads[2]


def roi_align_grad(grad_output: Any, rois: Any, input_shape: tuple[int, int, int, int], aligned_height: int,
                   aligned_width: int, spatial_scale: float, sampling_ratio: int, aligned: bool) -> Any:
    """The gradient of average-pooled RoIAlign by its input: torchvision's backward kernel for CUDA tensors (the
    one its ``roi_align`` runs), else autograd through :func:`roi_align_torch` (RoIAlign is linear in its input, so
    its gradient does not depend on the input's values, which mmcv's backward does not keep)."""
    import torch

    n, c, h, w = input_shape
    if rois.shape[0] == 0:
        return torch.zeros(input_shape, dtype=grad_output.dtype, device=grad_output.device)
    if kernels._torchvision_serves(grad_output):
        import torchvision  # noqa: F401  (registers torch.ops.torchvision)

        return torch.ops.torchvision._roi_align_backward(
            grad_output, rois.to(grad_output.dtype), kernels._f32(spatial_scale), int(aligned_height),
            int(aligned_width), n, c, h, w, int(sampling_ratio), bool(aligned))
    with torch.enable_grad():
        x = torch.zeros(input_shape, dtype=grad_output.dtype, device=grad_output.device, requires_grad=True)
        out, _, _ = kernels.roi_align_torch(x, rois, aligned_height, aligned_width, spatial_scale, sampling_ratio, 1,
                                            aligned)
        (grad,) = torch.autograd.grad(out, x, grad_output)
    return grad
