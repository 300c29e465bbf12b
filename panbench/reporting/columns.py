"""The tables' columns beyond a record's fields: their kinds (:class:`Column`), FPS and each analysis's columns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.analyses import ANALYSES, by_key
from panbench.pq.matching import METRIC_KEYS
from panbench.records.rows import speed_shared
from panbench.records.schema import RunRecord
from panbench.records.speed import PROTOCOL, PROTOCOL_TEXT, latest_speed, load_speed_records
from panbench.reporting.analysis_views import columns_of, kinds_of
from panbench.reporting.labels import UNDEFINED, missing_why, short_label
from panbench.reporting.pairing import pair_key, paired_differences

KEYS = tuple(a.key for a in ANALYSES)  # the table's analysis options, in the table's order
PAIRED_NOTE = ("PQ difference (PQ_diff in CSV): PQ minus that of the run under 'paired difference to' (PQ_diff_vs), "
               "the reference run of the same dataset (same fingerprint: same annotation file and images): the best "
               "PQ among the runs with a per-image analysis file, or the run --reference names; with its 95% "
               "paired-bootstrap interval (1000 resamples of the images, seed 0); '*' marks an interval that "
               "excludes 0: a difference that resampling the images does not explain.")


def paired_columns(records: list[RunRecord], results_dir: Path, reference: str | None = None
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """The paired difference of PQ to the reference run of each group of rows on the same images, with its interval."""
    paired, notes = paired_differences(records, results_dir, reference)
    keys = [pair_key(r) for r in records]
    rows = []
    for p, key in zip(paired, keys):
        if p and p.get("reference") and keys.count(key) == 1:
            p = None  # the only run on its images: nobody's reference
        d = p if p and not p.get("reference") else None
        low, high = d["interval"]["PQ"] if d else (None, None)
        rows.append({"PQ_diff_vs": "reference" if p and p.get("reference") else p["vs"] if p else None,
                     "PQ_diff": d["diff"]["PQ"] if d else None, "PQ_diff_low": low, "PQ_diff_high": high,
                     "PQ_diff_mark": ("*" if d["excludes_zero"]["PQ"] else "") if d else None})
    if any(p and not p.get("reference") for p in paired):
        notes.insert(0, PAIRED_NOTE)
    return rows, notes


def ap_miou_columns(r: RunRecord) -> dict[str, Any]:
    """The mask AP of the things and mIoU with its source (semantic or panoptic output; the panoptic one kept too)."""
    panoptic = r.semantic.get("mIoU")
    miou, source = (r.miou, r.miou_source) if r.miou is not None else (panoptic, "panoptic" if panoptic is not None
                                                                         else None)
    return {"AP": (r.ap or {}).get("AP"), "mIoU": miou, "mIoU_from": source, "mIoU_panoptic": panoptic}


def analysis_columns(records: list[RunRecord], analyses: list[str], results_dir: Path,
                     reference: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Each record's columns of the ``analyses``, and notes: the paired-difference footnote, the rows lacking one."""
    rows: list[dict[str, Any]] = [{} for _ in records]
    notes: list[str] = []
    for a in map(by_key, analyses):
        cols = [columns_of[a.key](r) for r in records]
        if a.paired:
            more, more_notes = paired_columns(records, results_dir, reference)
            cols = [{**c, **m} for c, m in zip(cols, more)]
            notes += more_notes
        for row, c in zip(rows, cols):
            row.update({k: v for k, v in c.items() if k not in row})
        if a.note and any(getattr(r, a.fields[0]) is not None for r in records):
            notes.append(a.note)
        field = a.fields[0]
        for lacking, why in missing_why(records, field, f"no `{field}` in the record: {a.how}"):
            notes.append(f"{a.option}: blank for {', '.join(short_label(r, records) for r in lacking)} ({why})")
    return rows, notes


RULE_NOTE = ("PQ [RULE]: PQ under another implementation's rules (`--rules`; docs/pq-rules.md) beside panbench's "
             "(panopticapi's), which ranks the runs (--all-columns: SQ, RQ, things and stuff too); n/a: undefined "
             "under that rule (no class with a TP, FP or FN under it: its reference gives NaN); -: not computed in "
             "that run")


def rule_column(key: str, rule: str) -> str:
    """The column of a metric under a rule: ``PQ[torchmetrics]``."""
    return f"{key}[{rule}]"


def rule_of_column(name: str) -> tuple[str, str] | None:
    """(metric, rule) of a :func:`rule_column` name; None for any other column."""
    m = re.fullmatch(r"((?:PQ|SQ|RQ)(?:_th|_st)?)\[(.+)\]", name)
    return (m[1], m[2]) if m else None


def rule_columns(r: RunRecord, rules: list[str]) -> dict[str, Any]:
    """Each metric under each of ``rules`` (:func:`panbench.reporting.labels.shown_rules`): the run's number,
    :data:`UNDEFINED` where the rule leaves it undefined (NaN; null), None where the run did not compute the rule."""
    out: dict[str, Any] = {}
    for rule in rules:
        got = (r.rules or {}).get(rule)
        for k in METRIC_KEYS:
            v = got.get(k) if got is not None else None
            out[rule_column(k, rule)] = UNDEFINED if got is not None and k in got and (v is None or v != v) else v
    return out


FPS = "FPS_fwd_b1"  # forward FPS at batch 1, by the protocol: the column's name says what is timed


def fps_columns(records: list[RunRecord], results_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Per record its FPS columns (from its model's latest speed record on its dataset), and the protocol's footnote."""
    latest = latest_speed(load_speed_records(results_dir))
    rows: list[dict[str, Any]] = [{} if (s := latest.get((r.model, r.dataset))) is None else {
        FPS: s.fps, "FPS_e2e_b1": (s.end_to_end or {}).get("fps"), "FPS_setup": s.setup(),
        "FPS_shared": speed_shared(s),  # type: ignore[arg-type]  # reads its speed_context only
        "FPS_pub": s.published_fps if s.published_matches else None} for r in records]
    if not any(rows):
        return rows, []
    note = (f"{FPS}: frames per second of `panbench speed`, protocol {PROTOCOL} ({PROTOCOL_TEXT}); FPS_e2e_b1 the "
            "same count end to end (image file to segments); FPS_setup: device, precision, compile state, input size "
            "(HxW); FPS_pub: the published FPS, only where it was measured on the same device.")
    return rows, [note]


@dataclass(frozen=True)
class Column:
    """A column not shown as it is: its name, kind (``interval_low``/``interval_high``, ``count``, ``delta``,
    ``shared``, ``mark``, ``published``) and the columns it belongs to."""

    name: str
    kind: str
    of: tuple[str, ...] = ()


BUILT_IN = (
    Column("PQ_low", "interval_low", ("PQ",)), Column("PQ_high", "interval_high", ("PQ",)),  # the default table's
    Column("PQ_diff_low", "interval_low", ("PQ_diff",)), Column("PQ_diff_high", "interval_high", ("PQ_diff",)),
    Column("PQ_diff_mark", "mark", ("PQ_diff",)),  # the paired difference (paired_columns)
    Column("images_per_s_shared", "shared", ("images_per_s",)), Column("FPS_shared", "shared", (FPS, "FPS_e2e_b1")),
    *(Column(f"{k}_{part}", "published", (k,)) for k in METRIC_KEYS for part in ("pub", "delta")),  # --vs-published
    # the rules the published numbers were computed under, and PQ under them (where they are not panopticapi's)
    Column("published_rules", "published", ("PQ",)), Column("PQ_under_rules", "published", ("PQ",)),
)


def declared() -> dict[str, Column]:
    """Every declared column by name: :data:`BUILT_IN` and each analysis's."""
    out = {c.name: c for c in BUILT_IN}
    for a in ANALYSES:
        if (kinds := kinds_of.functions.get(a.key)) is not None:
            out.update({name: Column(name, kind, (of,)) for name, (kind, of) in kinds().items()})
    return out


def of_kind(names: Iterable[Any], kind: str, columns: dict[str, Column] | None = None) -> list[Column]:
    """The declared columns among ``names`` of ``kind``, in their order (``columns``: default :func:`declared`)."""
    columns = declared() if columns is None else columns
    return [columns[n] for n in names if n in columns and columns[n].kind == kind]
