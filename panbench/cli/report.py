"""``panbench report``: one self-contained HTML page of tables, plots, visualizations and provenance."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.announce import announce
from panbench.cli.options import Common, check_file_writable, check_results, check_writable
from panbench.cluster.sweep import note_incomplete_sweeps
from panbench.reporting.figure_files import REPORT_FILES, figure_output
from panbench.reporting.figure_style import figure_width


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    return sub.add_parser("report", parents=[common.results, common.only_dataset, common.reference, common.out,
                                             common.figures, common.by],
                          help="one self-contained HTML page: tables, plots, visualizations, provenance",
                          description="Write RESULTS/report.html: per dataset the verdict (ranking on PQ with "
                          "paired differences), the comparison table, the grids of `eval --grid` (their settings, "
                          "the model's own and the best marked), the details (every column, analyses, per-class "
                          "PQ, plots), then the images under RESULTS/viz and the provenance of each run, all embedded "
                          "(--out: another file). The page's figures are written in a folder of its own beside it, "
                          "RESULTS/report_files/ (per dataset, as `panbench plot` draws them, and robustness/), each "
                          "linked from the page (with --out: in a temporary folder, not linked); the figures of "
                          "`plot` and `robustness` under RESULTS/plots/ are never touched. A PDF figure is shown as "
                          "its PNG, written beside it. --by dataset: first, a section with the table across datasets "
                          "(as `table --by dataset`) and its figure.")


def run(args: argparse.Namespace) -> int:
    check_results(args.results)
    note_incomplete_sweeps(args.results)  # one line on stderr
    out = Path(args.out) if args.out else None
    check_file_writable(out or Path(args.results) / "report.html", "--out" if out else "--results (or --out)")
    if out is None:  # the page's figures go beside it, in RESULTS/report_files
        check_writable(Path(args.results) / REPORT_FILES, "--results (or --out)")
    announce("importing matplotlib and pandas")
    from panbench.reporting.report import write_report

    with figure_output(args.figure_format, args.dpi, command="report"), figure_width(args.figure_width):
        print(write_report(Path(args.results), args.only_dataset, out, args.reference, args.by))
    return 0
