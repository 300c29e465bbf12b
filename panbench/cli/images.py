"""`panbench images`: the images where a run is worst, or loses most to another run, from the per-image analysis
files the records point to (no model is run); ``--per-image`` writes the whole per-image table (CSV or Parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from panbench.cli.options import Common, deprecated_alias, positive_int
from panbench.cli.records import find_records, load_run
from panbench.errors import InputError


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("images", parents=[common.results, common.only_dataset, common.per_image],
                       help="per-image PQ of a stored run: the worst images, or where it loses most to another run",
                       description="Per-image PQ of a stored run, read from its per-image analysis file (no model "
                       "runs): its --worst images, or with --vs the images where it loses most PQ to run B on the "
                       "same images; --per-image writes the whole table (PQ, SQ, RQ, TP, FP, FN of each image).")
    p.add_argument("--run", metavar="A",  # required (checked in run(): argparse would refuse its alias alone)
                   help="run A: a model name (its run that `panbench table` shows first; with --vs, its latest run "
                   "that has a run of B on the same images) or a record JSON (results/runs/*.json)")
    deprecated_alias(p, "--model", "--run")
    p.add_argument("--vs", metavar="B", help="run B: images ordered by PQ(A) - PQ(B), A's largest loss first")
    p.add_argument("--worst", type=positive_int, default=10, help="images listed (default 10)")
    return p


def leading(runs: list[Any], results: Path, dataset: str | None) -> Any:
    """Of a model's runs, the one `panbench table` leads with (its first row of them: grouped by dataset, the best PQ
    first); a record path (one run) is that run."""
    if len(runs) == 1:
        return runs[0]
    from panbench.records.io import load_records
    from panbench.reporting.tables import latest_runs, ranked_records

    mine = {r.record for r in runs}
    rows = ranked_records(latest_runs(load_records(results), dataset))
    return next((r for r in rows if r.record in mine), runs[-1])


def _named(rec: Any, root: Path, pair: list[Any]) -> str:  # the run in a few words, named as the verdict names it
    from panbench.reporting.labels import images, short_label

    return f"{short_label(rec, pair)} on {rec.dataset} ({images(rec.n_images)}; {root / str(rec.record)})"


def columns(rec: Any, aset: Any) -> dict[str, Any]:  # the run's per-image columns, with its images' file names
    from panbench.analysis.per_image import file_names_of, per_image_columns

    ann = ((rec.provenance or {}).get("dataset") or {}).get("ann_file")
    return per_image_columns(aset, file_names_of(ann, aset.image_ids))


def run(args: argparse.Namespace) -> int:
    from panbench.analysis.per_image import check_table, ranked, write_record_per_image
    from panbench.reporting.labels import fingerprint, short_label
    from panbench.reporting.pairing import ann_file, pick_pair, same_images

    if not args.run:
        raise InputError("--run is required: run A, a model name or a record JSON (results/runs/*.json)")
    if args.per_image:
        check_table(args.per_image)
    runs_a, root_a = find_records(args.run, Path(args.results), args.only_dataset)
    rec_b = None
    if args.vs:  # the latest pair on the same images, as `compare` takes it
        runs_b, root_b = find_records(args.vs, Path(args.results), args.only_dataset)
        rec_a, rec_b = pick_pair(runs_a, runs_b)
    else:
        rec_a = leading(runs_a, root_a, args.only_dataset)
    a = load_run(rec_a, root_a)
    pair = [rec_a] if rec_b is None else [rec_a, rec_b]
    print(f"A: {_named(rec_a, root_a, pair)}", file=sys.stderr)  # stdout: the table alone
    b_cols, name_b = None, None
    if rec_b is not None:
        if not same_images(rec_a, rec_b):  # the same image ids of two annotation files are other images
            raise InputError(f"{rec_a.model} and {rec_b.model} were scored on different images ({ann_file(rec_a)}, "
                             f"{rec_a.n_images} images; {ann_file(rec_b)}, {rec_b.n_images} images; fingerprints "
                             f"{fingerprint(rec_a)}, {fingerprint(rec_b)}), and no runs of the two share them; run "
                             "both on the same "
                             "images, or pass two record JSONs")
        b_cols, name_b = columns(rec_b, load_run(rec_b, root_b)), short_label(rec_b, pair)
        print(f"B: {_named(rec_b, root_b, pair)}", file=sys.stderr)
    rows = ranked(columns(rec_a, a), b_cols, args.worst)
    print(format_rows(rows, short_label(rec_a, pair), name_b), flush=True)  # the numbers before the file is written
    if args.per_image:
        print(f"per-image table of {rec_a.model}: {write_record_per_image(rec_a, root_a, args.per_image)}")
    return 0


def format_rows(rows: list[dict[str, Any]], name_a: str, name_b: str | None) -> str:  # the terminal table
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
