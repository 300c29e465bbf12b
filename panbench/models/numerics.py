"""A CPU forward whose numbers do not depend on the process layout: the same bits from one process, forked processes,
torchrun ranks, a resume, any ``--batch-size`` or thread count (docs/analysis.md, "Segment scores on every layout").

Three things in torch's CPU forward change the last bits of a result with the layout, on AVX-512 hosts most of all:

- MKL's ``sgemm`` (every linear layer, attention's products, the im2col convolutions) splits its sums by the thread
  count.  MKL's strict Conditional Numerical Reproducibility mode (``MKL_CBWR=AUTO,STRICT``) sums in an order that
  does not; it has to be set before MKL's first call, so panbench sets it before it loads a model.
- torch picks a convolution's kernel by the thread count and the batch (``use_mkldnn`` in ATen's ConvUtils: oneDNN,
  except im2col + gemm for a 1x1 convolution on one thread and for a small single image), and the two round apart.
  :func:`layout_free` sends every float32 2-D convolution of a model on the CPU to oneDNN, whose inference kernels
  split work by image, channel block and pixel, never inside a sum.
- torch's CPU GELU, SiLU, sigmoid, Mish and softplus round some values one ulp apart in their vector and scalar code,
  and which elements take the scalar code (the last ``len % 32`` of each thread's part, with AVX-512) moves with the
  thread count and the batch.  :func:`layout_free` computes each such activation module of a model with every
  element through the vector code: pieces under torch's grain (one thread each), the last one padded.

A forward under ``torch.compile`` (``--compile``) is inductor's: :func:`torch_own` gives the modules back their own
methods before they compile.  The fusion's own sigmoid, which mmdet's output is matched against, is rounded as on
one thread whatever the count (:func:`panbench.models.mmdet.fast_fusion.sigmoid_as_in`).
"""

from __future__ import annotations

import ctypes
import os
import warnings
from typing import Any

__all__ = ["MKL_STRICT", "layout_free", "reproducible_blas", "torch_own", "vector_code"]

MKL_STRICT = "AUTO,STRICT"  # MKL_CBWR's value: the CPU's own code path, sums in an order free of the thread count
_AUTO, _STRICT, _ALL = 2, 0x10000, -1  # mkl_service.h: MKL_CBWR_AUTO, MKL_CBWR_STRICT, MKL_CBWR_ALL
_state: bool | None = None
# the activation modules computed with every element through torch's vector code: module -> class names
_ELEMENTWISE = {"torch.nn.modules.activation": {"GELU", "SiLU", "Sigmoid", "Mish", "Softplus"},
                "transformers.activations": {"GELUActivation", "GELUTanh", "PytorchGELUTanh", "SiLUActivation",
                                             "QuickGELUActivation", "MishActivation", "AccurateGELUActivation"},
                "timm.layers.activations": {"GELU", "GELUTanh", "Sigmoid", "Swish", "Mish", "QuickGELU"}}
_STEP = 256  # a multiple of every vector loop's step (2 vectors: 32 float32 with AVX-512)
_PIECE = 127 * _STEP  # under at::internal::GRAIN_SIZE (32768): torch computes a piece on one thread


def _mkl() -> Any | None:
    """torch's MKL service functions (linked into libtorch_cpu), or None where torch runs on another BLAS."""
    import torch

    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
    except OSError:
        return None
    return lib if hasattr(lib, "mkl_serv_cbwr_set") and hasattr(lib, "mkl_serv_cbwr_get") else None


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
    elif lib.mkl_serv_cbwr_get(ctypes.c_int(_ALL)) & _STRICT:
        _state = True
    else:
        _state = lib.mkl_serv_cbwr_set(ctypes.c_int(_AUTO | _STRICT)) == 0
        if not _state:
            warnings.warn("MKL ran before panbench could set its strict reproducible mode: segment scores may differ "
                          f"in their last bits between process layouts; set MKL_CBWR={MKL_STRICT} before Python "
                          "starts", RuntimeWarning, stacklevel=2)
    return _state


def vector_code(f: Any, x: Any) -> Any:
    """The elementwise ``f`` of ``x`` with every element through torch's vector code, on any thread count and batch:
    pieces of ``_PIECE`` elements (one thread each, no tail), the last one padded to a whole step."""
    import torch

    flat = x.reshape(-1)
    out = torch.empty_like(flat)
    for k in range(0, flat.numel(), _PIECE):
        piece = flat[k: k + _PIECE]
        n = piece.numel()
        if n % _STEP:
            pad = piece.new_zeros(-(-n // _STEP) * _STEP)
            pad[:n] = piece
            piece = pad
        out[k: k + n] = f(piece)[:n]
    return out.view(x.shape)


def _vectorized(module: Any) -> Any:
    """``module.forward`` (an elementwise activation) through :func:`vector_code` for a float32 CPU input."""
    import torch

    base = module.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.compiler.is_compiling():
            return vector_code(base, x)
        return base(x)

    return forward


def _onednn(conv: Any) -> Any:
    """``conv._conv_forward`` through oneDNN for a float32 CPU input, as it was otherwise."""
    import torch

    base = conv._conv_forward
    padding, stride, dilation = list(conv.padding), list(conv.stride), list(conv.dilation)

    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32 and x.dim() == 4
                and x.numel() and not (torch.is_grad_enabled() and weight.requires_grad)
                and torch.backends.mkldnn.enabled and not torch.compiler.is_compiling()):
            return torch.mkldnn_convolution(x.contiguous(), weight.contiguous(),
                                            None if bias is None else bias.contiguous(),
                                            padding, stride, dilation, conv.groups)
        return base(x, weight, bias)

    return forward


def layout_free(module: Any) -> int:
    """``module``'s CPU float32 forward made the same bits on any thread count and batch: every ``nn.Conv2d`` (zero
    padding given as numbers) through oneDNN where torch has it, every activation of :data:`_ELEMENTWISE` through
    :func:`vector_code`.  The number of modules changed; a second call changes none."""
    import torch

    onednn = torch.backends.mkldnn.is_available()
    n = 0
    for m in module.modules():
        if onednn and isinstance(m, torch.nn.Conv2d) and m.padding_mode == "zeros" \
                and not isinstance(m.padding, str) and "_conv_forward" not in vars(m):
            vars(m)["_conv_forward"] = _onednn(m)  # this instance's, over the class's method
            n += 1
        elif type(m).__name__ in _ELEMENTWISE.get(type(m).__module__, ()) and "forward" not in vars(m):
            vars(m)["forward"] = _vectorized(m)
            n += 1
    return n


def torch_own(module: Any) -> int:
    """Undo :func:`layout_free` on ``module``: each routed module's own methods again (what ``torch.compile``
    traces); the number of modules given back."""
    n = 0
    for m in module.modules():
        for name in ("_conv_forward", "forward"):
            if name in vars(m) and getattr(vars(m)[name], "__qualname__", "").startswith(("_onednn.", "_vectorized.")):
                del vars(m)[name]
                n += 1
    return n
