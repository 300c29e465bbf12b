"""Every change panbench makes to a model's panoptic fusion head (``panoptic_fusion_head``), in one place.

* :func:`panoptic_only`: the config computes the panoptic output only.
* :func:`install_postprocess`: ``--postprocess maskwise|argmax`` replaces the head's fusion.
* :func:`grab_queries`: the query logits the head's ``predict`` receives, read on the way (``panbench viz``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panbench.models.postprocess import PostProcess


def panoptic_only(cfg: Any, keep_instances: bool = False) -> list[str]:
    """Switch off the instance and semantic outputs MaskFormer-family heads compute beside the
    panoptic one (the zoo's Mask2Former configs set ``instance_on=True``); PQ reads only the
    panoptic map, which does not depend on them.  ``keep_instances``: the instance output is on (what AP
    reads; MaskFormer's configs leave it off; PanopticFPN's instance branch needs no switch).
    The semantic output always goes: mmdet 3.3's fusion head asserts ``not semantic_on``.
    Returns the keys changed (recorded in the resolved config that goes into each result)."""
    test_cfg = cfg.model.get("test_cfg")
    changed = []
    if isinstance(test_cfg, dict) and "panoptic_on" in test_cfg:
        want = {"instance_on": keep_instances, "semantic_on": False}
        for key, on in want.items():
            if bool(test_cfg.get(key)) != on:
                test_cfg[key] = on
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
def grab_queries(model: Any) -> Iterator[dict[str, Any]]:
    """While entered, the class and mask logits a MaskFormer-family fusion head's ``predict`` receives go to
    the dict yielded (``cls``, ``pred``; nothing for other heads)."""
    head = getattr(model, "panoptic_fusion_head", None)
    captured: dict[str, Any] = {}
    if head is None or not hasattr(head, "panoptic_postprocess"):
        yield captured
        return
    orig, own = head.predict, "predict" in vars(head)  # own: an instance's predict (panbench's fusion)

    def grab(mask_cls: Any, mask_pred: Any, *a: Any, **k: Any) -> Any:
        captured["cls"], captured["pred"] = mask_cls, mask_pred
        return orig(mask_cls, mask_pred, *a, **k)

    head.predict = grab
    try:
        yield captured
    finally:
        if own:
            head.predict = orig
        else:
            del head.predict
