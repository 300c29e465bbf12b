"""What tables and terminal show of each analysis: ``@columns_of``, ``@kinds_of`` (optional), ``@text_of``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from panbench.analyses import ANALYSES, Registry
from panbench.analysis.bootstrap import CI_METRICS, too_few
from panbench.analysis.breakdown import ERROR_TYPES
from panbench.analysis.metrics import SIZE_LIMITS
from panbench.analysis.scores import no_score
from panbench.pq.matching import METRIC_KEYS
from panbench.reporting.labels import decimals

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord

columns_of = Registry("table columns", "panbench.reporting.analysis_views.columns_of")
kinds_of = Registry("column kinds", "panbench.reporting.analysis_views.kinds_of")
text_of = Registry("terminal text", "panbench.reporting.analysis_views.text_of")
SCORE_ANALYSES = ("score_threshold", "calibration")  # absent together: no predicted segment has a score


@columns_of("ci")
def ci_columns(r: RunRecord) -> dict[str, Any]:
    """:data:`CI_METRICS` with their intervals as ``X_low`` / ``X_high`` (one ``X 95% CI`` column outside CSV)."""
    row: dict[str, Any] = {}
    for k in CI_METRICS:
        row[k] = r.metrics.get(k)  # one a record lacks: blank
        row[f"{k}_low"], row[f"{k}_high"] = (r.ci or {}).get(k) or (None, None)
    return row


@kinds_of("ci")
def ci_kinds() -> dict[str, tuple[str, str]]:
    """The kinds of :func:`ci_columns`: each metric's interval ends."""
    return {f"{k}_{end}": (f"interval_{end}", k) for k in CI_METRICS for end in ("low", "high")}


@text_of("ci")
def ci_text(res: Mapping[str, Any]) -> list[str]:
    """The intervals of PQ, PQ_th, PQ_st; for an analysed run without them, why."""
    if ci := res.get("ci"):
        return ["95% interval (image bootstrap): " + ", ".join(f"{k} [{v[0]:.2f}, {v[1]:.2f}]" for k, v in
                                                               ci.items() if k in ("PQ", "PQ_th", "PQ_st"))]
    analysed = any(res.get(f) is not None for a in ANALYSES for f in a.fields if f != "ci")  # yet no interval
    if analysed and (n := res.get("n_images")) is not None and (why := too_few(n)):
        return [f"95% interval: none ({why})"]
    return []


@columns_of("by_size")
def by_size_columns(r: RunRecord) -> dict[str, Any]:
    """Things only: PQ/SQ/RQ per size bucket (blank where N = 0), N and ground-truth segments."""
    row: dict[str, Any] = {}
    for s, _, _ in SIZE_LIMITS:
        b = (r.by_size or {}).get(s) or {}
        row.update({**{f"{k}_{s}": b.get(k) if b.get("n") else None for k in ("PQ", "SQ", "RQ")},
                    f"N_{s}": b.get("n"), f"segments_{s}": b.get("segments")})
    return row


@kinds_of("by_size")
def by_size_kinds() -> dict[str, tuple[str, str]]:
    """The kinds of :func:`by_size_columns`: the categories and ground-truth segments of each bucket are counts."""
    return {f"{k}_{s}": ("count", f"{k}_{s}") for s, _, _ in SIZE_LIMITS for k in ("N", "segments")}


@text_of("by_size")
def by_size_text(res: Mapping[str, Any]) -> list[str]:
    if not (bs := res.get("by_size")):
        return []
    return ["PQ by size (things): " + ", ".join(_size_cell(k, v) for k, v in bs.items())]


def _size_cell(bucket: str, v: Mapping[str, Any]) -> str:
    """A size bucket's PQ with its ground-truth segments; where it has none, what its PQ stands on."""
    if not v.get("n"):
        return f"{bucket} - (no segments)"
    if not v.get("segments"):  # categories present by their predictions alone
        return f"{bucket} {v['PQ']:.2f} (no ground-truth segment: false positives only)"
    return f"{bucket} {v['PQ']:.2f} ({v['segments']} segments)"


@columns_of("dagger")
def dagger_columns(r: RunRecord) -> dict[str, Any]:
    """PQ beside PQ-dagger (stuff scored without the 0.5 IoU threshold)."""
    return {"PQ": r.metrics["PQ"], "PQ_dagger": r.pq_dagger}


@text_of("dagger")
def dagger_text(res: Mapping[str, Any]) -> list[str]:
    return [f"PQ-dagger {res['pq_dagger']:.2f}"] if res.get("pq_dagger") is not None else []


@columns_of("errors")
def errors_columns(r: RunRecord) -> dict[str, Any]:
    """Per error type: its FPs + FNs and oracle delta PQ (all its errors fixed); the delta for perfect TP masks."""
    errs: dict[str, Any] = dict(r.errors or {})
    row: dict[str, Any] = {"PQ": r.metrics["PQ"]}
    for t in ERROR_TYPES:
        e = errs.get(t) or {}
        row[f"{t}_count"], row[f"{t}_delta_PQ"] = e.get("count"), e.get("delta_PQ")
    row["mask_quality_delta_PQ"] = (r.mask_quality or {}).get("delta_PQ") if errs else None
    return row


@kinds_of("errors")
def errors_kinds() -> dict[str, tuple[str, str]]:
    """The kinds of :func:`errors_columns`."""
    return {**{f"{t}_{part}": (kind, t) for t in ERROR_TYPES for part, kind in (("count", "count"),
                                                                               ("delta_PQ", "delta"))},
            "mask_quality_delta_PQ": ("delta", "mask_quality")}


@text_of("errors")
def errors_text(res: Mapping[str, Any]) -> list[str]:
    """The error types by oracle delta PQ (largest first), then perfect masks'."""
    if not (errs := res.get("errors")):
        return []
    order = sorted(errs.items(), key=lambda kv: -kv[1].get("delta_PQ", 0.0))
    parts = [f"{k} {decimals(v.get('delta_PQ', 0.0), '+.2f')} ({v.get('count', 0)})" for k, v in order]
    if (mq := res.get("mask_quality")) and mq.get("delta_PQ") is not None:
        parts.append(f"mask quality {decimals(mq['delta_PQ'], '+.2f')}")
    return ["oracle delta PQ by error type (errors): " + ", ".join(parts)]


@columns_of("boundary")
def boundary_columns(r: RunRecord) -> dict[str, Any]:
    """Mask PQ beside the nine boundary-PQ metrics (IoU = min(mask IoU, boundary IoU))."""
    b = r.boundary or {}
    return {"PQ": r.metrics["PQ"], **{f"boundary_{k}": b.get(k) for k in METRIC_KEYS}}


@text_of("boundary")
def boundary_text(res: Mapping[str, Any]) -> list[str]:
    return [f"boundary PQ {b['PQ']:.2f}"] if (b := res.get("boundary")) and b.get("PQ") is not None else []


@columns_of("score_threshold")
def score_threshold_columns(r: RunRecord) -> dict[str, Any]:
    """PQ beside the best threshold's (chosen on these images), the model's own threshold's and the gain."""
    st = r.score_threshold or {}
    best, own = st.get("best") or {}, st.get("own") or {}
    return {"PQ": r.metrics["PQ"], "threshold_best": best.get("threshold"), "PQ_best": best.get("PQ"),
            "threshold_own": own.get("threshold"), "PQ_own": own.get("PQ"), "PQ_gain": st.get("gain"),
            "scored_segments": st.get("segments")}


@kinds_of("score_threshold")
def score_threshold_kinds() -> dict[str, tuple[str, str]]:
    """The kinds of :func:`score_threshold_columns`: the scored segments are a count."""
    return {"scored_segments": ("count", "scored_segments")}


def _no_score(res: Mapping[str, Any]) -> bool:
    """Whether ``res`` was analysed (another analysis's field is there) yet has no segment score analyses."""
    mine = {f for a in ANALYSES if a.key in SCORE_ANALYSES for f in a.fields}
    return (all(res.get(f) is None for f in mine)
            and any(res.get(f) is not None for a in ANALYSES for f in a.fields if f not in mine))


@text_of("score_threshold")
def score_threshold_text(res: Mapping[str, Any]) -> list[str]:
    """The best threshold's PQ and the own one's; for an analysed run without scores, why there is none."""
    if not (st := res.get("score_threshold")):
        return [f"score threshold and calibration: none ({no_score([res.get('fusion')])})"] if _no_score(res) else []
    b, own = st["best"], st.get("own")
    line = f"PQ by score threshold: best {b['PQ']:.2f} at {b['threshold']:g}"
    if own is not None:
        line += f", own {own['PQ']:.2f} at {own['threshold']:g} (gain {decimals(st['gain'], '+.2f')})"
    unscored = f", {st['unscored']} without a score" if st.get("unscored") else ""
    return [f"{line} ({st['segments']} scored segments{unscored}; the best is chosen on these images)"]


@columns_of("calibration")
def calibration_columns(r: RunRecord) -> dict[str, Any]:
    """ECE (0-1) of all, thing and stuff segments with the intervals, equal-mass ECEs and the segments."""
    c = r.calibration or {}
    row: dict[str, Any] = {}
    for sfx in ("", "_th", "_st"):
        row["ece" + sfx] = c.get("ece" + sfx)
        row[f"ece{sfx}_low"], row[f"ece{sfx}_high"] = ((c.get(end) or {}).get("ece" + sfx) for end in ("low", "high"))
    return {**row, **{f"ece_mass{sfx}": c.get(f"ece_mass{sfx}") for sfx in ("", "_th", "_st")},
            "scored_segments": c.get("segments")}


@kinds_of("calibration")
def calibration_kinds() -> dict[str, tuple[str, str]]:
    """The kinds of :func:`calibration_columns`: each ECE's interval ends; the scored segments, a count."""
    return {**{f"ece{sfx}_{end}": (f"interval_{end}", "ece" + sfx) for sfx in ("", "_th", "_st")
               for end in ("low", "high")}, **score_threshold_kinds()}


@text_of("calibration")
def calibration_text(res: Mapping[str, Any]) -> list[str]:
    """ECE of all segments with its interval, of things and stuff, and the equal-mass ECE."""
    if not (c := res.get("calibration")):
        return []

    def value(key: str) -> str:
        return "-" if c.get(key) is None else f"{c[key]:.3f}"

    lo, hi = ((c.get(end) or {}).get("ece") for end in ("low", "high"))
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return [f"calibration of segment scores: ECE {value('ece')}{ci} (things {value('ece_th')}, stuff "
            f"{value('ece_st')}; equal-mass {value('ece_mass')}; {c['segments']} segments, {c['n_bins']} bins)"]
