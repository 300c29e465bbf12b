"""``panbench plot``: PNG plots of the latest runs under RESULTS/plots/<dataset>/ (matplotlib)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from panbench.cli.options import Common, check_results, check_writable


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", parents=[common.results, common.only_dataset],
                       help="PNG plots of the results (matplotlib)",
                       description="Per dataset, under RESULTS/plots/<dataset>/ (where `panbench report` puts "
                       "them too; a dataset with runs on several fingerprints, which the table ranks apart: one "
                       "folder each, RESULTS/plots/<dataset>-<fingerprint>/): grouped bars of PQ/SQ/RQ for "
                       "All/Things/Stuff per model, PQ against images/s, per-class PQ where the models differ most, "
                       "and, for runs that have the analyses, PQ with its confidence interval, PQ by object size and "
                       "the errors by type.")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.announce import announce
    from panbench.records.io import load_records

    check_results(args.results)
    check_writable(Path(args.results) / "plots", "--results")
    announce("importing matplotlib and pandas")
    from panbench.reporting.plots import FAILED, make_plots, palette, plot_dir, plot_groups
    from panbench.reporting.tables import latest_runs, no_records

    announce(f"reading the records in {args.results}")
    every = load_records(Path(args.results))
    records = latest_runs(every, args.only_dataset)
    if not records:
        raise no_records(args.results, args.only_dataset, every)
    failed, colors = 0, palette(records)  # a model's colour, the same in every plot
    for folder, group in plot_groups(records):  # the runs on one dataset fingerprint, as the table groups them
        paths, notes = make_plots(group, plot_dir(Path(args.results), folder), colors)
        for p in paths:
            print(p)
        for n in notes:
            print(n, file=sys.stderr if n.startswith(FAILED) else sys.stdout)
            failed += n.startswith(FAILED)
    return 1 if failed else 0
