"""The columns of the analysis tables (`panbench table --ci/--by-size/--errors/--boundary/--dagger`), one
builder per analysis, from the record fields that ``score``/``eval`` write (docs/analysis.md has the rules).

Each builder gives, per record, the row's columns (empty when the record lacks the analysis) and a note
for the records that lack it. Intervals are two columns ``X_low`` / ``X_high``;
:func:`panbench.reporting.tables.format_table` shows them as one ``X 95% CI`` column outside CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.analysis.bootstrap import CI_METRICS
from panbench.analysis.breakdown import ERROR_TYPES
from panbench.pq.matching import METRIC_KEYS
from panbench.records.schema import RunRecord
from panbench.reporting.labels import SIZES, missing_why, run_label
from panbench.reporting.pairing import pair_key, paired_differences

ANALYSES = ("ci", "by_size", "errors", "boundary", "dagger")
# the record field each option reads, and how to get it when a record lacks it
FIELD = {"ci": "ci", "by_size": "by_size", "errors": "errors", "boundary": "boundary", "dagger": "pq_dagger"}
HOW_TO_RECORD = {"boundary": "re-run `panbench eval` or `panbench score` with --boundary"}
PAIRED_NOTE = ("PQ difference (PQ_diff in CSV): PQ minus that of the run under 'paired difference to' (PQ_diff_vs), "
               "the reference run of the same dataset (same fingerprint: "
               "same annotation file and images): the best PQ among the runs with a per-image analysis file, or "
               "the run --reference names; with its 95% paired-bootstrap "
               "interval (1000 resamples of the images, seed 0); "
               "'*' marks an interval that excludes 0: a difference that resampling the images does not explain.")


def ci_columns(records: list[RunRecord], results_dir: Path, reference: str | None = None
               ) -> tuple[list[dict[str, Any]], list[str]]:
    """PQ, SQ, RQ, PQ_th, PQ_st with their 95% bootstrap intervals; the paired difference of PQ to the
    reference run (``reference``, else the best PQ) of the group of rows that share a dataset fingerprint."""
    paired, notes = paired_differences(records, results_dir, reference)
    keys = [pair_key(r) for r in records]
    rows = []
    for r, p, key in zip(records, paired, keys):
        if p and p.get("reference") and keys.count(key) == 1:
            p = None  # the only run on its images: nobody's reference
        row: dict[str, Any] = {}
        ci = r.ci or {}
        for k in CI_METRICS:
            row[k] = r.metrics[k]
            lo, hi = ci.get(k) or (None, None)
            row[f"{k}_low"], row[f"{k}_high"] = lo, hi
        row["PQ_diff_vs"] = "reference" if p and p.get("reference") else p["vs"] if p else None
        d = p if p and not p.get("reference") else None
        row["PQ_diff"] = d["diff"]["PQ"] if d else None
        row["PQ_diff_low"], row["PQ_diff_high"] = d["interval"]["PQ"] if d else (None, None)
        row["PQ_diff_mark"] = ("*" if d["excludes_zero"]["PQ"] else "") if d else None
        rows.append(row)
    if any(p and not p.get("reference") for p in paired):
        notes.insert(0, PAIRED_NOTE)
    return rows, notes


def by_size_columns(r: RunRecord) -> dict[str, Any]:
    """Things only: PQ/SQ/RQ per COCO size bucket, the categories averaged (N) and ground-truth segments; a
    bucket without any category (N = 0) has no PQ/SQ/RQ (blank, not 0)."""
    bs: dict[str, Any] = dict(r.by_size or {})
    row: dict[str, Any] = {}
    for s in SIZES:
        b = bs.get(s) or {}
        pq = {k: b.get(k) if b.get("n") else None for k in ("PQ", "SQ", "RQ")}
        row.update({f"PQ_{s}": pq["PQ"], f"SQ_{s}": pq["SQ"], f"RQ_{s}": pq["RQ"], f"N_{s}": b.get("n"),
                    f"segments_{s}": b.get("segments")})
    return row


def errors_columns(r: RunRecord) -> dict[str, Any]:
    """Per error type: the number of FPs + FNs of that type and the oracle delta PQ (PQ points gained were
    all errors of that type fixed); the same delta for perfect masks on the true positives."""
    errs: dict[str, Any] = dict(r.errors or {})
    row: dict[str, Any] = {"PQ": r.metrics["PQ"]}
    for t in ERROR_TYPES:
        e = errs.get(t) or {}
        row[f"{t}_count"], row[f"{t}_delta_PQ"] = e.get("count"), e.get("delta_PQ")
    row["mask_quality_delta_PQ"] = (r.mask_quality or {}).get("delta_PQ") if errs else None
    return row


def boundary_columns(r: RunRecord) -> dict[str, Any]:
    """Mask PQ beside the nine boundary-PQ metrics (IoU = min(mask IoU, boundary IoU))."""
    b = r.boundary or {}
    return {"PQ": r.metrics["PQ"], **{f"boundary_{k}": b.get(k) for k in METRIC_KEYS}}


def dagger_columns(r: RunRecord) -> dict[str, Any]:
    """PQ beside PQ-dagger (stuff scored without the 0.5 IoU threshold)."""
    return {"PQ": r.metrics["PQ"], "PQ_dagger": r.pq_dagger}


def ap_miou_columns(r: RunRecord) -> dict[str, Any]:
    """The default table's mask AP of the thing classes (blank where not computed) and mIoU with the output it
    comes from: the model's semantic output (``miou``, ``miou_source`` "semantic") or the panoptic one (a record
    without ``miou`` has the panoptic output's, ``semantic["mIoU"]``); ``mIoU_panoptic`` keeps the panoptic one."""
    panoptic = r.semantic.get("mIoU")
    miou, source = (r.miou, r.miou_source) if r.miou is not None else (panoptic, "panoptic" if panoptic is not None
                                                                         else None)
    return {"AP": (r.ap or {}).get("AP"), "mIoU": miou, "mIoU_from": source, "mIoU_panoptic": panoptic}


BUILDERS = {"by_size": by_size_columns, "errors": errors_columns, "boundary": boundary_columns,
            "dagger": dagger_columns}


def analysis_columns(records: list[RunRecord], analyses: list[str], results_dir: Path,
                     reference: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The columns of every requested analysis for each record (in the order of ``analyses``), and notes:
    the paired-difference footnote, and which rows lack which analysis."""
    rows: list[dict[str, Any]] = [{} for _ in records]
    notes: list[str] = []
    for a in analyses:
        if a == "ci":
            cols, more = ci_columns(records, results_dir, reference)
            notes += more
        else:
            cols = [BUILDERS[a](r) for r in records]
        for row, c in zip(rows, cols):
            row.update({k: v for k, v in c.items() if k not in row})
        how = HOW_TO_RECORD.get(a, "records written before schema 2, or runs without the analysis; re-run them")
        for lacking, why in missing_why(records, FIELD[a], f"no `{FIELD[a]}` in the record: {how}"):
            notes.append(f"--{a.replace('_', '-')}: blank for {', '.join(run_label(r, records) for r in lacking)} "
                         f"({why})")
    return rows, notes
