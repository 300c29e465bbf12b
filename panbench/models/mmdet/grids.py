"""The Python API's post-processing grid of one image (``panbench.postprocess_grid``; docs/api.md, "Post-processing
grids"): MaskFormer and Mask2Former query outputs under every setting of a grid, as mmdet's
``MaskFormerFusionHead`` (or the merging rule) gives each alone, through this family's shared fusion
(:class:`panbench.models.mmdet.fast_fusion.GridFusion`).  torch is imported when it runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from panbench.models.grid import Setting, expand, parse_grid
from panbench.models.postprocess import PostProcess


@dataclass(frozen=True)
class GridResult:
    """One setting's panoptic prediction (:func:`postprocess_grid`): the id map (uint32, 0 = VOID) and its COCO
    ``segments_info`` (``id``, ``category_id``, ``iscrowd``)."""

    setting: Setting
    ids: Any
    segments: list[dict[str, Any]]


def postprocess_grid(mask_cls: Any, mask_pred: Any, grid: dict[str, list[Any]] | Sequence[str], num_things: int,
                     size: tuple[int, int] | None = None, label2cat: Sequence[int] | None = None) -> list[GridResult]:
    """One image's MaskFormer or Mask2Former outputs (``mask_cls`` (Q, C+1) class logits, ``mask_pred`` (Q, h, w)
    mask logits, padding removed; ``size``: the image's (H, W) to upsample to) post-processed under every setting
    of ``grid`` (``{"object_mask_thr": [0.6, 0.8], "postprocess": ["default", "maskwise"]}`` or ``eval --grid``'s
    ``["object_mask_thr=0.6,0.8", ...]``): one result per setting, each what the model's own fusion (mmdet's
    ``MaskFormerFusionHead``) or the merging rule gives under it alone, the shared work done once (docs/api.md,
    "Post-processing grids").  Category ids are ``label2cat[label]`` (default: the labels)."""
    import torch

    from panbench.models.encoding import panoptic_to_segments
    from panbench.models.mmdet.fast_fusion import GridFusion

    grid = parse_grid(list(grid)) if not isinstance(grid, dict) else grid
    settings = expand(grid, "maskformer", "postprocess_grid", None, PostProcess())
    num_classes = int(mask_cls.shape[-1]) - 1
    cats = list(label2cat) if label2cat is not None else list(range(num_classes))
    cfgs = [{k.rsplit(".", 1)[-1]: v for k, v in (s.cfg_options or {}).items()} for s in settings]
    with torch.inference_mode():
        fusion = GridFusion(torch.as_tensor(mask_cls), torch.as_tensor(mask_pred), num_classes, num_things, cfgs,
                            [s.postprocess for s in settings], None if size is None else (int(size[0]), int(size[1])))
        out = []
        for k, s in enumerate(settings):
            scores: dict[int, float] = {}
            ids, segments = panoptic_to_segments(fusion.panoptic(k, scores), num_classes, cats, scores)
            out.append(GridResult(s, ids, segments))
    return out
