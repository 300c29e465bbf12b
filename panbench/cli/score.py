"""``panbench score``: PQ of COCO-panoptic predictions (JSON + PNGs) from any framework.

Imports numpy, :mod:`panbench.pq` and :mod:`panbench.analysis` only, never torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from panbench.cli.options import Common


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "score",
        parents=[common.results],
        help="score COCO panoptic predictions (JSON + PNGs) against ground truth",
        description="Score predictions in the COCO panoptic format (from any framework) against ground "
        "truth; gives panopticapi's numbers exactly, streaming, optionally on several cores.",
    )
    p.add_argument("--gt-json", required=True, help="ground-truth panoptic JSON (e.g. panoptic_val2017.json)")
    p.add_argument("--gt-dir", required=True, help="folder of ground-truth panoptic PNGs")
    p.add_argument("--pred-json", required=True, help="prediction JSON in the COCO panoptic format")
    p.add_argument("--pred-dir", required=True, help="folder of predicted panoptic PNGs")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: every available core, at most one per image; 1: one "
                   "process); every choice gives the same numbers, bit for bit")
    p.add_argument("--name", help='store a result record under this model name (e.g. "Mask DINO (detectron2)") '
                   "so that the system appears in `panbench table`")
    p.add_argument("--dataset", default="coco", help="dataset name for the record (default coco)")
    p.add_argument("--boundary", action="store_true",
                   help="also boundary PQ (Cheng et al. 2021; opt-in: a second pass over the pixels)")
    p.add_argument("--no-analysis", action="store_true",
                   help="PQ only: no intervals, PQ by size, PQ-dagger or error breakdown (the baseline of "
                   "scripts/bench_pq.py)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.reporting.text import format_metrics

    if args.no_analysis and args.boundary:
        from panbench.errors import InputError

        raise InputError("--boundary is an analysis: leave out --no-analysis to get it")
    t = time.perf_counter()
    aset, fields = None, {}
    if args.no_analysis:
        from panbench.pq.score import score_files

        res = score_files(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir, workers=args.workers)
    else:
        from panbench.analysis.scoring import score_files_analysis

        res, aset, fields = score_files_analysis(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir,
                                                 workers=args.workers, boundary=args.boundary)
    if args.name:
        from panbench.reporting.records import external_record, write_record

        fingerprint = None
        if aset is not None:
            from panbench.analysis.scoring import files_fingerprint

            fingerprint = files_fingerprint(args.gt_json, aset.image_ids)
        rec = external_record(args.name, args.dataset, res, args, time.perf_counter() - t, fingerprint, **fields)
        path = write_record(Path(args.results), rec, analysis=aset)
        print(f"record: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({**res, **fields}))
    else:
        print(format_metrics(res, f"{res['n_images']} images"))
        if fields:
            from panbench.reporting.text import format_analyses

            print("\n".join(format_analyses(fields)))
    return 0
