"""What AP and mIoU read of a transformers model's output: the processor's ``post_process_instance_segmentation``
and ``post_process_semantic_segmentation`` of one image (:meth:`panbench.models.hf.model.HFPanoptic.to_instances`,
``to_semantic``)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from panbench.analysis.instances import from_hf_instances, semantic_categories

if TYPE_CHECKING:
    from panbench.analysis.ap import Instances


def instances_of(processor: Any, settings: dict[str, Any], outputs: SimpleNamespace, target: tuple[int, int],
                 model_cats: list[int], things: set[int]) -> Instances:
    """One image's ``post_process_instance_segmentation`` (``settings``: its model type's ``instance_settings``)
    as :class:`panbench.analysis.ap.Instances`: the segments of thing categories (``model_cats``: model label id ->
    dataset category id), their masks at the image's size, scores and dataset category ids."""
    if getattr(processor, "class_info_file", "") is None:  # OneFormer's: transformers 5 tests
        processor = copy.copy(processor)  # `"ade20k" in class_info_file`, None without a file
        processor.class_info_file = ""
    r = processor.post_process_instance_segmentation(outputs, target_sizes=[target], **settings)
    r = r[0]
    keep = [k for k, s in enumerate(r["segments_info"])
            if 0 <= s["label_id"] < len(model_cats) and model_cats[s["label_id"]] in things]
    seg = r["segmentation"]
    if seg is not None and seg.dim() == 3:  # binary maps in the order of segments_info
        seg = seg[keep] if keep else seg[:0]
    return from_hf_instances({"segmentation": seg, "segments_info": [r["segments_info"][k] for k in keep]},
                             model_cats)


def semantic_of(processor: Any, outputs: SimpleNamespace, target: tuple[int, int], model_cats: list[int]) -> np.ndarray:
    """One image's ``post_process_semantic_segmentation`` at its size as an (H, W) map of dataset category ids
    (-1: VOID, a label mapped to no category)."""
    labels = processor.post_process_semantic_segmentation(outputs, target_sizes=[target])[0]
    return semantic_categories(labels, model_cats)
