"""``panbench score``: PQ of COCO-panoptic predictions (JSON + PNGs) from any framework.

Imports numpy and :mod:`panbench.pq` only, never torch.
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
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--name", help='store a result record under this model name (e.g. "Mask DINO (detectron2)") '
                   "so that the system appears in `panbench table`")
    p.add_argument("--dataset", default="coco", help="dataset name for the record (default coco)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.pq.score import score_files
    from panbench.reporting.text import format_metrics

    t = time.perf_counter()
    res = score_files(args.gt_json, args.gt_dir, args.pred_json, args.pred_dir, workers=args.workers)
    if args.name:
        from panbench.reporting.records import external_record, write_record

        rec = external_record(args.name, args.dataset, res, args, time.perf_counter() - t)
        path = write_record(Path(args.results), rec)
        print(f"record: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(res))
    else:
        print(format_metrics(res, f"{res['n_images']} images"))
    return 0
