"""Each architecture's own panoptic fusion, mmdet's output pixel for pixel without its per-segment loops (``--fusion
panbench``; docs/eval.md, "The fusion step"): :func:`maskformer_fusion` (and :func:`maskformer_instances`) for
MaskFormer and Mask2Former, :func:`heuristic_fusion` for PanopticFPN, in mmdet's encoding (int32)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from panbench.models.encoding import INSTANCE_OFFSET
from panbench.models.postprocess import (
    MaskStats,
    PostProcess,
    argmax_map,
    argmax_queries,
    keep_score,
    mask_wise_merge,
    merge_queries,
)
from panbench.pq.extensions import load_extension

_fusion = load_extension("panbench.models.mmdet._fusion")  # the CPU float32 argmax (_fusion.c)


class QueryMasks:
    """One image's query mask logits (Q, h, w), upsampled to ``out_size`` (H, W) on demand (None: as they are), each
    once; bilinear interpolation is per mask, so every mask has the values it has upsampled alone."""

    def __init__(self, mask_pred: torch.Tensor, out_size: tuple[int, int] | None = None) -> None:
        self.mask_pred, self.out_size = mask_pred, out_size
        self.rows: torch.Tensor | None = None  # the queries upsampled by prepare, ascending
        self.up: torch.Tensor | None = None

    def _upsample(self, masks: torch.Tensor) -> torch.Tensor:
        if self.out_size is None:
            return masks
        return F.interpolate(masks[:, None], size=self.out_size, mode="bilinear", align_corners=False)[:, 0]

    def prepare(self, *queries: torch.Tensor) -> None:
        """Upsample the masks of the union of ``queries`` (each ascending) at once."""
        if self.out_size is not None:
            self.rows = torch.unique(torch.cat(queries))
            self.up = self._upsample(self.mask_pred[self.rows])

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """The upsampled masks of the queries ``idx`` (ascending), (len(idx), H, W)."""
        if self.rows is None or self.up is None:
            return self._upsample(self.mask_pred[idx])
        if len(idx) == len(self.rows):  # idx is all of them (prepare had idx among its queries)
            return self.up
        return self.up[torch.searchsorted(self.rows, idx)]


class QueryProbs:
    """A grid's (docs/eval.md, "Grids"): the mask probabilities of one image's queries as :func:`maskformer_fusion`
    computes them (:func:`sigmoid_as_in`, each element rounded as mmdet's sigmoid of every query rounds it) and each
    query's pixels at 0.5 or more, computed once for the union of the settings' queries (``prepare``)."""

    def __init__(self, masks: QueryMasks, total: int, run: int | None) -> None:
        self.masks, self.total, self.run = masks, total, run
        self.rows: torch.Tensor | None = None
        self.probs: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # owner's last (idx, scores, result)

    def prepare(self, *queries: torch.Tensor) -> None:
        self.rows = torch.unique(torch.cat(queries))
        self.probs = sigmoid_as_in(self.masks(self.rows), self.rows, self.total, self.run)
        self.counts = (self.probs >= 0.5).flatten(1).sum(1)

    def _at(self, idx: torch.Tensor) -> torch.Tensor | None:
        """Where ``idx`` (ascending, among the prepared rows) lie; None: they are all the rows."""
        assert self.rows is not None
        return None if len(idx) == len(self.rows) else torch.searchsorted(self.rows, idx)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        assert self.probs is not None
        at = self._at(idx)
        return self.probs if at is None else self.probs.index_select(0, at)

    def owner(self, idx: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """:func:`first_argmax` of ``scores[:, None, None] * self(idx)``, on the CPU without making either tensor (the
        last call's answer again for the same queries and scores: settings that rank the same queries alike)."""
        assert self.probs is not None and self.rows is not None
        last = self.last
        if last is not None and torch.equal(last[0], idx) and torch.equal(last[1], scores):
            return last[2]
        out = self._owner(idx, scores)
        self.last = (idx, scores, out)
        return out

    def _owner(self, idx: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        assert self.probs is not None and self.rows is not None
        probs = self.probs
        if probs.device.type != "cpu" or probs.dtype != torch.float32 or len(idx) < 2 or scores.dtype != torch.float32:
            return first_argmax(scores.view(-1, 1, 1) * self(idx))
        at = torch.searchsorted(self.rows, idx)
        out = torch.empty(probs.shape[1:], dtype=torch.long)
        _fusion.first_argmax_scaled(probs.numpy(), at.contiguous().numpy(), scores.contiguous().numpy(), out.numel(),
                                    out.numpy())
        return out

    def above_half(self, idx: torch.Tensor) -> torch.Tensor:
        """Each query's pixels with a probability of 0.5 or more."""
        assert self.counts is not None
        at = self._at(idx)
        return self.counts if at is None else self.counts[at]


class GridFusion:
    """One image's panoptic maps under several settings (docs/eval.md, "Grids"), each the map a separate run of it
    makes: the model's own fusion (:func:`maskformer_fusion`) under each ``cfgs[k]`` (``object_mask_thr``,
    ``iou_thr``, ``filter_low_score``) where ``pps[k]`` is ``default``, else that merging rule on every query's mask
    as mmdet's ``predict`` upsamples them (:func:`~panbench.models.postprocess.merge_queries`).  The masks of the
    union of the settings' queries (and ``extra``'s) are upsampled once, their probabilities computed once, shared by
    the rules too (mask-wise merging's per-query pixel counts once, pixel-wise argmax's owners with the model's own
    where they rank the same queries alike)."""

    def __init__(self, mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                 cfgs: list[dict[str, Any]], pps: list[PostProcess], out_size: tuple[int, int] | None = None,
                 extra: Sequence[torch.Tensor] = ()) -> None:
        self.mask_cls, self.mask_pred, self.num_classes, self.num_things = mask_cls, mask_pred, num_classes, num_things
        self.cfgs, self.pps, self.out_size = cfgs, pps, out_size
        self.every = torch.arange(mask_pred.shape[0], device=mask_pred.device)
        own = [fusion_queries(mask_cls, num_classes, c.get("object_mask_thr", 0.8))[0]
               for c, pp in zip(cfgs, pps) if pp.name == "default"]
        rules = {pp.name for pp in pps} - {"default"}
        self.argmax = argmax_queries(mask_cls, num_classes) if "argmax" in rules else None
        self.masks = QueryMasks(mask_pred, out_size)
        self.masks.prepare(*own, *extra, *([self.every] if rules else []))
        self.probs = QueryProbs(self.masks, mask_pred.shape[0], None if out_size is not None else _inner_run(mask_pred))
        shared = [*own, *([self.every] if "maskwise" in rules else []),
                  *([self.argmax[0]] if self.argmax is not None and len(self.argmax[0]) else [])]
        if shared:
            self.probs.prepare(*shared)
        self.stats: MaskStats | None = None

    def upsampled(self) -> torch.Tensor:
        """Every query's mask logits as mmdet's ``predict`` hands them to a merging rule."""
        return self.mask_pred if self.out_size is None else self.masks(self.every)

    def panoptic(self, k: int, scores: dict[int, float] | None = None) -> torch.Tensor:
        """Setting ``k``'s panoptic map in mmdet's encoding (int32); each segment's score into ``scores``."""
        c, pp = self.cfgs[k], self.pps[k]
        if pp.name == "maskwise":
            probs = self.probs(self.every)
            if self.stats is None:
                self.stats = MaskStats.of(probs, pp.mask_thr)
            return mask_wise_merge(self.mask_cls, self.mask_pred, self.num_classes, self.num_things, pp, scores,
                                   probs, self.stats)
        if pp.name == "argmax":
            assert self.argmax is not None
            qs, p, label = self.argmax
            if not len(qs):
                return merge_queries(self.mask_cls, self.upsampled(), self.num_classes, self.num_things, pp, scores)
            return argmax_map(self.argmax_owner(qs, p), p, label, self.num_things, scores)
        return maskformer_fusion(self.mask_cls, self.mask_pred, self.num_classes, self.num_things,
                                 c.get("object_mask_thr", 0.8), c.get("iou_thr", 0.8),
                                 c.get("filter_low_score", False), self.out_size, self.masks, self.probs, scores)

    def argmax_owner(self, qs: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """:func:`~panbench.models.postprocess.pixel_argmax`'s winner of each pixel from the shared probabilities:
        that rule sigmoids its queries' masks as a tensor of their own, whose elements torch's CPU sigmoid rounds by
        their place in it (:func:`sigmoid_as_in`), so the pixels of the few elements rounded apart from the shared
        ones are decided again from their values as that tensor has them."""
        owner = self.probs.owner(qs, p)
        probs, rows = self.probs.probs, self.probs.rows
        assert probs is not None and rows is not None
        block = _sigmoid_block() if probs.device.type == "cpu" and probs.dtype == torch.float32 else 0
        if not block or self.masks.up is None or self.masks.rows is None:
            if block == 0:
                return owner
            own = self.upsampled()[qs].float()
            return first_argmax(p.view(-1, 1, 1) * sigmoid_as_in(own, torch.arange(len(qs)), len(qs)))
        k, hw = len(qs), probs[0].numel()
        mine = _scalar_positions(k * hw, k * hw, block)  # the rule's own tensor: one loop over it, on one thread
        ref = _scalar_positions(self.probs.total * hw, self.probs.run or self.probs.total * hw, block)
        where = torch.full((self.probs.total,), -1, dtype=torch.long)
        where[qs.cpu()] = torch.arange(k)
        j = where[ref // hw]
        shared = (j * hw + ref % hw)[j >= 0]  # the positions the shared probabilities rounded by the scalar code
        apart = torch.cat([mine[~torch.isin(mine, shared)], shared[~torch.isin(shared, mine)]])
        if not len(apart):
            return owner
        pix = torch.unique(apart % hw)
        logits = self.masks.up.flatten(1)[torch.searchsorted(self.masks.rows, qs)][:, pix]  # (k, len(pix))
        own = _vector_sigmoid(logits.reshape(-1))  # then the rule's scalar-code elements among them
        scalar = mine[torch.isin(mine % hw, pix)]
        if len(scalar):
            at = (scalar // hw) * len(pix) + torch.searchsorted(pix, scalar % hw)
            own[at] = _scalar_sigmoid(logits.reshape(-1)[at])
        owner = owner.clone()
        owner.view(-1)[pix] = first_argmax(p.view(-1, 1) * own.view(k, len(pix)))
        return owner


def fusion_queries(mask_cls: torch.Tensor, num_classes: int, object_mask_thr: float = 0.8
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The queries kept (not "no object", score above ``object_mask_thr``), ascending, their scores, classes."""
    scores, labels = F.softmax(mask_cls, dim=-1).max(-1)
    keep = labels.ne(num_classes) & (scores > object_mask_thr)
    idx = torch.nonzero(keep).flatten()
    return idx, scores[idx], labels[idx]


def maskformer_fusion(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                      object_mask_thr: float = 0.8, iou_thr: float = 0.8, filter_low_score: bool = False,
                      out_size: tuple[int, int] | None = None, masks_of: QueryMasks | None = None,
                      probs_of: QueryProbs | None = None, scores: dict[int, float] | None = None) -> torch.Tensor:
    """The panoptic map of one image from ``mask_cls`` (Q, C+1) and ``mask_pred`` (Q, h, w, padding removed) logits,
    the masks upsampled to ``out_size`` first (mmdet's ``rescale``), shared with the instance output by ``masks_of``
    (a grid's settings share their probabilities too: ``probs_of``, prepared with these queries among its own).
    Each segment's score goes into ``scores`` by its code, when given: its query's class probability, the highest
    of them for the queries of one stuff class."""
    idx, cur_scores, cur_classes = fusion_queries(mask_cls, num_classes, object_mask_thr)
    k = len(idx)
    if probs_of is not None:  # a grid's: the probabilities of its queries, computed once
        assert probs_of.probs is not None
        (h, w), device = probs_of.probs.shape[-2:], probs_of.probs.device
        if k == 0:
            return torch.full((h, w), num_classes, dtype=torch.int32, device=device)
        owner, original = probs_of.owner(idx, cur_scores), probs_of.above_half(idx)
    else:  # mmdet sigmoids all the queries' masks at once: the upsampled (Q, H, W), else mask_pred as laid out
        run = None if out_size is not None else _inner_run(mask_pred)
        masks = sigmoid_as_in((masks_of or QueryMasks(mask_pred, out_size))(idx), idx, mask_pred.shape[0], run)
        (h, w), device = masks.shape[-2:], masks.device
        if k == 0:
            return torch.full((h, w), num_classes, dtype=torch.int32, device=device)
        original = (masks >= 0.5).flatten(1).sum(1)
        owner = first_argmax(cur_scores.view(-1, 1, 1) * masks)
    area = torch.bincount(owner.flatten(), minlength=k)
    ratio = area.double() / original.double().clamp(min=1)
    kept = (area > 0) & (original > 0) & ~(ratio < iou_thr)
    thing = kept & (cur_classes < num_things)
    instance = torch.cumsum(thing.long(), 0)
    table = torch.where(thing, cur_classes + instance * INSTANCE_OFFSET, cur_classes)
    table = torch.where(kept, table, torch.full_like(table, num_classes)).int()
    pan = table[owner]
    if filter_low_score:
        masks = probs_of(idx) if probs_of is not None else masks
        pan = torch.where(masks.gather(0, owner[None])[0] >= 0.5, pan, torch.full_like(pan, num_classes))
        if scores is not None:  # a kept query whose pixels the filter all took is in no segment
            kept = kept & (torch.bincount(owner[pan != num_classes], minlength=k) > 0)
    if scores is not None:
        for code, score in zip(table[kept].tolist(), cur_scores[kept].tolist()):
            keep_score(scores, code, score)
    return pan


_GRAIN = 32768  # at::internal::GRAIN_SIZE: a pointwise op on fewer elements runs on one thread


@functools.cache
def _sigmoid_block() -> int:
    """The elements torch's CPU float32 ``sigmoid`` takes per step of its vector code (32 with AVX512); a run's last
    ``len % block`` go through its scalar code, which rounds some one ulp apart.  0: both codes agree."""
    x = torch.linspace(-9.0, 9.0, 8192)
    scalar = _scalar_sigmoid(x)
    differ = (x.sigmoid() != scalar).nonzero()  # 8192: a multiple of every block, under the grain: all vector code
    if len(differ) == 0:
        return 0
    v, s = x[differ[0, 0]], scalar[differ[0, 0]]
    # a run shorter than the block is all scalar code, a run of one block all vector code
    return next((n for n in range(2, 257) if not (v.repeat(n).sigmoid() == s).any()), 0)


def _scalar_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``x.sigmoid()`` (1-D) through torch's scalar code for every element: a strided input has no vector loop."""
    buf = torch.empty(2 * len(x), dtype=x.dtype)
    buf[::2] = x
    return buf[::2].sigmoid()


def _vector_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``sigmoid`` of the 1-D ``x`` with every element through torch's vector code: pieces of fewer elements than a
    thread's grain, each padded to a multiple of the block."""
    block = _sigmoid_block() or 1
    out = torch.empty_like(x)
    for k in range(0, len(x), _GRAIN - block):
        piece = x[k: k + _GRAIN - block]
        pad = torch.zeros(-(-len(piece) // block) * block, dtype=x.dtype)
        pad[: len(piece)] = piece
        out[k: k + len(piece)] = pad.sigmoid()[: len(piece)]
    return out


def _inner_run(t: torch.Tensor) -> int:
    """The length of the inner loop of a pointwise op over ``t``: its contiguous innermost elements (1: strided)."""
    run, step = 1, 1
    for size, stride in zip(reversed(t.shape), reversed(t.stride())):
        if size == 1:
            continue
        if stride != step:
            break
        run, step = run * size, step * size
    return run


def _scalar_positions(n: int, run: int, block: int, threads: int = 1) -> torch.Tensor:
    """The flat positions that torch's CPU sigmoid of ``n`` elements with inner loops of ``run`` computes with its
    scalar code on ``threads`` threads: each loop's last ``len % block`` elements, the loops cut at
    ``at::parallel_for``'s chunks too.  One thread (the default) is the rounding panbench defines for every layout."""
    starts = np.arange(0, n, run, dtype=np.int64)
    if n >= _GRAIN and threads > 1:
        t = min(threads, -(-n // _GRAIN))
        starts = np.union1d(starts, np.arange(0, n, -(-n // t), dtype=np.int64))
    ends = np.append(starts[1:], n)
    tail = (ends - starts) % block
    keep = tail > 0
    first, tail = (ends - tail)[keep], tail[keep]
    offset = np.arange(int(tail.sum()), dtype=np.int64) - np.repeat(np.cumsum(tail) - tail, tail)
    return torch.from_numpy(np.repeat(first, tail) + offset)


def row_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(1)`` of a 2-D ``x`` as torch sums it on one thread, on any thread count: torch splits the sum of a
    single row over its threads (each thread's part added in the end), the sums of two rows or more by row."""
    return torch.cat([x, x]).sum(1)[:1] if x.shape[0] == 1 else x.sum(1)


def sigmoid_as_in(x: torch.Tensor, rows: torch.Tensor, total: int, run: int | None = None) -> torch.Tensor:
    """``x.sigmoid()`` of the masks ``x`` (k, H, W) of the queries ``rows`` (ascending) of a (``total``, H, W) tensor
    that mmdet sigmoids whole (inner loops ``run`` long; None: contiguous), each element rounded as that call rounds
    it: torch's CPU sigmoid rounds a value one ulp apart in its vector and scalar code, which decides argmax ties."""
    x = x.contiguous()
    out = x.sigmoid()
    block = _sigmoid_block() if x.device.type == "cpu" and x.dtype == torch.float32 else 0
    if not block or x.numel() == 0:
        return out
    hw = x[0].numel()
    mine = _scalar_positions(x.numel(), x.numel(), block, torch.get_num_threads())  # as computed: contiguous, one loop
    ref = _scalar_positions(total * hw, run or total * hw, block)  # as mmdet's call rounds it on one thread
    where = torch.full((total,), -1, dtype=torch.long)
    where[rows.cpu()] = torch.arange(len(rows))
    j = where[ref // hw]
    want = (j * hw + ref % hw)[j >= 0]
    flat, xf = out.view(-1), x.view(-1)
    to_scalar = want[~torch.isin(want, mine)]
    if len(to_scalar):
        flat[to_scalar] = _scalar_sigmoid(xf[to_scalar])
    to_vector = mine[~torch.isin(mine, want)]
    if len(to_vector):
        flat[to_vector] = _vector_sigmoid(xf[to_vector])
    return out


def instance_queries(mask_cls: torch.Tensor, num_classes: int, num_things: int, max_per_image: int = 100
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``instance_postprocess``'s detections (``topk(sorted=False)`` as mmdet calls it), things only: scores, labels,
    the queries they read (ascending, each once) and each detection's position among them."""
    num_queries = mask_cls.shape[0]
    scores = F.softmax(mask_cls, dim=-1)[:, :-1]
    labels = torch.arange(num_classes, device=mask_cls.device).unsqueeze(0).repeat(num_queries, 1).flatten(0, 1)
    top_scores, top = scores.flatten(0, 1).topk(max_per_image, sorted=False)
    top_labels = labels[top]
    thing = top_labels < num_things
    top_scores, top_labels, query = top_scores[thing], top_labels[thing], (top // num_classes)[thing]
    picked, row = torch.unique(query, return_inverse=True)  # each picked query's mask once
    return top_scores, top_labels, picked, row


def maskformer_instances(mask_cls: torch.Tensor, mask_pred: torch.Tensor, num_classes: int, num_things: int,
                         max_per_image: int = 100, out_size: tuple[int, int] | None = None,
                         masks_of: QueryMasks | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's instance output (scores, labels, x1 y1 x2 y2 boxes, binary masks) as mmdet's
    ``instance_postprocess``; the arguments as :func:`maskformer_fusion` takes them."""
    top_scores, top_labels, picked, row = instance_queries(mask_cls, num_classes, num_things, max_per_image)
    masks = (masks_of or QueryMasks(mask_pred, out_size))(picked)
    binary = masks > 0
    # the mask scores over one mask per detection, as mmdet lays them out and as it computes them on one thread, on
    # any thread count: each sigmoid rounded by its place (:func:`sigmoid_as_in`; a query picked twice has two) and
    # each row summed in torch's order for one thread (:func:`row_sums`)
    per_row, binary_rows = masks[row], binary[row].float()
    probs = sigmoid_as_in(per_row, torch.arange(len(row)), len(row)) * binary_rows
    mask_scores = row_sums(probs.flatten(1)) / (binary_rows.flatten(1).sum(1) + 1e-6)
    return top_scores * mask_scores, top_labels, mask_boxes(binary)[row], binary[row]


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """mmdet's ``mask2bbox`` without its loop over masks: (N, 4) float32 x1 y1 x2 y2 boxes, zeros for an empty mask."""
    n, h, w = masks.shape
    if masks.numel() == 0:
        return torch.zeros((n, 4), dtype=torch.float32, device=masks.device)
    u = masks.view(torch.uint8)  # a reduction over bytes is far faster than torch.any's over bools
    rows, cols = u.amax(2) > 0, u.amax(1) > 0
    ys, xs = torch.arange(h, device=masks.device), torch.arange(w, device=masks.device)
    box = torch.stack([torch.where(cols, xs, w).amin(1), torch.where(rows, ys, h).amin(1),
                       torch.where(cols, xs + 1, 0).amax(1), torch.where(rows, ys + 1, 0).amax(1)], 1).float()
    return torch.where(rows.any(1, keepdim=True), box, 0.0)


def first_argmax(x: torch.Tensor) -> torch.Tensor:
    """``x.argmax(0)`` (the first on ties; a NaN counts as the largest); on the CPU, float32 in C (``_fusion.c``), else
    a running maximum, where torch's reduction over the first of three dimensions is slow."""
    if x.device.type != "cpu" or x.shape[0] < 2:
        return x.argmax(0)
    if x.dtype == torch.float32:
        k, shape = x.shape[0], x.shape[1:]
        x = x.contiguous()
        out = torch.empty(shape, dtype=torch.long)
        _fusion.first_argmax(x.numpy(), k, out.numel(), out.numpy())
        return out
    best = x[0].clone()
    owner, better = torch.zeros(x.shape[1:], dtype=torch.long), torch.empty(x.shape[1:], dtype=torch.bool)
    for k in range(1, x.shape[0]):
        torch.gt(x[k], best, out=better)
        owner.masked_fill_(better, k)
        torch.maximum(best, x[k], out=best)
    return x.argmax(0) if best.isnan().any() else owner


def heuristic_fusion(scores: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, seg_preds: torch.Tensor,
                     num_things: int, num_classes: int, mask_overlap: float, stuff_area_limit: int,
                     segment_scores: dict[int, float] | None = None) -> torch.Tensor:
    """One image's panoptic map from its instances (N,) / (N, H, W) and semantic logits ``seg_preds``; each thing
    segment's score (its instance's) into ``segment_scores`` by its code, when given (stuff segments have none)."""
    return heuristic_map(semantic_labels(seg_preds, num_things), *instance_layer(scores, labels, masks, mask_overlap),
                         num_things, num_classes, stuff_area_limit, scores=segment_scores)


def semantic_labels(seg_preds: torch.Tensor, num_things: int) -> torch.Tensor:
    """The semantic head's label of each pixel (stuff labels follow the things')."""
    return first_argmax(seg_preds) + num_things


def instance_layer(scores: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, mask_overlap: float
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The instances laid by score, each where it overlaps those before by at most ``mask_overlap``: their labels in
    that order, the layer (1 + order position, 0 free; None without instances) and their scores in that order."""
    if not masks.shape[0]:
        return labels, None, scores
    order = torch.argsort(-scores)
    labels, masks, scores = labels[order], masks[order].bool(), scores[order]
    boxes = mask_boxes(masks)[:, [1, 3, 0, 2]].long().tolist()  # y0 y1 x0 x1 of each, to the host at once
    layer = torch.zeros(masks.shape[-2:], dtype=torch.long, device=masks.device)
    for i, (a, b, c, d) in enumerate(boxes):
        if b <= a:  # an empty mask: mmdet skips it
            continue
        m, part = masks[i, a:b, c:d], layer[a:b, c:d]
        pasted = part > 0
        area, intersect = m.sum(), (m & pasted).sum()
        ok = ~((intersect / (area + 1e-5)) > mask_overlap)  # mmdet's expression, on the same tensors
        part.masked_fill_(m & ~pasted & ok, i + 1)
    return labels, layer, scores


def stuff_areas(sem: torch.Tensor, layer: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Each label's pixels that no instance took (a thing's label is below ``num_things``)."""
    return torch.bincount((sem if layer is None else torch.where(layer > 0, 0, sem)).flatten(),
                          minlength=num_classes + 1)


def heuristic_map(sem: torch.Tensor, labels: torch.Tensor, layer: torch.Tensor | None, ranked: torch.Tensor | None,
                  num_things: int, num_classes: int, stuff_area_limit: int, areas: torch.Tensor | None = None,
                  scores: dict[int, float] | None = None) -> torch.Tensor:
    """The panoptic map of the semantic labels ``sem`` and the instances' ``layer`` (:func:`instance_layer`, with
    their scores ``ranked`` in its order); ``areas``: :func:`stuff_areas`, computed already.  Each thing segment's
    score (its instance's) into ``scores`` by its code, when given."""
    counts = stuff_areas(sem, layer, num_classes) if areas is None else areas
    small = counts < stuff_area_limit
    small[:num_things] = False
    # a stuff label below the area limit is VOID: one lookup per pixel, into int32 (the map's type)
    pan = torch.where(small, num_classes, torch.arange(len(small), device=sem.device)).int()[sem]
    if layer is not None:
        # mmdet numbers the laid instances 1, 2, ... and then the non-empty ones among them again
        filled = torch.bincount(layer.flatten(), minlength=len(labels) + 1)[1:] > 0
        instance = torch.cumsum(filled.long(), 0)
        table = torch.cat([torch.zeros(1, dtype=torch.long, device=sem.device), labels + instance * INSTANCE_OFFSET])
        pan = torch.where(layer > 0, table.int()[layer], pan)
        if scores is not None and ranked is not None:
            for code, score in zip(table[1:][filled].tolist(), ranked[filled].tolist()):
                scores[code] = score
    return pan
