"""Every change panbench makes to an mmdet model's panoptic fusion head and its outputs, in one place.

* :func:`panoptic_only`: the config computes the panoptic output only.
* :func:`install_postprocess`: ``--postprocess maskwise|argmax`` replaces the head's fusion.
* :func:`timed_fusion`: the eval loop times the head's ``predict`` (post-processing) apart.
* :func:`amp_ops_fp32`: under ``--amp`` the mmcv ops without a reduced-precision kernel run in
  fp32 (:mod:`panbench.models.amp`).
* :data:`INSTANCE_OFFSET` and :func:`panoptic_to_segments`: mmdet's panoptic encoding and its
  translation to an id map with ``segments_info``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from panbench.models.postprocess import PostProcess

INSTANCE_OFFSET = 1000  # mmdet's panoptic label encoding: label + instance * INSTANCE_OFFSET


def panoptic_only(cfg: Any) -> list[str]:
    """Switch off the instance and semantic outputs MaskFormer-family heads compute beside the
    panoptic one (the zoo's Mask2Former configs set ``instance_on=True``); PQ reads only the
    panoptic map, which does not depend on them.  Returns the keys changed (recorded in the
    resolved config that goes into each result)."""
    test_cfg = cfg.model.get("test_cfg")
    changed = []
    if isinstance(test_cfg, dict) and "panoptic_on" in test_cfg:
        for key in ("instance_on", "semantic_on"):
            if test_cfg.get(key):
                test_cfg[key] = False
                changed.append(f"model.test_cfg.{key}")
    return changed


def install_postprocess(model: Any, pp: PostProcess, where: str) -> None:
    """Make ``model``'s fusion head use ``pp`` (explicitly, on this instance only)."""
    if pp.name == "default":
        return
    from mmengine.structures import PixelData

    from panbench.errors import PanbenchError
    from panbench.models.postprocess import mask_wise_merge, pixel_argmax

    head = getattr(model, "panoptic_fusion_head", None)
    if head is None or not hasattr(head, "panoptic_postprocess"):
        raise PanbenchError(f"{where}: --postprocess {pp.name} needs a MaskFormer, Mask2Former or OneFormer model "
                            "(query masks); PanopticFPN and DETR have their own fusion only")
    n_cls, n_th = head.num_classes, head.num_things_classes

    def run(mask_cls: Any, mask_pred: Any) -> Any:
        if pp.name == "maskwise":
            pan = mask_wise_merge(mask_cls, mask_pred, n_cls, n_th, pp)
        else:
            pan = pixel_argmax(mask_cls, mask_pred, n_cls, n_th)
        return PixelData(sem_seg=pan[None])

    head.panoptic_postprocess = run


@contextmanager
def timed_fusion(model: Any, sink: list[float], sync: Any) -> Iterator[None]:
    """Time the calls of the panoptic fusion head's ``predict`` (post-processing) into ``sink``,
    ``sync`` run before each clock read (CUDA kernels are asynchronous)."""
    obj, name = getattr(model, "panoptic_fusion_head", None), "predict"
    if obj is None or not hasattr(obj, name):
        yield
        return
    orig, own = getattr(obj, name), name in vars(obj)  # own: an instance's predict (panbench's fusion)

    def wrapper(*a: Any, **k: Any) -> Any:
        sync()
        t = time.perf_counter()
        out = orig(*a, **k)
        sync()
        sink.append(time.perf_counter() - t)
        return out

    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        setattr(obj, name, orig) if own else delattr(obj, name)


def amp_ops_fp32(model: Any) -> None:
    """Make the mmcv ops of ``model`` that have no reduced-precision kernel run in fp32 (once per model)."""
    if not getattr(model, "_panbench_fp32_ops", False):
        from panbench.models.amp import keep_ops_fp32

        keep_ops_fp32(model)
        model._panbench_fp32_ops = True


def panoptic_to_segments(pan: Any, num_classes: int, label2cat: list[int]) -> tuple[np.ndarray, list[dict]]:
    """mmdet's panoptic map (label + instance * 1000, VOID = num_classes) to an id map and
    segments_info with compact ids 1..n (0 = VOID)."""
    import torch

    if isinstance(pan, torch.Tensor):
        u, inv = torch.unique(pan, return_inverse=True)
        u, inv = u.cpu().numpy(), inv.cpu().numpy()
    else:
        u, inv = np.unique(pan, return_inverse=True)
        inv = inv.reshape(pan.shape)
    labels = u % INSTANCE_OFFSET
    keep = labels != num_classes
    new_id = np.zeros(len(u), np.uint32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    segs = [{"id": int(new_id[k]), "category_id": int(label2cat[int(labels[k])]), "iscrowd": 0}
            for k in np.nonzero(keep)[0]]
    return new_id[inv], segs
