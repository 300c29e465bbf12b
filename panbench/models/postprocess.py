"""Panoptic post-processing for query-based models (docs/eval.md, "Post-processing"): ``default``, ``maskwise``
and ``argmax``, each returning mmdet's panoptic encoding (stuff of one class merged, ``num_classes`` for VOID)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: ``--postprocess``: how the masks of a MaskFormer-family model become one panoptic map.
POSTPROCESSES = ("default", "maskwise", "argmax")
#: ``--fusion``: what runs a model's own panoptic fusion, panbench's implementation or mmdet's.
FUSIONS = ("panbench", "mmdet")


@dataclass(frozen=True)
class PostProcess:
    """A post-processing choice and its parameters (the record's); the defaults are the only ones (``--pp-*``)."""

    name: str = "default"
    alpha: float = 0.25
    beta: float = 1.0
    conf_thr: float = 0.25
    keep_thr: float = 0.6
    mask_thr: float = 0.5

    def label(self) -> str:
        if self.name == "maskwise":
            return f"maskwise(a={self.alpha:g},b={self.beta:g},conf={self.conf_thr:g},keep={self.keep_thr:g})"
        return self.name


def _paint(pan: torch.Tensor, mask: torch.Tensor, label: int, num_things: int, instance: int) -> int:
    """Write one segment in mmdet's encoding; returns the next free thing instance id."""
    from panbench.models.encoding import INSTANCE_OFFSET  # numpy's import, not at --help (which reads PostProcess)

    if label < num_things:  # masked_fill_: no GPU-to-host sync (boolean indexing would count the mask first)
        pan.masked_fill_(mask, label + instance * INSTANCE_OFFSET)
        return instance + 1
    pan.masked_fill_(mask, label)  # stuff of one class shares instance id 0
    return instance


def mask_wise_merge(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                    pp: PostProcess) -> torch.Tensor:
    """Panoptic SegFormer's mask-wise merging; ``mask_cls`` (Q, C+1) logits, ``mask_pred`` (Q, H, W) logits."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    p, labels = F.softmax(mask_cls.float(), dim=-1)[:, :num_classes].max(-1)
    m = mask_pred.float().sigmoid()
    binary = m > pp.mask_thr
    area = binary.flatten(1).sum(1)
    quality = (m * binary).flatten(1).sum(1) / area.clamp(min=1)
    score = p.pow(pp.alpha) * quality.pow(pp.beta)
    h, w = m.shape[-2:]
    pan = torch.full((h, w), num_classes, dtype=torch.int32, device=m.device)
    taken = torch.zeros((h, w), dtype=torch.bool, device=m.device)
    # the per-query numbers go to the host once (one sync); the thresholds computed on the device (its answers)
    order = torch.argsort(score, descending=True, stable=True)
    conf = torch.tensor(pp.conf_thr, dtype=score.dtype)  # compared in score's dtype, as score[q] < conf_thr is
    need = pp.keep_thr * area  # float32, as pp.keep_thr * area[q]
    order_l, score_l, area_l, need_l, labels_l = (t.tolist() for t in (order, score, area, need, labels))
    conf_f = conf.item()
    instance = 1
    for q in order_l:
        if score_l[q] < conf_f:
            break
        if area_l[q] == 0:
            continue
        mask = binary[q] & ~taken
        if float(np.float32(int(mask.sum()))) < need_l[q]:  # one sync per candidate query
            continue
        instance = _paint(pan, mask, labels_l[q], num_things, instance)
        taken |= mask
    return pan


def pixel_argmax(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int) -> torch.Tensor:
    """Each pixel to the query with the highest ``p * m`` (queries labelled "no object" excluded)."""
    import torch
    import torch.nn.functional as F

    p, labels = F.softmax(mask_cls.float(), dim=-1).max(-1)
    keep = labels != num_classes
    h, w = mask_pred.shape[-2:]
    pan = torch.full((h, w), num_classes, dtype=torch.int32, device=mask_pred.device)
    if not keep.any():
        return pan
    from panbench.models.encoding import INSTANCE_OFFSET

    qs = torch.nonzero(keep).flatten()
    winner = (p[qs].view(-1, 1, 1) * mask_pred[qs].float().sigmoid()).argmax(0)
    # each query painted where it wins, in query order: a thing that wins a pixel takes the next instance id
    won = torch.bincount(winner.flatten(), minlength=len(qs)) > 0
    label = labels[qs]
    thing = won & (label < num_things)
    table = torch.where(thing, label + torch.cumsum(thing.long(), 0) * INSTANCE_OFFSET, label)
    return table[winner].int()


def merge_queries(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                  pp: PostProcess) -> torch.Tensor:
    """``--postprocess maskwise|argmax`` (``pp.name``) on one image's class logits and mask logits."""
    if pp.name == "maskwise":
        return mask_wise_merge(mask_cls, mask_pred, num_classes, num_things, pp)
    return pixel_argmax(mask_cls, mask_pred, num_classes, num_things)
