"""panbench's stand-in for ``mmcv._ext`` (:func:`panbench.ops.install`): the functions inference and a training
step on CUDA reach, with mmcv's signatures; any other name a function that raises a one-line error naming the op."""

from __future__ import annotations

from typing import Any

from panbench.errors import PanbenchError
from panbench.ops import kernels
from panbench.ops.kernels import COMPILED_FIX
from panbench.ops.kernels import nms as nms  # mmcv's signatures and results (panbench/ops/kernels.py)
from panbench.ops.kernels import roi_align_forward as roi_align_forward

PANBENCH_STAND_IN = True


def ms_deform_attn_forward(value: Any, value_spatial_shapes: Any, value_level_start_index: Any,
                           sampling_locations: Any, attention_weights: Any, im2col_step: int) -> Any:
    """mmcv's ``ms_deform_attn_forward`` (CUDA tensors): mmcv's own PyTorch function, the one it runs on the CPU."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

    return multi_scale_deformable_attn_pytorch(value, value_spatial_shapes, sampling_locations, attention_weights)


def sigmoid_focal_loss_forward(input: Any, target: Any, weight: Any, output: Any, gamma: float, alpha: float) -> None:
    """mmcv's ``sigmoid_focal_loss_forward`` (mmdet's ``FocalLoss`` on CUDA): fills ``output`` with each loss."""
    output.copy_(kernels.sigmoid_focal_loss(input, target, weight, gamma, alpha, derivative=False))


def sigmoid_focal_loss_backward(input: Any, target: Any, weight: Any, grad_input: Any, gamma: float,
                                alpha: float) -> None:
    """mmcv's ``sigmoid_focal_loss_backward``: fills ``grad_input`` with each element's derivative."""
    grad_input.copy_(kernels.sigmoid_focal_loss(input, target, weight, gamma, alpha, derivative=True))


def ms_deform_attn_backward(value: Any, value_spatial_shapes: Any, value_level_start_index: Any,
                            sampling_locations: Any, attention_weights: Any, grad_output: Any, grad_value: Any,
                            grad_sampling_loc: Any, grad_attn_weight: Any, im2col_step: int) -> None:
    """mmcv's ``ms_deform_attn_backward``: fills the gradients of :func:`ms_deform_attn_forward`'s function."""
    grads = kernels.ms_deform_attn_grads(value, value_spatial_shapes, sampling_locations, attention_weights,
                                         grad_output)
    for dst, g in zip((grad_value, grad_sampling_loc, grad_attn_weight), grads):
        dst.copy_(g)


def roi_align_backward(grad_output: Any, rois: Any, argmax_y: Any, argmax_x: Any, grad_input: Any,
                       aligned_height: int, aligned_width: int, spatial_scale: float, sampling_ratio: int,
                       pool_mode: int, aligned: bool) -> None:
    """mmcv's ``roi_align_backward`` for average pooling: adds the gradient into ``grad_input``."""
    if pool_mode != 1:
        raise PanbenchError(f"mmcv op roi_align_backward: max pooling's backward is not in panbench's ops; for "
                            f"training with it install {COMPILED_FIX}")
    grad_input += kernels.roi_align_grad(grad_output, rois, tuple(grad_input.shape), aligned_height, aligned_width,
                                         spatial_scale, sampling_ratio, aligned)


def get_compiler_version() -> str:
    return "none: panbench's ops (panbench.ops), no compiled mmcv"


def get_compiling_cuda_version() -> str:
    """What compiled mmcv returns when built without CUDA: nothing here was compiled with nvcc."""
    return "not available"


def unavailable(name: str) -> Any:
    """The function that stands in for mmcv op ``name``: it raises a one-line error."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        if name.endswith("_backward"):
            raise PanbenchError(f"mmcv op {name}: its backward is not in panbench's ops (those of roi_align, "
                                f"ms_deform_attn and sigmoid_focal_loss are); for training install {COMPILED_FIX}")
        raise PanbenchError(f"mmcv op {name} is not in panbench's ops (nms, roi_align, ms_deform_attn, "
                            f"sigmoid_focal_loss); this config needs {COMPILED_FIX}")

    refuse.__name__ = refuse.__qualname__ = name
    return refuse


def __getattr__(name: str) -> Any:
    if name.startswith("_"):  # dunder and private look-ups (import machinery, inspect, pickle) are not ops
        raise AttributeError(name)
    return unavailable(name)
