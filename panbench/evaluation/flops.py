"""GFLOPs per image, as the papers report them (Mask2Former, Cheng et al. 2022: averaged over 100 COCO val
images), counted in a pass of their own after the timed inference.

The counter is PyTorch's :class:`torch.utils.flop_counter.FlopCounterMode`: it sees every aten op that runs,
whatever Python control flow the model has (mmdet's heads, the two-stage detector's proposals, masked
attention), where a tracing counter (fvcore, ``mmengine.analysis``) needs a traceable ``forward``.  It counts
matrix products and convolutions (``mm``, ``addmm``, ``bmm``, ``baddbmm``, convolutions, scaled dot-product
attention) at 2 FLOPs per multiply-add; the papers count with fvcore, 1 per multiply-add, so the count is
halved.  Not counted: element-wise ops, normalisations, interpolation, ``grid_sample`` (deformable
attention's sampling) and mmcv's compiled ops (RoIAlign, NMS); fvcore counts a few of them (norms,
upsampling), which are small beside the convolutions.  What is counted is one whole inference step (the
model family's ``forward``: for mmdet's ``test_step``, preprocessing, network, panoptic fusion) on each image
after the model's own test pipeline.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from panbench.models.protocol import PanopticModel

COUNTER = "torch.utils.flop_counter.FlopCounterMode"
CONVENTION = "1 multiply-add = 1 FLOP (FlopCounterMode's count halved, as fvcore counts)"


class _TotalOnly:
    """Stands in for FlopCounterMode's module tracker: only the total ("Global") is read, and the tracker's
    hooks need a gradient function on every module input, which a parameter passed as an input (OneFormer's
    task embeddings) lacks under ``inference_mode``."""

    parents = {"Global"}

    def __enter__(self) -> _TotalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_step(model: PanopticModel, data: dict[str, Any], device: str) -> int:
    """Multiply-adds of one ``forward`` on one pipeline output ``data``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalOnly()  # type: ignore[assignment]  # the total only: no per-module hooks
    with torch.inference_mode(), counter:
        model.forward([data], device, None)
    return counter.get_total_flops() // 2


def model_gflops(model: PanopticModel, datas: list[dict[str, Any]], device: str) -> dict[str, Any] | None:
    """The record's ``flops`` field: GFLOPs per image averaged over ``datas`` (pipeline outputs), with the
    counter, its convention and the input sizes; None without images."""
    if not datas:
        return None
    t = time.perf_counter()
    per = [count_step(model, d, device) for d in datas]
    shapes = [list(model.input_hw(d)) for d in datas]
    return {"gflops": statistics.fmean(per) / 1e9, "images": len(per), "per_image_gflops": [p / 1e9 for p in per],
            "input_hw": shapes, "counter": COUNTER, "convention": CONVENTION,
            "seconds": time.perf_counter() - t}


def dataset_gflops(lm: Any, dataset: Any, n: int, device: str) -> dict[str, Any] | None:
    """``eval --flops-images N``: :func:`model_gflops` on the first ``n`` images of ``dataset``."""
    from panbench.errors import InputError
    from panbench.evaluation.inference.loop import Items

    items = Items(dataset, list(range(min(n, len(dataset.samples)))), lm.pipeline)
    datas = []
    for k in range(len(items)):
        it = items[k]
        if it["error"]:
            raise InputError(it["error"])
        datas.append(it["data"])
    return model_gflops(lm.family, datas, device)


def random_gflops(model: Any, image_hw: tuple[int, int] = (480, 640), device: str = "cpu") -> dict[str, Any]:
    """GFLOPs of a model with random weights (a family's ``random_model``) on one synthetic ``image_hw`` image
    through its pipeline (640x480: COCO val's most common size); what ``panbench ls --params`` shows."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        img = Path(d) / "image.jpg"
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8)).save(img)
        data = model.pipeline({"img_path": str(img), "img_id": 0})
    return model_gflops(model, [data], device) or {}
