"""Mixed precision (``--amp``): mmcv ops without reduced-precision kernels run in fp32.

mmcv 2.1.0 compiles RoIAlign (``roi_align_cuda.cu``, ``cpu/roi_align.cpp``) and
MultiScaleDeformableAttention (``ms_deform_attn_cuda.cu``) with
``AT_DISPATCH_FLOATING_TYPES_AND_HALF``: float64, float32 and float16, no bfloat16.  Under
``torch.autocast(dtype=bfloat16)`` the features reaching them are bf16 (and mmdet casts the RoIs to
the feature dtype), so PanopticFPN and Mask2Former would stop at their first image.
:func:`keep_ops_fp32` makes these modules of a model run with autocast disabled on float32
inputs, and casts their output back to the input's dtype; the rest of the model keeps running
in reduced precision.  mmcv's ``nms`` reads ``float`` pointers on the CPU (boxes and scores) and on
CUDA (boxes): it gets the same treatment (a process-wide wrapper of ``mmcv.ops.nms.nms``, the name
``batched_nms`` looks up; a pass-through for float32 inputs outside autocast).
:func:`amp_support` runs each architecture's demo model once per mode on a device to say which
modes work there (``panbench doctor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _first_float(args: tuple, kwargs: dict) -> Any:
    import torch

    for v in (*args, *kwargs.values()):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v
    return None


def fp32_forward(forward: Any) -> Any:
    """``forward`` run in fp32 when autocast is on or its inputs are reduced precision."""
    import torch

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        ref = _first_float(args, kwargs)
        if ref is None:
            return forward(*args, **kwargs)
        kind = ref.device.type
        if ref.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled(kind):
            return forward(*args, **kwargs)
        with torch.autocast(kind, enabled=False):
            out = forward(*_cast(args, torch.float32), **_cast(kwargs, torch.float32))
        return _cast(out, ref.dtype) if ref.dtype != torch.float64 else out

    wrapped.__panbench_fp32__ = True  # type: ignore[attr-defined]
    return wrapped


def keep_ops_fp32(model: Any) -> int:
    """Wrap the forward of each :data:`FP32_OPS` module of ``model`` (this instance only, once);
    returns how many modules are wrapped."""
    if not hasattr(model, "modules"):  # not a torch module: nothing to wrap
        return 0
    import importlib

    from panbench.ops import install

    install()
    import mmcv.ops

    nms_module = importlib.import_module("mmcv.ops.nms")  # the module (mmcv.ops.nms is the function)
    if not getattr(nms_module.nms, "__panbench_fp32__", False):
        nms_module.nms = fp32_forward(nms_module.nms)

    classes = tuple(getattr(mmcv.ops, n) for n in FP32_OPS)
    n = 0
    for m in model.modules():
        if isinstance(m, classes):
            if not getattr(m.forward, "__panbench_fp32__", False):
                m.forward = fp32_forward(m.forward)
            n += 1
    return n


def _tiny_batch(size: int = 64) -> dict[str, Any]:
    """One synthetic image in the form mmdet's ``test_step`` takes."""
    import torch
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
    meta = {"img_id": 0, "img_shape": (size, size), "ori_shape": (size, size), "scale_factor": (1.0, 1.0),
            "pad_shape": (size, size), "batch_input_shape": (size, size)}
    return {"inputs": [img], "data_samples": [DetDataSample(metainfo=meta)]}


def amp_support(device: str, config_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """For each architecture (its demo model, random weights, one 64x64 image): ``{mode: ""}``
    when ``test_step`` runs under that mode on ``device``, else the first line of its error."""
    import torch

    from panbench.models import mm
    from panbench.models.fusion import panoptic_only
    from panbench.models.registry import CONFIG_DIR, all_models

    root = config_dir or CONFIG_DIR
    out: dict[str, dict[str, str]] = {}
    for spec in all_models(root):
        if spec.dataset != "demo" or spec.architecture in out:
            continue
        cfg = mm.load_config(spec.config)
        panoptic_only(cfg)
        torch.manual_seed(0)
        model = mm.build_model(cfg, spec.config).to(device).eval()
        keep_ops_fp32(model)
        res: dict[str, str] = {}
        for mode in MODES:
            try:
                with torch.inference_mode():
                    if mode == "fp32":
                        model.test_step(_tiny_batch())
                    else:
                        dtype = torch.bfloat16 if mode == "bf16" else torch.float16
                        with torch.autocast(device.split(":")[0], dtype=dtype):
                            model.test_step(_tiny_batch())
                res[mode] = ""
            except Exception as e:  # reported, not raised: this is a capability probe
                res[mode] = (f"{type(e).__name__}: {e}".splitlines() or [""])[0][:120]
        out[spec.architecture] = res
    return out
