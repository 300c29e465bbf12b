"""``panbench plot``: plots of the latest runs under RESULTS/plots/<dataset>/ (matplotlib; PNG, PDF or SVG)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from panbench.announce import announce
from panbench.cli.options import Common, check_results, check_writable
from panbench.errors import PanbenchError
from panbench.reporting.figure_files import figure_output, replace_figures, writing_figures
from panbench.reporting.figure_style import figure_width


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    return sub.add_parser(
        "plot", parents=[common.results, common.only_dataset, common.figures, common.by],
        help="plots of the results (PNG, PDF or SVG; matplotlib)",
        description="Per dataset, under RESULTS/plots/<dataset>/ (`panbench report` draws its own in "
        "RESULTS/report_files/ and leaves these; a dataset with runs on several image sets, which the table ranks "
        "apart: the set the table leads with there, each other set in RESULTS/plots/<dataset>-<fingerprint>/; the "
        "figures an earlier `plot` in the same --figure-format wrote there and this one does not are removed, every "
        "other file stays): grouped bars of PQ/SQ/RQ for All/Things/Stuff per model, PQ against images/s, per-class PQ "
        "where the models differ most, and, for runs that have the analyses, PQ with its confidence interval, PQ by "
        "object size and the errors by type, and for runs whose segments have scores, PQ against the score threshold "
        "(pq_score_threshold.png: the model's own threshold and the best marked) and a reliability diagram per run "
        "(reliability.png); per grid of `eval --grid`, grid_<model>_<keys>.png: PQ, PQ things and PQ "
        "stuff against each value it varies, with their 95% intervals, the model's own setting and the best marked. "
        "--by dataset: instead, one figure in RESULTS/plots/across-datasets/, pq_across_datasets.png: a panel per "
        "dataset, PQ per architecture and backbone (the latest run), the published PQ marked.")


def run(args: argparse.Namespace) -> int:
    from panbench.records.io import load_records

    check_results(args.results)
    check_writable(Path(args.results) / "plots", "--results")
    announce("importing matplotlib and pandas")
    if args.by == "dataset":
        return _across_datasets(args)
    from panbench.reporting.colors import model_colors
    from panbench.reporting.grids import grids_of
    from panbench.reporting.labels import corrupted_note
    from panbench.reporting.plot_parts import image_set_note
    from panbench.reporting.plots import FAILED, make_plots, plot_dir, plot_groups, retire_plot_folders
    from panbench.reporting.tables import latest_runs, no_records

    announce(f"reading the records in {args.results}")
    every = load_records(Path(args.results))
    if not (records := latest_runs(every, args.only_dataset)):
        raise no_records(args.results, args.only_dataset, every)
    clean = [r for r in records if not r.corruption]  # a robustness sweep's corrupted runs: plots/robustness/
    corrupted = corrupted_note(records)  # the line table and report say it in too
    if not clean:
        raise PanbenchError(f"{args.results}/runs: {corrupted}; pass --only-dataset with a dataset of clean runs")
    if len(clean) < len(records):
        print(corrupted, file=sys.stderr)
    failed, colors, groups = 0, model_colors(args.results, clean), plot_groups(records)  # a model's colour, kept
    grids = grids_of(Path(args.results), clean, every)  # eval --grid's, drawn with the image set of their runs
    # plot's figures in this format: those of an earlier `plot` in it replaced, every other file kept; one command
    # at a time writes under plots/ (`robustness` run beside this one waits, and both keep all their files)
    with figure_output(args.figure_format, args.dpi, command="plot"), figure_width(args.figure_width), \
            writing_figures(Path(args.results) / "plots"):
        for folder, group in groups:  # the runs on one dataset fingerprint, as the table groups them
            paths, notes = make_plots(group, plot_dir(Path(args.results), folder), colors,
                                      image_set_note(group, records), **({"grids": grids} if grids else {}))
            for p in paths:
                print(p)
            for n in notes:
                print(n, file=sys.stderr if n.startswith(FAILED) else sys.stdout)
                failed += n.startswith(FAILED)
        for n in retire_plot_folders(Path(args.results), groups, every):
            print(n)
    return 1 if failed else 0


def _across_datasets(args: argparse.Namespace) -> int:
    """``plot --by dataset``: the figure across datasets in RESULTS/plots/across-datasets/, nothing else drawn."""
    from panbench.reporting.across_datasets import ACROSS_FOLDER, clean_runs, pq_across_datasets

    records, corrupted = clean_runs(Path(args.results), args.only_dataset)
    for n in corrupted:  # the line table and report say it in too
        print(n, file=sys.stderr)
    folder = Path(args.results) / "plots" / ACROSS_FOLDER
    with figure_output(args.figure_format, args.dpi, command="plot"), figure_width(args.figure_width), \
            writing_figures(Path(args.results) / "plots"):
        path = pq_across_datasets(records, folder)
        removed = replace_figures(folder, [path])
    print(path)
    if removed:
        print(f"{folder}: removed {', '.join(p.name for p in removed)} (written there by an earlier run, not by this "
              "one)")
    return 0
