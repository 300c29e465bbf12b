"""The columns of the analysis tables (`panbench table`'s option of each analysis): each analysis's columns
function (its row of :data:`panbench.analyses.ANALYSES`) per record, from the record fields that ``score``/``eval``
write (docs/analysis.md has the rules), with a note for the records that lack it; a ``paired`` analysis also
gets each row's paired PQ difference to the reference run.  Intervals are two columns ``X_low`` / ``X_high``;
:func:`panbench.reporting.present.format_table` shows them as one ``X 95% CI`` column outside CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.analyses import ANALYSES, by_key, function
from panbench.records.schema import RunRecord
from panbench.reporting.labels import missing_why, run_label
from panbench.reporting.pairing import pair_key, paired_differences

KEYS = tuple(a.key for a in ANALYSES)  # the table's analysis options, in the table's order
PAIRED_NOTE = ("PQ difference (PQ_diff in CSV): PQ minus that of the run under 'paired difference to' (PQ_diff_vs), "
               "the reference run of the same dataset (same fingerprint: "
               "same annotation file and images): the best PQ among the runs with a per-image analysis file, or "
               "the run --reference names; with its 95% paired-bootstrap "
               "interval (1000 resamples of the images, seed 0); "
               "'*' marks an interval that excludes 0: a difference that resampling the images does not explain.")


def paired_columns(records: list[RunRecord], results_dir: Path, reference: str | None = None
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """The paired difference of PQ to the reference run (``reference``, else the best PQ) of the group of rows
    that share a dataset fingerprint, with its 95% paired-bootstrap interval."""
    paired, notes = paired_differences(records, results_dir, reference)
    keys = [pair_key(r) for r in records]
    rows = []
    for p, key in zip(paired, keys):
        if p and p.get("reference") and keys.count(key) == 1:
            p = None  # the only run on its images: nobody's reference
        row: dict[str, Any] = {"PQ_diff_vs": "reference" if p and p.get("reference") else p["vs"] if p else None}
        d = p if p and not p.get("reference") else None
        row["PQ_diff"] = d["diff"]["PQ"] if d else None
        row["PQ_diff_low"], row["PQ_diff_high"] = d["interval"]["PQ"] if d else (None, None)
        row["PQ_diff_mark"] = ("*" if d["excludes_zero"]["PQ"] else "") if d else None
        rows.append(row)
    if any(p and not p.get("reference") for p in paired):
        notes.insert(0, PAIRED_NOTE)
    return rows, notes


def ap_miou_columns(r: RunRecord) -> dict[str, Any]:
    """The default table's mask AP of the thing classes (blank where not computed) and mIoU with the output it
    comes from: the model's semantic output (``miou``, ``miou_source`` "semantic") or the panoptic one (a record
    without ``miou`` has the panoptic output's, ``semantic["mIoU"]``); ``mIoU_panoptic`` keeps the panoptic one."""
    panoptic = r.semantic.get("mIoU")
    miou, source = (r.miou, r.miou_source) if r.miou is not None else (panoptic, "panoptic" if panoptic is not None
                                                                         else None)
    return {"AP": (r.ap or {}).get("AP"), "mIoU": miou, "mIoU_from": source, "mIoU_panoptic": panoptic}


def analysis_columns(records: list[RunRecord], analyses: list[str], results_dir: Path,
                     reference: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The columns of every requested analysis (keys of :data:`panbench.analyses.ANALYSES`) for each record (in
    the order of ``analyses``), and notes: the paired-difference footnote, and which rows lack which analysis."""
    rows: list[dict[str, Any]] = [{} for _ in records]
    notes: list[str] = []
    for a in map(by_key, analyses):
        cols = [function(a.columns)(r) for r in records]
        if a.paired:
            more, more_notes = paired_columns(records, results_dir, reference)
            cols = [{**c, **m} for c, m in zip(cols, more)]
            notes += more_notes
        for row, c in zip(rows, cols):
            row.update({k: v for k, v in c.items() if k not in row})
        field = a.fields[0]
        for lacking, why in missing_why(records, field, f"no `{field}` in the record: {a.how}"):
            notes.append(f"{a.option}: blank for {', '.join(run_label(r, records) for r in lacking)} ({why})")
    return rows, notes
