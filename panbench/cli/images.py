"""`panbench images`: the images where a run is worst, or loses most to another run.

Read from the per-image analysis files the records point to (no model is run); ``--per-image``
writes the whole per-image table (CSV or Parquet)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from panbench.cli.options import Common, deprecated_alias, positive_int


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("images", parents=[common.results, common.only_dataset, common.per_image],
                       help="per-image PQ of a stored run: the worst images, or where it loses most to another run")
    p.add_argument("--run", metavar="A",  # required (checked in run(): argparse would refuse its alias alone)
                   help="run A: a model name (its latest record) or a record JSON (results/runs/*.json)")
    deprecated_alias(p, "--model", "--run")
    p.add_argument("--vs", metavar="B", help="run B: images ordered by PQ(A) - PQ(B), A's largest loss first")
    p.add_argument("--worst", type=positive_int, default=10, help="images listed (default 10)")
    return p


def _load(what: str, results: Path, dataset: str | None) -> tuple[Any, Path, Any]:
    """The latest record ``what`` names, its results folder and its per-image
    :class:`panbench.analysis.AnalysisSet`."""
    from panbench.cli.compare import find_records, load_run

    runs, root = find_records(what, results, dataset)
    rec = runs[-1]
    return rec, root, load_run(rec, root)


def columns(rec: Any, aset: Any) -> dict[str, Any]:
    """The run's per-image columns, file names from its ground truth's JSON."""
    from panbench.analysis.per_image import file_names_of, per_image_columns

    ann = ((rec.provenance or {}).get("dataset") or {}).get("ann_file")
    return per_image_columns(aset, file_names_of(ann, aset.image_ids))


def run(args: argparse.Namespace) -> int:
    from panbench.analysis.per_image import check_table, ranked, write_record_per_image
    from panbench.errors import InputError

    if not args.run:
        raise InputError("--run is required: run A, a model name or a record JSON (results/runs/*.json)")
    if args.per_image:
        check_table(args.per_image)
    results = Path(args.results)
    rec_a, root_a, a = _load(args.run, results, args.only_dataset)
    if args.per_image:
        print(f"per-image table of {rec_a.model}: {write_record_per_image(rec_a, root_a, args.per_image)}")
    b_cols, name_b = None, None
    if args.vs:
        rec_b, _, b = _load(args.vs, results, args.only_dataset)
        b_cols, name_b = columns(rec_b, b), rec_b.model
    rows = ranked(columns(rec_a, a), b_cols, args.worst)
    print(format_rows(rows, rec_a.model, name_b))
    return 0


def format_rows(rows: list[dict[str, Any]], name_a: str, name_b: str | None) -> str:
    """The terminal table of :func:`panbench.analysis.per_image.ranked`'s rows."""
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    head = f"{'image':>14}  {'file':<18} {'PQ ' + name_a:>14}"
    if name_b is not None:
        head += f" {'PQ ' + name_b:>14} {'A - B':>8}"
    lines = [head + f"  {'TP':>4} {'FP':>4} {'FN':>4}"]
    for r in rows:
        line = f"{r['image_id']:>14}  {r['file_name'][:18]:<18} {num(r['PQ']):>14}"
        if name_b is not None:
            line += f" {num(r['PQ_vs']):>14} {num(r['key']):>8}"
        lines.append(line + f"  {r['TP']:4d} {r['FP']:4d} {r['FN']:4d}")
    return "\n".join(lines)
