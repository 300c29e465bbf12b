"""Every change panbench makes to a model's panoptic fusion head (``panoptic_fusion_head``), in one place.

* :func:`panoptic_only`: the config computes the panoptic output only.
* :func:`install_postprocess`: ``--postprocess maskwise|argmax`` replaces the head's fusion.
* :func:`install_fusion`: ``--fusion panbench`` runs the head's own fusion as :mod:`.fast_fusion` implements it;
  with its ``defer`` on (:meth:`~panbench.models.mmdet.family.MMDetModel.deferred`, the eval loop), the forward
  leaves each image's fusion as a job in the data sample (:data:`PENDING`) that :func:`finish_sample` runs later,
  on the post-processing thread, while the next batch's forward runs.
* :func:`grab_queries`: the query logits the head's ``predict`` receives, read on the way (``panbench viz``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from panbench.errors import PanbenchError
from panbench.models.amp import keep_autocast
from panbench.models.postprocess import merge_queries
from panbench.models.protocol import wrapped_method

if TYPE_CHECKING:
    import torch

    from panbench.models.postprocess import PostProcess


def panoptic_only(cfg: Any, keep_instances: bool = False) -> list[str]:
    """Switch off the instance and semantic outputs MaskFormer-family heads compute beside the panoptic one (the zoo's
    Mask2Former configs set ``instance_on=True``); PQ reads only the panoptic map, which does not depend on them.
    ``keep_instances``: the instance output is on (what AP reads; MaskFormer's configs leave it off; PanopticFPN's
    instance branch needs no switch).  The semantic output always goes: mmdet 3.3's fusion head asserts ``not
    semantic_on``.  Returns the keys changed (recorded in the resolved config that goes into each result)."""
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

    head = getattr(model, "panoptic_fusion_head", None)
    if head is None or not hasattr(head, "panoptic_postprocess"):
        raise PanbenchError(f"{where}: --postprocess {pp.name} needs a MaskFormer, Mask2Former or OneFormer model "
                            "(query masks); PanopticFPN and DETR have their own fusion only")

    def run(mask_cls: Any, mask_pred: Any) -> Any:
        pan = merge_queries(mask_cls, mask_pred, head.num_classes, head.num_things_classes, pp)
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

    def grab(orig: Callable) -> Callable:
        def predict(mask_cls: Any, mask_pred: Any, *a: Any, **k: Any) -> Any:
            captured["cls"], captured["pred"] = mask_cls, mask_pred
            return orig(mask_cls, mask_pred, *a, **k)

        return predict

    with wrapped_method(head, "predict", grab):
        yield captured


PENDING = "panbench_pending"  # metainfo key of a pred_panoptic_seg whose fusion is deferred: the job that runs it


class _Deferrable:
    """A fusion head's method replaced by panbench's fusion: each image's fusion is a job run at once or, with
    ``defer`` on, kept in a placeholder ``PixelData`` (``metainfo[PENDING]``) for :func:`finish_sample`."""

    defer = False

    def __init__(self, head: Any) -> None:
        self.head = head

    def pending(self, job: Callable[[], dict[str, Any]]) -> Any:
        from mmengine.structures import PixelData

        return PixelData(metainfo={PENDING: keep_autocast(job)})


class MaskFormerPredict(_Deferrable):
    """A ``predict`` for ``head`` (a ``MaskFormerFusionHead``) that runs
    :func:`~panbench.models.mmdet.fast_fusion.maskformer_fusion` and, with ``instance_on`` (AP),
    :func:`~panbench.models.mmdet.fast_fusion.maskformer_instances`: every output the head is asked for
    (:func:`fast_outputs` says which configurations those are)."""

    def __call__(self, mask_cls_results: torch.Tensor, mask_pred_results: torch.Tensor, batch_data_samples: Any,
                 rescale: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
        out = []
        for mask_cls, mask_pred, sample in zip(mask_cls_results, mask_pred_results, batch_data_samples):
            meta = sample.metainfo
            ih, iw = meta["img_shape"][:2]
            size = tuple(meta["ori_shape"][:2]) if rescale else None
            job = partial(self.results, mask_cls, mask_pred[:, :ih, :iw], size)
            out.append({"pan_results": self.pending(job)} if self.defer else job())
        return out

    def results(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor, size: tuple[int, int] | None
                ) -> dict[str, Any]:
        """One image's outputs (``mask_pred`` without padding; ``size``: upsample to it), as mmdet's ``predict``."""
        from mmengine.structures import InstanceData, PixelData

        import panbench.models.mmdet.fast_fusion as ff

        head, cfg = self.head, self.head.test_cfg
        n_cls, n_th, top = head.num_classes, head.num_things_classes, cfg.get("max_per_image", 100)
        instance_on = cfg.get("instance_on", False)
        masks = ff.QueryMasks(mask_pred, size)
        if instance_on:  # the queries both outputs read, upsampled once
            masks.prepare(ff.fusion_queries(mask_cls, n_cls, cfg.get("object_mask_thr", 0.8))[0],
                          ff.instance_queries(mask_cls, n_cls, n_th, top)[2])
        pan = ff.maskformer_fusion(mask_cls, mask_pred, n_cls, n_th, cfg.get("object_mask_thr", 0.8),
                                cfg.get("iou_thr", 0.8), cfg.get("filter_low_score", False), size, masks)
        result = {"pan_results": PixelData(sem_seg=pan[None])}
        if instance_on:
            scores, labels, boxes, inst = ff.maskformer_instances(mask_cls, mask_pred, n_cls, n_th, top, size, masks)
            result["ins_results"] = InstanceData(bboxes=boxes, labels=labels, scores=scores, masks=inst)
        return result


def fast_outputs(head: Any) -> bool:
    """Whether panbench's MaskFormer fusion computes every output ``head``'s test config asks for: the panoptic
    map, with or without the instance output (mmdet 3.3 refuses ``semantic_on``; a config without
    ``panoptic_on`` keeps mmdet's ``predict``)."""
    cfg = head.test_cfg or {}
    return bool(cfg.get("panoptic_on", True)) and not cfg.get("semantic_on", False)


class HeuristicPredict(_Deferrable):
    """A ``_predict_single`` for ``head`` (a ``HeuristicFusionHead``) that runs
    :func:`~panbench.models.mmdet.fast_fusion.heuristic_fusion`."""

    def __call__(self, mask_results: Any, seg_preds: torch.Tensor, **kwargs: Any) -> Any:
        job = partial(self.results, mask_results, seg_preds)
        return self.pending(job) if self.defer else job()["pan_results"]

    def results(self, mask_results: Any, seg_preds: torch.Tensor) -> dict[str, Any]:
        from mmengine.structures import PixelData

        from panbench.models.mmdet.fast_fusion import heuristic_fusion

        head = self.head
        pan = heuristic_fusion(mask_results.scores, mask_results.labels, mask_results.masks, seg_preds,
                               head.num_things_classes, head.num_classes, head.test_cfg.mask_overlap,
                               head.test_cfg.stuff_area_limit)
        return {"pan_results": PixelData(sem_seg=pan[None])}


def deferrable(model: Any) -> _Deferrable | None:
    """The fusion :func:`install_fusion` put in ``model``'s fusion head, None where mmdet's runs."""
    head = getattr(model, "panoptic_fusion_head", None)
    for name in ("predict", "_predict_single"):
        fn = vars(head).get(name) if head is not None else None
        if isinstance(fn, _Deferrable):
            return fn
    return None


def finish_sample(sample: Any) -> Any:
    """A data sample of a forward made with the fusion deferred, with its fusion run: ``pred_panoptic_seg`` and,
    when the fusion gives it, ``pred_instances`` set as mmdet's ``add_pred_to_datasample`` sets them."""
    pan = sample.get("pred_panoptic_seg")
    job = pan.metainfo.get(PENDING) if pan is not None else None
    if job is None:
        return sample
    result = job()
    sample.pred_panoptic_seg = result["pan_results"]
    if "ins_results" in result:
        sample.pred_instances = result["ins_results"]
    return sample


def install_fusion(model: Any, name: str) -> str | None:
    """Make ``model``'s panoptic fusion head run panbench's implementation of its own fusion (``name``
    "panbench") or leave mmdet's (``"mmdet"``).  Returns the head's class name when it was replaced."""
    head = getattr(model, "panoptic_fusion_head", None)
    if name != "panbench" or head is None or "panoptic_postprocess" in vars(head):  # --postprocess has its own
        return None
    kind = type(head).__name__
    if kind == "MaskFormerFusionHead":
        if not fast_outputs(head):
            return None
        head.predict = MaskFormerPredict(head)
    elif kind == "HeuristicFusionHead":
        head._predict_single = HeuristicPredict(head)
    else:
        return None
    return kind
