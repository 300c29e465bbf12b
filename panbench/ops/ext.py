"""panbench's stand-in for ``mmcv._ext`` (what :func:`panbench.ops.install` puts into ``sys.modules``).

mmcv 2.1.0's ``mmcv/utils/ext_loader.load_ext`` imports ``mmcv._ext`` and asserts that it has each name an
``mmcv/ops/*.py`` module lists.  The three functions inference reaches are real, with mmcv's signatures
(``mmcv/ops/csrc/pytorch/pybind.cpp``); every other name is a function that raises a one-line
:class:`~panbench.errors.PanbenchError` naming the op and how to get it, so that ``import mmcv.ops`` works
and only a config that really calls another op stops, at that op.
"""

from __future__ import annotations

from typing import Any

from panbench.errors import PanbenchError
from panbench.ops.backends import COMPILED_FIX

PANBENCH_STAND_IN = True


def nms(boxes: Any, scores: Any, iou_threshold: float, offset: int) -> Any:
    """mmcv's ``nms``: indices of the kept boxes, by descending score."""
    from panbench.ops import kernels

    return kernels.nms(boxes, scores, iou_threshold, offset)


def roi_align_forward(input: Any, rois: Any, output: Any, argmax_y: Any, argmax_x: Any, aligned_height: int,
                      aligned_width: int, spatial_scale: float, sampling_ratio: int, pool_mode: int,
                      aligned: bool) -> None:
    """mmcv's ``roi_align_forward``: fills ``output`` (and, for max pooling, ``argmax_y``/``argmax_x``)."""
    from panbench.ops import kernels

    kernels.roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width,
                              spatial_scale, sampling_ratio, pool_mode, aligned)


def ms_deform_attn_forward(value: Any, value_spatial_shapes: Any, value_level_start_index: Any,
                           sampling_locations: Any, attention_weights: Any, im2col_step: int) -> Any:
    """mmcv's ``ms_deform_attn_forward`` (called for CUDA tensors): mmcv's own PyTorch function, the one mmcv
    runs on the CPU.  ``value_level_start_index`` and ``im2col_step`` only organise the CUDA kernel's work."""
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

    return multi_scale_deformable_attn_pytorch(value, value_spatial_shapes, sampling_locations, attention_weights)


def get_compiler_version() -> str:
    return "none: panbench's ops (panbench.ops), no compiled mmcv"


def get_compiling_cuda_version() -> str:
    """What compiled mmcv returns when built without CUDA: nothing here was compiled with nvcc (on CUDA
    tensors panbench's ops run torchvision's and PyTorch's kernels)."""
    return "not available"


def unavailable(name: str) -> Any:
    """The function that stands in for mmcv op ``name``: it raises a one-line error."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        if name.endswith("_backward"):
            raise PanbenchError(f"mmcv op {name}: panbench's ops are inference only (no backward); for training "
                                f"install {COMPILED_FIX}")
        raise PanbenchError(f"mmcv op {name} is not in panbench's ops (nms, roi_align_forward, "
                            f"ms_deform_attn_forward); this config needs {COMPILED_FIX}")

    refuse.__name__ = name
    refuse.__qualname__ = name
    return refuse


def __getattr__(name: str) -> Any:
    if name.startswith("_"):  # dunder and private look-ups (import machinery, inspect, pickle) are not ops
        raise AttributeError(name)
    return unavailable(name)
