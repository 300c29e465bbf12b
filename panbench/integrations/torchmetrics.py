"""panbench's PQ as a torchmetrics ``Metric``: torchmetrics' ``PanopticQuality`` input and options, panopticapi's
numbers (docs/api.md, "torchmetrics / Lightning", which lists where torchmetrics' own rules differ).  The state is
the core metric's integer sums (``dist_reduce_fx="sum"``): a DDP sync adds them exactly, after it has compared the
processes' builds (``build``: processes built differently are refused in one line on every process)."""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

from panbench.errors import InputError
from panbench.metrics import MetricPart, PanopticQuality, PQResult

# (category id, instance id) keys beyond this many per image are renumbered with np.unique instead of a table
_MAX_TABLE = 1 << 22


class TorchmetricsInputError(InputError, ValueError):
    """Bad ``things``/``stuffs`` or input tensors: panbench's one-line error, a ``ValueError`` as torchmetrics's."""


def _parse_categories(things: Collection[int], stuffs: Collection[int]) -> tuple[list[int], list[int]]:
    """``things`` and ``stuffs`` as sorted lists of distinct ints (torchmetrics' checks, panbench's messages)."""
    for name, cats in (("things", things), ("stuffs", stuffs)):
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in cats):
            raise TypeError(f"PanbenchPanopticQuality: `{name}` must hold int category ids, got {list(cats)}")
    t, s = sorted(set(things)), sorted(set(stuffs))
    if set(t) & set(s):
        raise TorchmetricsInputError(f"PanbenchPanopticQuality: categories {sorted(set(t) & set(s))} are in both "
                                     "`things` and `stuffs`: give each category to one of them")
    if not t and not s:
        raise TorchmetricsInputError("PanbenchPanopticQuality: `things` and `stuffs` are both empty: "
                                     "give the category ids of the data set")
    return t, s


def _validate(preds: Any, target: Any) -> None:
    """torchmetrics' input checks (same exception types), panbench's messages."""
    for name, x in (("preds", preds), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"PanbenchPanopticQuality.update: `{name}` must be a torch.Tensor, got {type(x).__name__}")
    if preds.shape != target.shape:
        raise TorchmetricsInputError(f"PanbenchPanopticQuality.update: `preds` {tuple(preds.shape)} and `target` "
                                     f"{tuple(target.shape)} differ in shape: give both as (B, *spatial, 2)")
    if preds.dim() < 3 or preds.shape[-1] != 2:
        raise TorchmetricsInputError(f"PanbenchPanopticQuality.update: `preds` has shape {tuple(preds.shape)}: "
                                     "give (B, *spatial, 2) tensors of (category id, instance id) per pixel")
    if preds.is_floating_point() or target.is_floating_point() or preds.is_complex() or target.is_complex():
        raise TorchmetricsInputError("PanbenchPanopticQuality.update: `preds` and `target` must be integer tensors "
                                     "of (category id, instance id): convert them with .long()")


class TorchmetricsToSegments:
    """torchmetrics' ``(B, *spatial, 2)`` tensors to id maps and ``segments_info`` of categories ``1..C``."""

    def __init__(self, things: list[int], stuffs: list[int]) -> None:
        self.order = things + stuffs
        self.n_things = len(things)
        self.lo, hi = min(self.order), max(self.order)
        ids = np.asarray(self.order, np.int64)
        self.sorted_ids, self.sorted_index = np.sort(ids), np.argsort(ids)
        # category id - lo -> its index (-1 unknown) where the ids span a small range; else a sorted search
        self.index: np.ndarray | None = None
        if hi - self.lo < _MAX_TABLE:
            self.index = np.full(hi - self.lo + 1, -1, np.int64)
            self.index[ids - self.lo] = np.arange(len(self.order))

    def categories(self) -> list[dict[str, Any]]:
        """The COCO panoptic ``categories`` panbench scores with (ids ``1..C``)."""
        return [{"id": k + 1, "name": str(c), "isthing": int(k < self.n_things)} for k, c in enumerate(self.order)]

    def category_index(self, cat: np.ndarray) -> np.ndarray:
        """Each category id's index in ``order``; -1 for a category outside ``things`` and ``stuffs``."""
        if self.index is None:
            pos = np.clip(np.searchsorted(self.sorted_ids, cat), 0, len(self.sorted_ids) - 1)
            return np.where(self.sorted_ids[pos] == cat, self.sorted_index[pos], -1)
        inside = (cat >= self.lo) & (cat < self.lo + len(self.index))
        return np.where(inside, self.index[np.clip(cat - self.lo, 0, len(self.index) - 1)], -1)

    def batch(self, x: torch.Tensor, allow_unknown: bool, what: str) -> list[tuple[np.ndarray, list[dict[str, Any]]]]:
        """Each image of ``x`` as (id map, segments_info); an unknown category raises unless ``allow_unknown``."""
        arr = x.detach().to("cpu", torch.int64).numpy().reshape(x.shape[0], -1, 2)
        spatial = tuple(x.shape[1:-1]) if x.dim() == 4 else (1, arr.shape[1])
        cidx = self.category_index(arr[..., 0])
        if not allow_unknown and (cidx < 0).any():
            unknown = sorted(set(np.unique(arr[..., 0][cidx < 0]).tolist()))
            raise TorchmetricsInputError(
                f"PanbenchPanopticQuality.update: `{what}` has categories {unknown[:10]} outside `things` and "
                "`stuffs`: add them there, or pass allow_unknown_preds_category=True to score them as VOID")
        thing = (cidx >= 0) & (cidx < self.n_things)
        inst = arr[..., 1]
        if thing.any() and int(inst[thing].max()) - int(inst[thing].min()) >= _MAX_TABLE:  # sparse ids: their ranks
            inst = inst.copy()
            inst[thing] = np.unique(inst[thing], return_inverse=True)[1].ravel()
        imin = int(inst[thing].min()) if thing.any() else 0
        span = (int(inst[thing].max()) if thing.any() else 0) - imin + 1
        # one key per (category, instance), 0 for VOID; a stuff category is one segment: its instance ids ignored
        key = np.where(cidx >= 0, cidx * span + np.where(thing, inst - imin, 0) + 1, 0)
        table = len(self.order) * span + 1 <= _MAX_TABLE
        return [self._image(k.reshape(spatial), span, table) for k in key]

    def _image(self, key: np.ndarray, span: int, table: bool) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One image's keys (0 VOID) to an id map ``1..n`` (0 VOID) and its segments_info."""
        if table:
            counts = np.bincount(key.ravel(), minlength=1)
            present = np.flatnonzero(counts[1:]) + 1
            lut = np.zeros(len(counts), np.uint32)
            lut[present] = np.arange(1, len(present) + 1, dtype=np.uint32)
            ids, areas = lut[key], counts[present]
        else:
            uniq, inv, cnt = np.unique(key.ravel(), return_inverse=True, return_counts=True)
            start = int(uniq[0] == 0)  # VOID stays 0
            ids = (inv.reshape(key.shape) + 1 - start).astype(np.uint32)
            present, areas = uniq[start:], cnt[start:]
        cats = (present - 1) // span
        segs = [{"id": k + 1, "category_id": int(c) + 1, "iscrowd": 0, "area": int(a)}
                for k, (c, a) in enumerate(zip(cats.tolist(), areas.tolist()))]
        return ids, segs


class PanbenchPanopticQuality(Metric):
    """torchmetrics' ``PanopticQuality`` with panopticapi's numbers (docs/api.md)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    build: torch.Tensor
    sums: torch.Tensor
    parts: list[torch.Tensor] | torch.Tensor

    def __init__(self, things: Collection[int], stuffs: Collection[int], allow_unknown_preds_category: bool = False,
                 return_sq_and_rq: bool = False, return_per_class: bool = False, evaluators: Sequence[Any] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        t, s = _parse_categories(things, stuffs)
        self.things, self.stuffs = set(t), set(s)
        self.allow_unknown_preds_category = allow_unknown_preds_category
        self.return_sq_and_rq, self.return_per_class = return_sq_and_rq, return_per_class
        self._convert = TorchmetricsToSegments(t, s)
        self._scorer = PanopticQuality(self._convert.categories(), evaluators=evaluators)  # evaluators loaded once
        keys = list(self._scorer.build.evaluators)
        said = (f"things={t}, stuffs={s}", f"evaluators={keys}" if keys else "no evaluators")
        # first: torchmetrics reduces the states in this order, the others only once the builds are alike
        self.add_state("build", default=torch.tensor([_digest(x) for x in said], dtype=torch.int64),
                       dist_reduce_fx=functools.partial(_alike, said))
        self.add_state("sums", default=torch.zeros(len(self._scorer.sums()), dtype=torch.int64),
                       dist_reduce_fx="sum")
        # the evaluators' state: one pickled MetricPart a rank, concatenated over the ranks (a state of every metric,
        # so that each process gathers the same states)
        self.add_state("parts", default=[], dist_reduce_fx="cat")

    def _core(self) -> PanopticQuality:
        self._scorer.reset()
        return self._scorer

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Score each image of the batch (``(B, *spatial, 2)`` tensors of (category id, instance id))."""
        _validate(preds, target)
        pred = self._convert.batch(preds, self.allow_unknown_preds_category, "preds")
        gt = self._convert.batch(target, True, "target")
        core = self._core()
        if core.evaluators:  # the images so far first: one part, so the state stays one part a rank
            for part in _unpickled(self.parts):
                core.merge(part)
            before = core.sums()
        for (pred_ids, pred_segs), (gt_ids, gt_segs) in zip(pred, gt, strict=True):
            core.update(pred_ids, pred_segs, gt_ids, gt_segs)
        added = core.sums() - before if core.evaluators else core.sums()
        self.sums += torch.from_numpy(np.asarray(added, np.int64)).to(self.sums.device)
        if core.evaluators:  # the bytes as the metric's float type: what torchmetrics gives a rank without images
            pickled = torch.frombuffer(bytearray(pickle.dumps(core.part())), dtype=torch.uint8)
            self.parts = [pickled.to(self.sums.device, self.dtype)]

    def result(self) -> PQResult:
        """panbench's result of every image so far, synced over the ranks as :meth:`compute` is: PQ, SQ, RQ, per
        class, the diagnosis and ``evaluators`` (the fields of the metric's evaluators, by name)."""
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            total = PanopticQuality(self._convert.categories(), evaluators=self._scorer.evaluators)
            if total.evaluators:
                for part in _unpickled(self.parts):
                    total.merge(part)
            else:
                total.add_sums(self.sums.detach().cpu().numpy().astype(np.int64))
            return total.result()

    def compute(self) -> torch.Tensor:
        """PQ (the average over the categories present), or what ``return_sq_and_rq``/``return_per_class`` ask."""
        core = PanopticQuality(self._convert.categories())
        core.add_sums(self.sums.detach().cpu().numpy().astype(np.int64))
        r = core.compute()
        dev = self.sums.device
        if self.return_per_class:
            vals = [r.per_class[k + 1] for k in range(len(self._convert.order))]
            per = torch.tensor([[v.pq, v.sq, v.rq] for v in vals], dtype=torch.float64, device=dev)
            return per if self.return_sq_and_rq else per[:, 0].view(1, -1)
        a = r.all
        avg = [a.pq, a.sq, a.rq] if a.n else [float("nan")] * 3  # torchmetrics: the mean of no category is NaN
        out = torch.tensor(avg, dtype=torch.float64, device=dev)
        return out if self.return_sq_and_rq else out[0]


def _digest(text: str) -> int:
    """A 24-bit digest of ``text``: held exactly by float32 and float64 (a cast to float16 rounds it alike on every
    process: the check then tells fewer builds apart, it never refuses processes built alike)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:3], "big")


def _alike(said: tuple[str, str], builds: torch.Tensor) -> torch.Tensor:
    """The ``build`` state's reduction: the processes' builds (one row each) alike, else the one-line error naming
    what differs and this process's; every process raises it."""
    if len(builds) and not bool((builds == builds[0]).all()):
        k = next(k for k in range(builds.shape[1]) if not bool((builds[:, k] == builds[0, k]).all()))
        what = ("categories", "evaluators")[k]
        raise TorchmetricsInputError(f"PanbenchPanopticQuality: the processes' metrics have different {what} "
                                     f"({said[k]} on this process); build the metric alike on every process (the "
                                     "same things, stuffs and evaluators)")
    return builds[0]


def _unpickled(parts: list[torch.Tensor] | torch.Tensor) -> list[MetricPart]:
    """The parts of :attr:`PanbenchPanopticQuality.parts`: a list of pickles (bytes 0-255 held exactly by any float
    type), or, synced, one tensor of them all."""
    if isinstance(parts, list):
        parts = torch.cat(parts) if parts else torch.zeros(0)
    buf = io.BytesIO(parts.detach().to("cpu", torch.uint8).numpy().tobytes())
    out = []
    while buf.tell() < len(buf.getbuffer()):
        out.append(pickle.load(buf))
    return out
