"""Mixed precision (``--amp``; docs/gpu.md, "Mixed precision"): the mmcv ops without a bfloat16 kernel run in fp32
(:func:`keep_ops_fp32`), a forward step under autocast, and a deferred fusion under the same autocast."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from panbench.errors import PanbenchError
from panbench.ops import install

FP32_OPS = ("RoIAlign", "MultiScaleDeformableAttention")  # mmcv.ops classes without a bf16 kernel
MODES = ("fp32", "bf16", "fp16")


def _cast(x: Any, dtype: Any) -> Any:
    """Floating tensors in ``x`` (nested tuples, lists, dicts) cast to ``dtype``."""
    import torch

    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() and x.dtype != dtype else x
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _cast(v, dtype) for k, v in x.items()}
    return x


def fp32_forward(forward: Any) -> Any:
    """``forward`` run in fp32 when autocast is on or its inputs are reduced precision."""
    import torch

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        ref = next((v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor) and v.is_floating_point()),
                   None)
        if ref is None or (ref.dtype in (torch.float32, torch.float64)
                           and not torch.is_autocast_enabled(ref.device.type)):
            return forward(*args, **kwargs)
        with torch.autocast(ref.device.type, enabled=False):
            out = forward(*_cast(args, torch.float32), **_cast(kwargs, torch.float32))
        return _cast(out, ref.dtype) if ref.dtype != torch.float64 else out

    wrapped.__panbench_fp32__ = True  # type: ignore[attr-defined]
    return wrapped


def keep_ops_fp32(model: Any) -> int:
    """Wrap the forward of each :data:`FP32_OPS` module of ``model`` (this instance, once); returns how many."""
    if not hasattr(model, "modules"):  # not a torch module: nothing to wrap
        return 0
    import sys

    install()
    import mmcv.ops

    nms_module: Any = sys.modules["mmcv.ops.nms"]  # the module, which mmcv.ops imports (mmcv.ops.nms is the function)
    if not getattr(nms_module.nms, "__panbench_fp32__", False):
        nms_module.nms = fp32_forward(nms_module.nms)

    classes = tuple(getattr(mmcv.ops, n) for n in FP32_OPS)
    found = [m for m in model.modules() if isinstance(m, classes)]
    for m in found:
        if not getattr(m.forward, "__panbench_fp32__", False):
            m.forward = fp32_forward(m.forward)
    return len(found)


def autocast_forward(step: Callable[[], Any], device: str, amp: str | None) -> Any:
    """``step()`` under ``torch.autocast`` in ``amp`` (None: as it is); an op without a kernel refused in one line."""
    if amp is None:
        return step()
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    try:
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype):
            return step()
    except RuntimeError as e:
        if "expected scalar type" in str(e) or "not implemented for" in str(e):
            raise PanbenchError(f"--amp {amp}: an op of this model does not run in reduced precision on {device} "
                                f"({str(e).splitlines()[0][:100]}); run without --amp (`panbench doctor` lists "
                                "the modes each architecture runs)") from e
        raise


def autocast_now() -> Callable[[], AbstractContextManager[Any]]:
    """A context manager factory entering the autocast in force now (``nullcontext`` where none is)."""
    import torch

    kind = next((k for k in ("cuda", "cpu") if torch.is_autocast_enabled(k)), None)
    if kind is None:
        return nullcontext
    dtype = torch.get_autocast_dtype(kind)
    return lambda: torch.autocast(kind, dtype=dtype)


def keep_autocast(job: Callable[[], Any]) -> Callable[[], Any]:
    """``job`` run, whenever and on whichever thread, under the autocast in force now (autocast is per thread)."""
    under = autocast_now()
    if under is nullcontext:
        return job

    def run() -> Any:
        with under():
            return job()

    return run
