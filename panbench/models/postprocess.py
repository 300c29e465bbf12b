"""Panoptic post-processing for query-based models (docs/eval.md, "Post-processing"): ``default``, ``maskwise``
and ``argmax``, each returning mmdet's panoptic encoding (stuff of one class merged, ``num_classes`` for VOID)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from panbench.pq.extensions import load_extension

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

    def cutoff(self) -> float | None:
        """The score below which this merging rule drops a segment (None: the model's own fusion decides): mask-wise
        merging's ``conf_thr`` as it compares it, in float32; 0 for pixel-wise argmax, which keeps every query."""
        if self.name == "maskwise":
            import numpy as np

            return float(np.float32(self.conf_thr))
        return 0.0 if self.name == "argmax" else None

    def label(self) -> str:
        if self.name == "maskwise":
            return f"maskwise(a={self.alpha:g},b={self.beta:g},conf={self.conf_thr:g},keep={self.keep_thr:g})"
        return self.name


def _paint(pan: torch.Tensor, mask: torch.Tensor, label: int, num_things: int, instance: int) -> tuple[int, int]:
    """Write one segment in mmdet's encoding; returns its code and the next free thing instance id."""
    from panbench.models.encoding import INSTANCE_OFFSET  # numpy's import, not at --help (which reads PostProcess)

    if label < num_things:  # masked_fill_: no GPU-to-host sync (boolean indexing would count the mask first)
        pan.masked_fill_(mask, label + instance * INSTANCE_OFFSET)
        return label + instance * INSTANCE_OFFSET, instance + 1
    pan.masked_fill_(mask, label)  # stuff of one class shares instance id 0
    return label, instance


def keep_score(scores: dict[int, float] | None, code: int, score: float) -> None:
    """Segment ``code``'s score in ``scores`` (when given): the highest of the queries painted with that code (the
    queries of one stuff class share one)."""
    if scores is not None and not (scores.get(code, -1.0) >= score):
        scores[code] = score


@dataclass
class MaskStats:
    """Mask-wise merging's per-query facts of one image's mask probabilities ``m`` (Q, H, W): the pixels above the
    mask threshold (``area``), the sum of their probabilities in float64 (``total``; exact: each term is a float32
    above 0.5) and, for float32 on the CPU, those pixels as bits for the painting (``bits``, ``_merge.c``;
    None: torch paints, on another device or dtype)."""

    area: torch.Tensor
    total: torch.Tensor
    bits: Any = None
    binary: torch.Tensor | None = None

    @staticmethod
    def of(m: torch.Tensor, thr: float) -> MaskStats:
        import numpy as np
        import torch

        if m.device.type == "cpu" and m.dtype == torch.float32:
            merge = load_extension("panbench.models._merge")
            m = m.contiguous()
            q, n = m.shape[0], m[0].numel()
            area, total = torch.empty(q, dtype=torch.long), torch.empty(q, dtype=torch.float64)
            bits = np.empty((q, (n + 63) // 64), np.uint64)
            merge.mask_stats(m.numpy(), q, n, thr, area.numpy(), total.numpy(), bits)
            return MaskStats(area, total, bits)
        binary = m > thr
        return MaskStats(binary.flatten(1).sum(1), (m.double() * binary).flatten(1).sum(1), None, binary)


def _paint_bits(pan: torch.Tensor, bits: Any, order: list[int], need: Any, labels: list[int], score: list[float],
                num_things: int, scores: dict[int, float] | None) -> None:
    """Mask-wise merging's painting in C (``_merge.c``, :class:`MaskStats`' bits) of the queries ``order``; each
    painted segment's score into ``scores``."""
    import numpy as np

    from panbench.models.encoding import INSTANCE_OFFSET

    codes = np.array([lab if lab >= num_things else -lab - 1 for lab in labels], np.int32)
    h, w = pan.shape
    painted = load_extension("panbench.models._merge").mask_paint(
        bits, len(labels), h * w, np.array(order, np.int64), need, codes, pan.view(-1).numpy())
    instance = 1
    for q in np.frombuffer(painted, np.int64).tolist():
        if labels[q] < num_things:
            keep_score(scores, labels[q] + instance * INSTANCE_OFFSET, score[q])
            instance += 1
        else:
            keep_score(scores, labels[q], score[q])


def mask_wise_merge(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                    pp: PostProcess, scores: dict[int, float] | None = None, probs: torch.Tensor | None = None,
                    stats: MaskStats | None = None) -> torch.Tensor:
    """Panoptic SegFormer's mask-wise merging; ``mask_cls`` (Q, C+1) logits, ``mask_pred`` (Q, H, W) logits (or
    their probabilities ``probs`` and :class:`MaskStats` ``stats``, computed already).  Each painted segment's
    confidence (``p ** alpha * quality ** beta``) goes into ``scores`` by its code, when given."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    p, labels = F.softmax(mask_cls.float(), dim=-1)[:, :num_classes].max(-1)
    m = mask_pred.float().sigmoid() if probs is None else probs
    st = MaskStats.of(m, pp.mask_thr) if stats is None else stats
    area = st.area
    quality = (st.total / area.clamp(min=1).double()).float()
    score = p.pow(pp.alpha) * quality.pow(pp.beta)
    h, w = m.shape[-2:]
    pan = torch.full((h, w), num_classes, dtype=torch.int32, device=m.device)
    # the per-query numbers go to the host once (one sync); the thresholds computed on the device (its answers)
    order = torch.argsort(score, descending=True, stable=True)
    conf = torch.tensor(pp.conf_thr, dtype=score.dtype)  # compared in score's dtype, as score[q] < conf_thr is
    need = pp.keep_thr * area  # float32, as pp.keep_thr * area[q]
    order_l, score_l, area_l, need_l, labels_l = (t.tolist() for t in (order, score, area, need, labels))
    conf_f = conf.item()
    order_l = [q for q in order_l[: next((j for j, q in enumerate(order_l) if score_l[q] < conf_f), len(order_l))]
               if area_l[q]]  # merging stops at the first query below the confidence; an empty mask is skipped
    if st.bits is not None:
        _paint_bits(pan, st.bits, order_l, need.float().numpy(), labels_l, score_l, num_things, scores)
        return pan
    assert st.binary is not None
    taken = torch.zeros((h, w), dtype=torch.bool, device=m.device)
    instance = 1
    for q in order_l:
        mask = st.binary[q] & ~taken
        count = int(mask.sum())  # one sync per candidate query
        if count == 0 or float(np.float32(count)) < need_l[q]:  # a mask with no pixel left is no segment
            continue
        code, instance = _paint(pan, mask, labels_l[q], num_things, instance)
        keep_score(scores, code, score_l[q])
        taken |= mask
    return pan


def argmax_queries(mask_cls: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The queries pixel-wise argmax reads (those not labelled "no object"), ascending, their class probabilities and
    labels."""
    import torch
    import torch.nn.functional as F

    p, labels = F.softmax(mask_cls.float(), dim=-1).max(-1)
    qs = torch.nonzero(labels != num_classes).flatten()
    return qs, p[qs], labels[qs]


def argmax_map(winner: torch.Tensor, p: torch.Tensor, label: torch.Tensor, num_things: int,
               scores: dict[int, float] | None = None) -> torch.Tensor:
    """The panoptic map of the winning query (a position among :func:`argmax_queries`') of each pixel; each
    segment's score (its query's class probability, the highest of them for a stuff class) into ``scores``."""
    import torch

    from panbench.models.encoding import INSTANCE_OFFSET

    # each query painted where it wins, in query order: a thing that wins a pixel takes the next instance id
    won = torch.bincount(winner.flatten(), minlength=len(label)) > 0
    thing = won & (label < num_things)
    table = torch.where(thing, label + torch.cumsum(thing.long(), 0) * INSTANCE_OFFSET, label)
    if scores is not None:
        for code, score in zip(table[won].tolist(), p[won].tolist()):
            keep_score(scores, code, score)
    return table[winner].int()


def pixel_argmax(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                 scores: dict[int, float] | None = None) -> torch.Tensor:
    """Each pixel to the query with the highest ``p * m`` (queries labelled "no object" excluded); each segment's
    score into ``scores`` (:func:`argmax_map`)."""
    import torch

    qs, p, label = argmax_queries(mask_cls, num_classes)
    h, w = mask_pred.shape[-2:]
    if not len(qs):
        return torch.full((h, w), num_classes, dtype=torch.int32, device=mask_pred.device)
    winner = (p.view(-1, 1, 1) * mask_pred[qs].float().sigmoid()).argmax(0)
    return argmax_map(winner, p, label, num_things, scores)


def merge_queries(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                  pp: PostProcess, scores: dict[int, float] | None = None) -> torch.Tensor:
    """``--postprocess maskwise|argmax`` (``pp.name``) on one image's class logits and mask logits; each segment's
    score (the rule's own confidence) into ``scores`` by its code, when given."""
    if pp.name == "maskwise":
        return mask_wise_merge(mask_cls, mask_pred, num_classes, num_things, pp, scores)
    return pixel_argmax(mask_cls, mask_pred, num_classes, num_things, scores)
