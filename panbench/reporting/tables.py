"""Comparison tables (pandas) from result records: the data, its presentation (:func:`format_table`), the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panbench.analysis.bootstrap import too_few
from panbench.errors import PanbenchError
from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import load_records
from panbench.records.rows import SHARED_SPEED_MARK, SHARED_SPEED_NOTE, gflops, measured_speed, speed_shared
from panbench.records.schema import RunRecord
from panbench.reporting.columns import (
    FPS,
    RULE_NOTE,
    analysis_columns,
    ap_miou_columns,
    declared,
    fps_columns,
    of_kind,
    rule_columns,
    rule_of_column,
)
from panbench.reporting.formats import cells, header, writer
from panbench.reporting.grids import GRID_NOTE, NAMED_NOTE, grid_marks, grids_of, several_names
from panbench.reporting.labels import (
    absent,
    absent_notes,
    cfg_words,
    corrupted_note,
    dataset_key,
    decimals,
    fingerprint,
    has_published,
    images,
    ops_backend,
    other_pipeline,
    published_label,
    ranked_records,
    selection,
    settings,
    short_label,
    shown_rules,
    these_images,
)
from panbench.reporting.pairing import paired_differences


def no_records(results_dir: Any, dataset: str | None, every: list[RunRecord]) -> PanbenchError:
    """The error of a results folder without records (of ``dataset``): the datasets that have some, else `eval`."""
    names = sorted({r.dataset.split("+")[0] for r in every})
    if dataset and names:
        return PanbenchError(f"{results_dir}/runs: no result records for dataset '{dataset}'; records exist for "
                             f"{', '.join(names)}: pass --only-dataset {names[0]}, or leave it out")
    where = f" for dataset '{dataset}'" if dataset else ""
    return PanbenchError(f"{results_dir}/runs: no result records{where}; run `panbench eval` first")


def latest_runs(records: list[RunRecord], dataset: str | None = None) -> list[RunRecord]:
    """The newest record of each (model, post-processing, dataset, settings, ops backend), in first-seen order."""
    out: dict[tuple[str, str, str, str, str | None], RunRecord] = {}
    for r in sorted(records, key=lambda r: r.date):
        if dataset is None or r.dataset == dataset:
            out[(r.model, r.postprocess, dataset_key(r), settings(r), ops_backend(r))] = r
    return list(out.values())


# the columns a reader compares, in the default table (`--all-columns` and the report's details: every column)
DEFAULT_COLUMNS = ("postprocess", "settings", "grid", "ops", "dataset", "n_images", "PQ", "PQ_low", "PQ_high", "PQ_th",
                   "PQ_st", "SQ", "RQ", "AP", "mIoU", "mIoU_from", "images_per_s", "images_per_s_shared", "FPS_fwd_b1",
                   "FPS_shared", "FPS_setup", "FPS_pub", "params_M", "GFLOPs")
INTEGER_COLUMNS = ("n_images", "batch", "N_all", "N_th", "N_st")  # nullable integers: blank, never 1.000


def comparison(records: list[RunRecord], vs_published: bool = False, analyses: list[str] | tuple = (),
               results_dir: Path | None = None, notes: list[str] | None = None, all_columns: bool = False,
               reference: str | None = None, compact: bool = False, marks: dict[str, str] | None = None) -> Any:
    """One row per run, the best PQ first within each dataset; ``notes`` (when given) receives the footnotes;
    ``marks`` (a record's path -> its marks in a grid, :func:`panbench.reporting.grids.grid_marks`): a column
    ``grid``; the metrics under the rules some run computed beside panbench's (``PQ[RULE]``, :func:`rule_columns`)."""
    import pandas as pd

    records = ranked_records(records)
    extra, more = (analysis_columns(records, list(analyses), Path(results_dir or "."), reference) if analyses
                   else ([], []))
    fps, fps_notes = fps_columns(records, Path(results_dir)) if results_dir and not analyses else ([], [])
    rules = [] if analyses else shown_rules(records)
    if notes is not None:
        notes += more + fps_notes + ([RULE_NOTE] if rules else [])
        notes += absent_notes(records, rules, lambda r: short_label(r, records))
    with_cfg = any(cfg_words(r) for r in records)
    with_corruption = any(r.corruption for r in records)  # docs/robustness.md
    published = vs_published and any(has_published(r) for r in records)
    rows = []
    for i, r in enumerate(records):
        row = _identity_row(r, with_cfg, with_corruption)
        if marks:
            row["grid"] = marks.get(str(r.record)) or None
        row.update(extra[i] if analyses else {**_metric_columns(r, rules), **(fps[i] if fps else {})})
        if vs_published:
            row.update(_published_columns(r, published))
        rows.append(row)
    df = pd.DataFrame(rows).set_index("model")
    if compact and analyses:
        return _compact(df, records)
    return _drop_columns(df, notes, analyses, all_columns, vs_published)


def _identity_row(r: RunRecord, with_cfg: bool, with_corruption: bool) -> dict[str, Any]:
    """The columns that say which run a row is."""
    row: dict[str, Any] = {"model": r.model, "postprocess": r.postprocess, "framework": r.framework,
                           "settings": settings(r) or None, "dataset": dataset_key(r), "n_images": r.n_images,
                           "selection": selection(r), "batch": r.batch_size,
                           "amp": (r.amp or "fp32") if r.batch_size else None}
    if with_cfg:
        row["cfg_options"] = " ".join(cfg_words(r)) or None
    row["ops"] = ops_backend(r)
    if with_corruption:
        c = r.corruption or {}
        row.update({"corruption": c.get("name"), "severity": c.get("severity")})
    return row


def _metric_columns(r: RunRecord, rules: list[str]) -> dict[str, Any]:
    """The metrics, PQ's interval, the metrics under ``rules``, semantic metrics, category counts, speed, device,
    size and GFLOPs."""
    n = r.n_categories
    ci = (r.ci or {}).get("PQ") or (None, None)
    row: dict[str, Any] = {k: r.metrics.get(k) for k in METRIC_KEYS}  # one a record lacks: blank
    row["PQ_low"], row["PQ_high"] = ci
    row.update(rule_columns(r, rules))
    row.update(r.semantic)
    row.update(ap_miou_columns(r))  # mIoU: the semantic output's where the model has one
    row.update({"N_all": n.get("All"), "N_th": n.get("Things"), "N_st": n.get("Stuff"),
                "images_per_s": measured_speed(r), "device": r.device,
                "images_per_s_shared": speed_shared(r) and measured_speed(r) is not None,  # a '~' to write
                "params_M": r.params / 1e6 if r.params else None, "GFLOPs": gflops(r)})
    row.update(evaluator_columns(r))
    return row


EVALUATOR_COLUMNS = 32  # the most columns one user's evaluator gets; the record keeps every field


def evaluator_columns(r: RunRecord) -> dict[str, Any]:
    """The user's evaluators' fields (--evaluator): a column ``Name.field`` for each number or text, the first
    :data:`EVALUATOR_COLUMNS` of each evaluator (a result of millions of fields stays in the record)."""
    out: dict[str, Any] = {}
    for name, fields in (r.evaluators or {}).items():
        shown = (k for k, v in fields.items() if isinstance(v, (int, float, str)) or v is None)
        out.update({f"{name}.{k}": fields[k] for k, _ in zip(shown, range(EVALUATOR_COLUMNS))})
    return out


def _published_columns(r: RunRecord, published: bool) -> dict[str, Any]:
    """Where the published numbers come from and, where some row has any, each metric's value and its difference
    from this run's under the rules they were computed under (docs/pq-rules.md): panopticapi's are the metrics;
    another rule's the run's ``rules`` entry (PQ under it in ``PQ_under_rules``); unknown rules or a rule the run
    did not compute: no difference (``published_rules`` says which)."""
    pub, rule = r.published, r.published_rules
    m: dict[str, Any] | None = r.metrics if rule == "panopticapi" else (r.rules or {}).get(rule or "")
    other = other_pipeline(r)
    row: dict[str, Any] = {"published": published_label(r)}
    if published:
        row["published_rules"] = None if not any(v is not None for v in pub.values()) else (
            f"{rule}, {other}" if other else
            rule if rule and m is not None else f"{rule} (not computed)" if rule else "unknown")
    if other:  # another inference than the published numbers': nothing to set them beside
        m = None
    if published:
        row["PQ_under_rules"] = m.get("PQ") if m is not None and rule != "panopticapi" else None
    for k in METRIC_KEYS if published else ():
        row[f"{k}_pub"] = p = pub.get(k)
        row[f"{k}_delta"] = m[k] - p if p is not None and m is not None and m.get(k) is not None else None
    return row


def _compact(df: Any, records: list[RunRecord]) -> Any:
    """The report's analysis table: the run's short label and the analysis columns, counts with their deltas."""
    import pandas as pd

    df.index = pd.Index([short_label(r, records) for r in records], name="model")
    df = df.drop(columns=[c for c in ("postprocess", "framework", "settings", "dataset", "n_images",
                                      "selection", "batch", "amp", "cfg_options") if c in df.columns])
    if "ops" in df.columns and df["ops"].nunique(dropna=False) <= 1:  # the same backend of mmcv's ops in every row
        df = df.drop(columns="ops")
    return counts_with_deltas(df)


def _drop_columns(df: Any, notes: list[str] | None, analyses: list[str] | tuple, all_columns: bool,
                  vs_published: bool) -> Any:
    """The table without the columns that say nothing for these rows (see :func:`comparison`)."""
    df = df.astype({c: "Int64" for c in INTEGER_COLUMNS if c in df.columns})
    if not all_columns:  # not counted / computed for any run
        df = df.drop(columns=[c for c in ("GFLOPs", "AP", "FPS_pub") if c in df.columns and df[c].isna().all()])
    marked = []
    for col, what in (("images_per_s_shared", "images/s"), ("FPS_shared", f"{FPS}")):
        if col in df.columns and not df[col].fillna(False).astype(bool).any():  # nothing measured beside other work
            df = df.drop(columns=col)
        elif col in df.columns:
            marked.append(what)
    if marked and notes is not None:
        notes.append(f"{SHARED_SPEED_MARK} after {' and '.join(marked)}: {SHARED_SPEED_NOTE} (the record's "
                     "speed_context), so slower than alone")
    df = df.drop(columns=[c for c in ("postprocess", "ops") if df[c].nunique() <= 1])  # shown where runs differ
    if df["settings"].isna().all() or analyses or all_columns:  # the settings' own columns say it there
        df = df.drop(columns="settings")
    if analyses:  # the analysis tables keep only the settings columns that tell their rows apart
        df = df.drop(columns=[c for c in ("selection", "batch", "amp") if df[c].nunique(dropna=False) <= 1])
    elif not all_columns:
        keep = [c for c in DEFAULT_COLUMNS if c in df.columns]
        at = keep.index("RQ") + 1  # PQ under each rule after panbench's own metrics
        keep[at:at] = [c for c in df.columns if (rc := rule_of_column(c)) is not None and rc[0] == "PQ"]
        df = df[keep + ["published" for c in df.columns if c == "published"]
                + [c.name for c in of_kind(df.columns, "published")]]
    if vs_published:  # a metric that no row's source publishes: its published columns say nothing
        df = df.drop(columns=[c.name for c in of_kind(df.columns, "published") if df[c.name].isna().all()])
    return df


def per_class(records: list[RunRecord]) -> Any:
    """Per-class PQ: one row per category, one column per run (best PQ first), blank where absent, by dataset."""
    import pandas as pd

    ranked = ranked_records(records)  # the verdict's order: the best PQ first
    datasets = list(dict.fromkeys(r.dataset for r in ranked))
    blocks = []
    for ds in datasets:
        runs = [r for r in ranked if r.dataset == ds]
        names = {k: v for r in runs for k, v in r.provenance.get("category_names", {}).items()}
        df = pd.DataFrame({short_label(r, records): {cid: (None if absent(v) else v["PQ"])
                                                   for cid, v in r.per_class.items()} for r in runs}).astype(float)
        df = df.loc[sorted(df.index, key=lambda c: int(c) if str(c).isdigit() else 0)]
        df.index.name = "category_id"
        df.insert(0, "name", [names.get(str(c), str(c)) for c in df.index])
        if len(datasets) > 1:
            df.insert(0, "dataset", ds)
        blocks.append(df)
    return pd.concat(blocks) if len(blocks) > 1 else blocks[0]


def table_with_notes(results_dir: Path, dataset: str | None, fmt: str, vs_published: bool, by_class: bool,
                     analyses: list[str] | tuple = (), reference: str | None = None, all_columns: bool = False
                     ) -> tuple[str, list[str]]:
    """The verdict and the table of the latest runs in ``results_dir``, and the footnotes (CSV: printed apart)."""
    every = load_records(results_dir)
    records = latest_runs(every, dataset)
    if not records:
        raise no_records(results_dir, dataset, every)
    corrupted = corrupted_note(records)  # a robustness sweep's corrupted runs: table --robustness shows them
    records = [r for r in records if not r.corruption]
    if not records:
        raise PanbenchError(f"{results_dir}/runs: only corrupted runs{f' of {dataset}' if dataset else ''}; "
                            f"{corrupted.split(': ', 1)[1]}; pass --robustness, or --only-dataset with a dataset "
                            "of clean runs")
    if by_class and analyses:
        raise PanbenchError("--per-class: give it alone, not with " + ", ".join("--" + a.replace("_", "-")
                                                                               for a in analyses))
    notes: list[str] = [corrupted] if corrupted else []
    if by_class:
        return format_table(per_class(records), fmt, notes=notes), notes
    found, more = verdicts(ranked_records(records), results_dir, reference)
    head = verdict_text(found, fmt)
    grids = grids_of(results_dir, records, every) if not analyses else []
    marks = grid_marks(grids)
    df = comparison(records, vs_published, analyses, results_dir, notes, all_columns, reference, marks=marks)
    notes += ([GRID_NOTE] if marks else []) + ([NAMED_NOTE] if several_names(grids) else [])
    notes += [n for n in more if n not in notes]
    if writer(fmt).notes_apart:
        return format_table(df, fmt), [head, *notes]
    return head + "\n\n" + format_table(df, fmt, notes=notes), notes


def format_table(df: Any, fmt: str, digits: int = 3, notes: list[str] | tuple = ()) -> str:
    """The table in ``fmt``: CSV with every digit; for readers rounded to ``digits``, ``notes`` after it."""
    w = writer(fmt)
    if w.fields:  # CSV: every digit of the record, for machines
        return w.table(df, digits, notes)
    digits = min(digits, w.max_digits or digits)
    df = df.round(digits)
    df, same = _drop_constant(df, digits)
    return w.table(_display(df, digits), digits, [*same, *notes])


# the columns that say which run a row is: one that is the same in every row is a note under the table instead
FOLDED = ("postprocess", "framework", "settings", "dataset", "n_images", "selection", "batch", "amp", "cfg_options",
          "ops", "device", "mIoU_from")


def _drop_constant(df: Any, digits: int) -> tuple[Any, list[str]]:
    """``df`` without the :data:`FOLDED` columns the same in every row, and the note that gives them once."""
    if len(df) < 2:
        return df, []
    same = [c for c in df.columns if c in FOLDED and df[c].nunique(dropna=False) == 1]
    if not same:
        return df, []
    first = cells(df[same].iloc[:1], digits).iloc[0]
    said = [f"{header(c)} {first[c]}" for c in same if first[c] is not None]
    return df.drop(columns=same), [f"In every row: {'; '.join(said)}."] if said else []


def _display(df: Any, digits: int) -> Any:
    """The declared columns for readers: an interval as 'X 95% CI', marks after speeds and differences."""
    import pandas as pd

    df = df.copy()
    kinds = declared()
    highs = {c.of: c.name for c in of_kind(df.columns, "interval_high", kinds)}
    for low in [c for c in of_kind(df.columns, "interval_low", kinds) if c.of in highs]:
        lo, hi = df[low.name], df[highs[low.of]]
        cell = [None if pd.isna(a) or pd.isna(b) else f"[{decimals(a, f'.{digits}f')}, {decimals(b, f'.{digits}f')}]"
                for a, b in zip(lo, hi)]
        df.insert(list(df.columns).index(low.name), f"{low.of[0]} 95% CI", cell)
        df = df.drop(columns=[low.name, highs[low.of]])
    for shared in of_kind(df.columns, "shared", kinds):  # speeds measured beside another run, marked
        marks = df.pop(shared.name).fillna(False).astype(bool)
        for c in [c for c in shared.of if c in df.columns]:
            df[c] = [None if pd.isna(v) else f"{decimals(v, f'.{digits}f')}{SHARED_SPEED_MARK if sh else ''}"
                     for v, sh in zip(df[c], marks)]
    for mark in of_kind(df.columns, "mark", kinds):
        (c,) = mark.of
        df[c] = [None if pd.isna(d) else f"{decimals(d, f'+.{digits}f')}{mk or ''}"
                 for d, mk in zip(df[c], df.pop(mark.name))]
    return df


def verdict_text(verdicts: list[Any], fmt: str) -> str:
    """The verdicts in ``fmt``: heading, ranking and reading per group; plain lines without a verdict block."""
    block = writer(fmt).block
    if block is None:
        return "\n".join(line for v in verdicts for line in lines(v))
    return "\n\n".join(block(v.heading(), format_table(verdict_frame(v), fmt, digits=2), v.reading)
                       for v in verdicts)


def counts_with_deltas(df: Any) -> Any:
    """Each error type's count and delta as one column "X: count, delta PQ" at the end, a lone delta after."""
    import pandas as pd

    kinds = declared()
    deltas = {c.of: c.name for c in of_kind(df.columns, "delta", kinds)}
    for count in [c for c in of_kind(df.columns, "count", kinds) if c.of in deltas]:
        n, d = df.pop(count.name), df.pop(deltas.pop(count.of))  # an error type in one column: half as wide
        df[f"{count.of[0]}: count, delta PQ"] = [None if pd.isna(x) else f"{int(x)}, {decimals(y, '+.2f')}"
                                                  for x, y in zip(n, d)]
    for alone in deltas.values():  # a delta without a count (perfect masks): last
        df[alone] = df.pop(alone)
    return df


BOOTSTRAP_PROTOCOL = "95% paired image bootstrap, 1000 resamples, seed 0; * the interval excludes 0"


@dataclass
class Verdict:
    """One group of runs on the same images (or on a dataset without fingerprint): the ranking and its reading."""

    dataset: str  # dataset name and fingerprint (labels.dataset_key)
    n_images: int
    reference: str | None  # the label of the reference run; None when no run of the group has a paired difference
    rows: list[dict[str, Any]] = field(default_factory=list)  # best PQ first: label, PQ, diff, interval, mark
    reading: str = ""

    def heading(self) -> str:
        ref = f"; paired difference to {self.reference} ({BOOTSTRAP_PROTOCOL})" if self.reference else ""
        return f"{self.dataset}, {images(self.n_images)}: ranking on PQ{ref}"


def verdicts(records: list[RunRecord], results_dir: Path, reference: str | None = None
             ) -> tuple[list[Verdict], list[str]]:
    """One :class:`Verdict` per group of runs sharing a dataset fingerprint, and the paired differences' notes."""
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
    """The verdict in one line: who beats whom by how much, or 'not distinguishable'."""
    if len(v.rows) == 1:
        return f"{v.rows[0]['label']}: the only run on {these_images(v.n_images)}, nothing to compare"
    if v.reference is None:
        why = too_few(v.n_images) or "no per-image analysis files to pair"
        return f"no paired difference on {these_images(v.n_images)} ({why})"
    parts = []
    for row in (row for row in v.rows if not row["reference"]):
        if row["diff"] is None:
            parts.append(f"{row['label']}: no paired difference (see the notes)")
            continue
        d, (lo, hi) = row["diff"], row["interval"]
        if not row["mark"]:
            d1, lo1, hi1 = (decimals(x, "+.1f") for x in (d, lo, hi))
            parts.append(f"{row['label']} vs {v.reference}: not distinguishable ({d1} PQ [{lo1}, {hi1}])")
        elif d > 0:
            d1, lo1, hi1 = (decimals(x, ".1f") for x in (d, lo, hi))
            parts.append(f"{row['label']} beats {v.reference} by {d1} PQ [{lo1}, {hi1}]")
        else:  # the same interval, read from the reference's side
            d1, lo1, hi1 = (decimals(x, ".1f") for x in (-d, -hi, -lo))
            parts.append(f"{v.reference} beats {row['label']} by {d1} PQ [{lo1}, {hi1}]")
    return "; ".join(parts) + f" (on {these_images(v.n_images)})"


def cell(row: dict[str, Any]) -> str:
    """The ranking's difference column: 'reference', '+1.23 [-0.40, +2.90]' (with '*' where significant) or '-'."""
    if row["reference"]:
        return "reference"
    if row["diff"] is None:
        return "-"
    lo, hi = row["interval"]
    return f"{decimals(row['diff'], '+.2f')} [{decimals(lo, '+.2f')}, {decimals(hi, '+.2f')}]{row['mark']}"


def verdict_frame(v: Verdict) -> Any:
    """The ranking as a DataFrame (index: rank) for :func:`format_table`."""
    import pandas as pd

    col = f"PQ - {v.reference}" if v.reference else "paired difference"
    df = pd.DataFrame([{"rank": k + 1, "model": r["label"], "PQ": f"{r['PQ']:.2f}", col: cell(r)}
                       for k, r in enumerate(v.rows)])
    return df.set_index("rank")


def lines(v: Verdict) -> list[str]:
    """The verdict as plain text for the terminal: heading, one line per run, the reading."""
    w = max(len(r["label"]) for r in v.rows)
    return [v.heading(), *(f"  {k + 1}. {r['label']:{w}}  PQ {r['PQ']:6.2f}  {cell(r) if v.reference else ''}".rstrip()
                           for k, r in enumerate(v.rows)), f"  {v.reading}"]
