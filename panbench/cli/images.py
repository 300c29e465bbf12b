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
                       help="per-image PQ of a stored run: the worst images, or where it loses most to another run",
                       description="Per-image PQ of a stored run, read from its per-image analysis file (no model "
                       "runs): its --worst images, or with --vs the images where it loses most PQ to run B on the "
                       "same images; --per-image writes the whole table (PQ, SQ, RQ, TP, FP, FN of each image).")
    p.add_argument("--run", metavar="A",  # required (checked in run(): argparse would refuse its alias alone)
                   help="run A: a model name (its latest record; with --vs, its latest run that has a run of B on the "
                   "same images) or a record JSON (results/runs/*.json)")
    deprecated_alias(p, "--model", "--run")
    p.add_argument("--vs", metavar="B", help="run B: images ordered by PQ(A) - PQ(B), A's largest loss first")
    p.add_argument("--worst", type=positive_int, default=10, help="images listed (default 10)")
    return p


def _pick(args: argparse.Namespace, results: Path) -> tuple[Any, ...]:
    """The records ``--run`` (and ``--vs``) name, with their results folders: a model name's latest run, or with
    ``--vs`` the latest pair on the same images (:func:`panbench.reporting.pairing.pick_pair`, as `compare`)."""
    from panbench.cli.compare import find_records
    from panbench.reporting.pairing import pick_pair

    runs_a, root_a = find_records(args.run, results, args.only_dataset)
    if not args.vs:
        return runs_a[-1], root_a, None, None
    runs_b, root_b = find_records(args.vs, results, args.only_dataset)
    rec_a, rec_b = pick_pair(runs_a, runs_b)
    return rec_a, root_a, rec_b, root_b


def _named(rec: Any, root: Path) -> str:
    """The run in a few words: model, dataset, images and the record's path."""
    from panbench.reporting.labels import images

    return f"{rec.model} on {rec.dataset} ({images(rec.n_images)}; {root / str(rec.record)})"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from panbench.analysis.per_image import per_image_columns, write_per_image
    from panbench.cli.compare import load_run
    from panbench.errors import InputError

    if not args.run:
        raise InputError("--run is required: run A, a model name or a record JSON (results/runs/*.json)")
    results = Path(args.results)
    rec_a, root_a, rec_b, root_b = _pick(args, results)
    a = load_run(rec_a, root_a)
    cols = per_image_columns(a)
    ids, pq = cols["image_id"], np.asarray(cols["PQ"])
    print(f"A: {_named(rec_a, root_a)}")
    if rec_b is not None:
        cols_b = per_image_columns(load_run(rec_b, root_b))
        if cols_b["image_id"] != ids:
            raise InputError(f"{rec_a.model} ({images_of(rec_a)}) and {rec_b.model} ({images_of(rec_b)}) were scored "
                             "on different images, and no runs of the two are on the same images; run both on the "
                             "same images, or pass two record JSONs")
        print(f"B: {_named(rec_b, root_b)}")
        key, head = pq - np.asarray(cols_b["PQ"]), f"PQ {rec_a.model} - {rec_b.model}"
    else:
        key, head = pq, f"PQ {rec_a.model}"
    if args.per_image:
        print(f"per-image table of {rec_a.model}: {write_per_image(a, args.per_image)}")
    order = np.argsort(key, kind="stable")[: args.worst]
    print(f"{'image':>20}  {head:>12}  {'TP':>4} {'FP':>4} {'FN':>4}")
    for k in order:
        print(f"{ids[k]:>20}  {key[k]:12.2f}  {cols['TP'][k]:4d} {cols['FP'][k]:4d} {cols['FN'][k]:4d}")
    return 0


def images_of(rec: Any) -> str:
    """'12 images of syn a1b2c3d4': how many images and which set."""
    from panbench.reporting.labels import dataset_key, images

    return f"{images(rec.n_images)} of {dataset_key(rec)}"
