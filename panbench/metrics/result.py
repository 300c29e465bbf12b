"""What a metric's ``compute()`` returns: :class:`PQResult`, typed, with panopticapi's dict and the command
line's metrics as views of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from panbench.pq.diagnosis import Finding, diagnose
from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats, panopticapi_summary, pq_summary


class PQValues(NamedTuple):
    """PQ, SQ and RQ of a group of categories (fractions 0-1) and ``n``, the categories averaged (those with
    TP + FP + FN > 0)."""

    pq: float
    sq: float
    rq: float
    n: int


class ClassPQ(NamedTuple):
    """One category's PQ, SQ, RQ (fractions 0-1) and its match counts."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class PQResult:
    """PQ/SQ/RQ for All/Things/Stuff and per class, as panopticapi computes them.

    ``metrics`` is what ``panbench score --json`` prints (0-100: ``PQ``, ``SQ``, ``RQ``, ``PQ_th``, ...,
    ``per_class``, pixel accuracy, mIoU); ``analyses`` the analyses of ``panbench eval`` (intervals, PQ by size,
    PQ-dagger, the error breakdown) when the metric was built with ``analyses=True``, else empty; ``diagnosis``
    the format mistakes the sums show (:mod:`panbench.pq.diagnosis`: a category mapping), empty when none (their
    ``pq_if_fixed`` is None here: the fix needs the predictions scored again, which ``panbench score`` does)."""

    all: PQValues
    things: PQValues
    stuff: PQValues
    per_class: dict[int, ClassPQ]
    n_images: int
    metrics: dict[str, Any] = field(repr=False)
    analyses: dict[str, Any] = field(default_factory=dict, repr=False)
    diagnosis: tuple[Finding, ...] = field(default=(), repr=False)

    @staticmethod
    def from_stats(stats: PQStats, categories: CategoryTable, analyses: dict[str, Any] | None = None) -> PQResult:
        api = panopticapi_summary(stats, categories.ids, categories.isthing)
        per_class = {cid: ClassPQ(v["pq"], v["sq"], v["rq"], int(stats.tp[k]), int(stats.fp[k]), int(stats.fn[k]))
                     for k, (cid, v) in enumerate(api["per_class"].items())}
        return PQResult(PQValues(**api["All"]), PQValues(**api["Things"]), PQValues(**api["Stuff"]), per_class,
                        stats.n_images, pq_summary(stats, categories.ids, categories.isthing), analyses or {},
                        tuple(diagnose(stats, categories)))

    def to_panopticapi(self) -> dict[str, Any]:
        """panopticapi's ``pq_compute`` dict: ``{"All" | "Things" | "Stuff": {"pq", "sq", "rq", "n"},
        "per_class": {category_id: {"pq", "sq", "rq"}}}``."""
        out: dict[str, Any] = {name: v._asdict() for name, v in
                               (("All", self.all), ("Things", self.things), ("Stuff", self.stuff))}
        out["per_class"] = {cid: {"pq": c.pq, "sq": c.sq, "rq": c.rq} for cid, c in self.per_class.items()}
        return out
