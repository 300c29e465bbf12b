"""``panbench plot``: PNG plots of the latest runs under RESULTS/plots (matplotlib)."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.cli.options import Common
from panbench.errors import PanbenchError


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", parents=[common.results], help="PNG plots of the results (matplotlib)",
                       description="Grouped bars of PQ/SQ/RQ for All/Things/Stuff per model, PQ against images/s, "
                       "and per-class PQ where the models differ most, under RESULTS/plots/.")
    p.add_argument("--dataset", help="only runs on this dataset")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.reporting.plots import make_plots
    from panbench.reporting.records import load_records
    from panbench.reporting.tables import latest_runs

    records = latest_runs(load_records(Path(args.results)), args.dataset)
    if not records:
        raise PanbenchError(f"{args.results}/runs: no result records; run `panbench eval` first")
    for p in make_plots(records, Path(args.results) / "plots"):
        print(p)
    return 0
