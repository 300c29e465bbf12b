"""``panbench table``: the latest run of each model side by side (pandas)."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.cli.options import Common


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("table", parents=[common.results], help="compare the latest run of each model (pandas)",
                       description="The latest run of each model side by side: PQ/SQ/RQ for All/Things/Stuff with "
                       "category counts, images/s, device and parameters.")
    p.add_argument("--dataset", help="only runs on this dataset (coco, demo, cityscapes, ade20k)")
    p.add_argument("--format", default="md", choices=["md", "csv", "latex", "html"])
    p.add_argument("--vs-published", action="store_true", help="add the zoo's published numbers and the deltas")
    p.add_argument("--per-class", action="store_true", help="per-class PQ of the models instead")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.reporting.tables import table_from_dir

    print(table_from_dir(Path(args.results), args.dataset, args.format, args.vs_published, args.per_class))
    return 0
