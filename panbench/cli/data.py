"""``panbench data NAME``: prepare a dataset in the COCO panoptic layout, one sub-command per row of
:data:`panbench.data.catalog.DATASETS` (its help, options and the function it runs are the row's)."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.cli.options import Common, check_writable, deprecated_alias, seed_int
from panbench.data.catalog import DATASETS


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("data", help="prepare datasets", description="Prepare datasets in the COCO panoptic layout.")
    dsub = p.add_subparsers(dest="data_command", metavar="DATASET", required=True)
    for ds in DATASETS.values():
        d = dsub.add_parser(ds.name, parents=[getattr(common, group) for group in ds.options], help=ds.help,
                            description=ds.description)
        for o in ds.extra:
            d.add_argument(o.flag, type=seed_int if o.seed else o.type, default=o.default, help=o.help)
            if o.old:
                deprecated_alias(d, o.old, o.flag)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the dataset's ``data_command`` on ``--root`` (default: its folder) and print its line."""
    ds = DATASETS[args.data_command]
    args.root = args.root or ds.folder
    if not Path(args.root).is_dir():  # a folder to make: where it cannot be (/proc, a file in the way, read-only)
        check_writable(args.root, "--root")
    print(ds.run_command()(Path(args.root), args))
    return 0
