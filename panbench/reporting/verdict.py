"""The verdict that opens ``table``, the summary of a multi-model ``eval`` and the report: per group of runs on
the same images, the ranking on PQ with each run's paired bootstrap difference to a reference run (the best PQ,
or ``--reference MODEL``), and one line that reads it ("a beats b by 5.8 PQ [2.6, 9.0] on these 60 images; c vs
a: not distinguishable").  The differences are :func:`panbench.reporting.pairing.paired_differences`, the same
numbers as ``table --ci`` and ``panbench compare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panbench.analysis.bootstrap import too_few
from panbench.records.schema import RunRecord
from panbench.reporting.labels import dataset_key, fingerprint, images, short_label, these_images
from panbench.reporting.pairing import paired_differences

BOOTSTRAP_PROTOCOL = "95% paired image bootstrap, 1000 resamples, seed 0; * the interval excludes 0"


@dataclass
class Verdict:
    """One group of runs on the same images (or on a dataset without fingerprint): the ranking and its reading."""

    dataset: str  # dataset name and fingerprint (tables.dataset_key)
    n_images: int
    reference: str | None  # the label of the reference run; None when no run of the group has a paired difference
    rows: list[dict[str, Any]] = field(default_factory=list)  # best PQ first: label, PQ, diff, interval, mark
    reading: str = ""

    def heading(self) -> str:
        ref = f"; paired difference to {self.reference} ({BOOTSTRAP_PROTOCOL})" if self.reference else ""
        return f"{self.dataset}, {images(self.n_images)}: ranking on PQ{ref}"


def verdicts(records: list[RunRecord], results_dir: Path, reference: str | None = None
             ) -> tuple[list[Verdict], list[str]]:
    """One :class:`Verdict` per group of runs that share a dataset fingerprint (in the records' order), and the
    notes of :func:`panbench.reporting.pairing.paired_differences` (runs without a paired difference, and why)."""
    paired, notes = paired_differences(records, Path(results_dir), reference)
    groups: dict[str, list[int]] = {}
    for k, r in enumerate(records):
        groups.setdefault(f"{fingerprint(r) or dataset_key(r)} {r.n_images}", []).append(k)
    out = []
    for ks in groups.values():
        ks = sorted(ks, key=lambda k: -records[k].metrics["PQ"])
        ref = next((k for k in ks if (p := paired[k]) and p.get("reference")), None)
        has_diff = any((p := paired[k]) and not p.get("reference") for k in ks)
        v = Verdict(dataset_key(records[ks[0]]), records[ks[0]].n_images,
                    short_label(records[ref], records) if ref is not None and has_diff else None)
        for k in ks:
            p = paired[k]
            row = {"label": short_label(records[k], records), "PQ": records[k].metrics["PQ"],
                   "reference": bool(p and p.get("reference") and has_diff), "diff": None, "interval": None,
                   "mark": ""}
            if p and not p.get("reference"):
                row.update(diff=p["diff"]["PQ"], interval=p["interval"]["PQ"],
                           mark="*" if p["excludes_zero"]["PQ"] else "")
            v.rows.append(row)
        v.reading = reading(v)
        out.append(v)
    return out, notes


def reading(v: Verdict) -> str:
    """The verdict in one line: who beats whom by how much (with the interval of the difference) where the
    interval excludes 0, 'not distinguishable' where it does not, and the runs without a paired difference."""
    if len(v.rows) == 1:
        return f"{v.rows[0]['label']}: the only run on {these_images(v.n_images)}, nothing to compare"
    if v.reference is None:
        why = too_few(v.n_images) or "no per-image analysis files to pair"
        return f"no paired difference on {these_images(v.n_images)} ({why})"
    parts = []
    for row in v.rows:
        if row["reference"]:
            continue
        if row["diff"] is None:
            parts.append(f"{row['label']}: no paired difference (see the notes)")
            continue
        d, (lo, hi) = row["diff"], row["interval"]
        if not row["mark"]:
            parts.append(f"{row['label']} vs {v.reference}: not distinguishable ({d:+.1f} PQ [{lo:+.1f}, {hi:+.1f}])")
        elif d > 0:
            parts.append(f"{row['label']} beats {v.reference} by {d:.1f} PQ [{lo:.1f}, {hi:.1f}]")
        else:  # the same interval, read from the reference's side
            parts.append(f"{v.reference} beats {row['label']} by {-d:.1f} PQ [{-hi:.1f}, {-lo:.1f}]")
    return "; ".join(parts) + f" (on {these_images(v.n_images)})"


def cell(row: dict[str, Any]) -> str:
    """The difference column of the ranking: 'reference', '+1.23 [-0.40, +2.90]', with '*' where the interval
    excludes 0, or '-' (no paired difference)."""
    if row["reference"]:
        return "reference"
    if row["diff"] is None:
        return "-"
    lo, hi = row["interval"]
    return f"{row['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}]{row['mark']}"


def verdict_frame(v: Verdict) -> Any:
    """The ranking as a DataFrame (index: rank) for :func:`panbench.reporting.tables.format_table`."""
    import pandas as pd

    col = f"PQ - {v.reference}" if v.reference else "paired difference"
    df = pd.DataFrame([{"rank": k + 1, "model": r["label"], "PQ": f"{r['PQ']:.2f}", col: cell(r)}
                       for k, r in enumerate(v.rows)])
    return df.set_index("rank")


def lines(v: Verdict) -> list[str]:
    """The verdict as plain text for the terminal: heading, one line per run, the reading."""
    w = max(len(r["label"]) for r in v.rows)
    out = [v.heading()]
    out += [f"  {k + 1}. {r['label']:{w}}  PQ {r['PQ']:6.2f}  {cell(r) if v.reference else ''}".rstrip()
            for k, r in enumerate(v.rows)]
    return out + [f"  {v.reading}"]
