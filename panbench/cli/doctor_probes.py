"""``panbench doctor``'s probe of mixed precision: each architecture's demo model (random weights) run once
per mode (:data:`panbench.models.amp.MODES`) on a device, to say which modes work there."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _tiny_batch(size: int = 64) -> dict[str, Any]:
    """One synthetic image in the form mmdet's ``test_step`` takes."""
    import torch
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
    meta = {"img_id": 0, "img_shape": (size, size), "ori_shape": (size, size), "scale_factor": (1.0, 1.0),
            "pad_shape": (size, size), "batch_input_shape": (size, size)}
    return {"inputs": [img], "data_samples": [DetDataSample(metainfo=meta)]}


def _modes(model: Any, device: str) -> dict[str, str]:
    """``{mode: ""}`` for each mode in which ``test_step`` runs on ``device``, else the first line of its error."""
    import torch

    from panbench.models.amp import MODES

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
    return res


def amp_support(device: str, config_dir: Path | None = None) -> dict[str, dict[str, str]]:
    """For each architecture (its demo model, random weights, one 64x64 image): ``{mode: ""}``
    when ``test_step`` runs under that mode on ``device``, else the first line of its error."""
    import torch

    from panbench.models import mm
    from panbench.models.amp import keep_ops_fp32
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
        out[spec.architecture] = _modes(model, device)
    return out
