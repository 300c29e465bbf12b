"""A CPU forward whose numbers do not depend on the process layout: the same bits from one process, forked processes,
torchrun ranks, a resume, any ``--batch-size`` or thread count (docs/analysis.md, "Segment scores across layouts").

Two things in torch's CPU forward change the last bits of a result with the layout, on AVX-512 hosts most of all:

- MKL's ``sgemm`` (every linear layer, attention's products, the im2col convolutions) splits its sums by the thread
  count.  MKL's strict Conditional Numerical Reproducibility mode (``MKL_CBWR=AUTO,STRICT``) sums in an order that
  does not; it has to be set before MKL's first call, so ``panbench`` sets it as its command starts.
- torch picks a convolution's kernel by the thread count and the batch (``use_mkldnn`` in ATen's ConvUtils: oneDNN,
  except im2col + gemm for a 1x1 convolution on one thread and for a small single image), and the two round apart.
  :func:`layout_free_convolutions` sends every float32 2-D convolution of a model on the CPU to oneDNN, whose
  inference kernels split work by image, channel block and pixel, never inside a sum.

Elementwise ops whose vector and scalar code round apart (the mask sigmoid) are handled where the fusion computes
them (:func:`panbench.models.mmdet.fast_fusion.sigmoid_as_in`: the rounding of one thread, whatever the count).
"""

from __future__ import annotations

import ctypes
import os
import warnings
from typing import Any

__all__ = ["MKL_STRICT", "layout_free_convolutions", "reproducible_blas"]

MKL_STRICT = "AUTO,STRICT"  # MKL_CBWR's value: the CPU's own code path, sums in an order free of the thread count
_AUTO, _STRICT, _ALL = 2, 0x10000, -1  # mkl_service.h: MKL_CBWR_AUTO, MKL_CBWR_STRICT, MKL_CBWR_ALL
_state: bool | None = None


def _mkl() -> Any | None:
    """torch's MKL service functions (linked into libtorch_cpu), or None where torch runs on another BLAS."""
    import torch

    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        return lib if hasattr(lib, "mkl_serv_cbwr_set") and hasattr(lib, "mkl_serv_cbwr_get") else None
    except OSError:
        return None


def reproducible_blas() -> bool:
    """MKL's sums in strict CNR mode, so that a product has the same bits on any thread count; True when it holds
    (or torch has no MKL: nothing to set), False with a warning when MKL ran before it could be set.  Idempotent;
    forked processes inherit it, and the environment variable carries it to processes started from this one."""
    global _state
    if _state is not None:
        return _state
    os.environ.setdefault("MKL_CBWR", MKL_STRICT)
    lib = _mkl()
    if lib is None:
        _state = True
        return True
    if lib.mkl_serv_cbwr_get(ctypes.c_int(_ALL)) & _STRICT or lib.mkl_serv_cbwr_set(ctypes.c_int(_AUTO | _STRICT)) == 0:
        _state = True
    else:
        _state = False
        warnings.warn("MKL ran before panbench could set its strict reproducible mode: segment scores may differ in "
                      f"their last bits between process layouts; set MKL_CBWR={MKL_STRICT} before Python starts",
                      RuntimeWarning, stacklevel=2)
    return _state


def _onednn(conv: Any) -> Any:
    """``conv._conv_forward`` through oneDNN for a float32 CPU input, as it was otherwise."""
    import torch

    base = conv._conv_forward
    padding, stride, dilation = list(conv.padding), list(conv.stride), list(conv.dilation)

    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32 and x.dim() == 4
                and x.numel() and not (torch.is_grad_enabled() and weight.requires_grad)
                and torch.backends.mkldnn.enabled):
            return torch.mkldnn_convolution(x.contiguous(), weight.contiguous(),
                                            None if bias is None else bias.contiguous(),
                                            padding, stride, dilation, conv.groups)
        return base(x, weight, bias)

    return forward


def layout_free_convolutions(module: Any) -> int:
    """Every ``nn.Conv2d`` of ``module`` (zero padding given as numbers) computed by oneDNN on the CPU in float32,
    whatever the thread count and batch; the number of convolutions routed.  Nothing where torch has no oneDNN."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return 0
    n = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str) \
                and "_conv_forward" not in vars(m):
            m._conv_forward = _onednn(m)
            n += 1
    return n
