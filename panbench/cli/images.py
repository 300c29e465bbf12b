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


def _load(what: str, results: Path, dataset: str | None) -> tuple[Any, Any]:
    """The latest record ``what`` names and its per-image :class:`panbench.analysis.AnalysisSet`."""
    from panbench.cli.compare import find_records, load_run

    runs, root = find_records(what, results, dataset)
    rec = runs[-1]
    return rec, load_run(rec, root)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from panbench.analysis.per_image import per_image_columns, write_per_image
    from panbench.errors import InputError

    if not args.run:
        raise InputError("--run is required: run A, a model name or a record JSON (results/runs/*.json)")
    results = Path(args.results)
    rec_a, a = _load(args.run, results, args.only_dataset)
    cols = per_image_columns(a)
    if args.per_image:
        print(f"per-image table of {rec_a.model}: {write_per_image(a, args.per_image)}")
    ids, pq = cols["image_id"], np.asarray(cols["PQ"])
    if args.vs:
        rec_b, b = _load(args.vs, results, args.only_dataset)
        cols_b = per_image_columns(b)
        if cols_b["image_id"] != ids:
            raise InputError(f"{rec_a.model} and {rec_b.model} were scored on different images; "
                             "pick two runs of the same dataset (--only-dataset)")
        key, head = pq - np.asarray(cols_b["PQ"]), f"PQ {rec_a.model} - {rec_b.model}"
    else:
        key, head = pq, f"PQ {rec_a.model}"
    order = np.argsort(key, kind="stable")[: args.worst]
    print(f"{'image':>20}  {head:>12}  {'TP':>4} {'FP':>4} {'FN':>4}")
    for k in order:
        print(f"{ids[k]:>20}  {key[k]:12.2f}  {cols['TP'][k]:4d} {cols['FP'][k]:4d} {cols['FN'][k]:4d}")
    return 0
