"""``panbench robustness``: PQ under the 15 common corruptions (COCO-C style): clean, mPC, rPC per model."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from panbench.cli.options import Common, check_writable, dataset_root
from panbench.cli.running import finish_distributed, import_torch, models_and_dataset, rank, single_checkpoint
from panbench.cluster.sweep import note_incomplete_sweeps
from panbench.evaluation.options import EvalOptions, check_models
from panbench.reporting.figure_files import figure_output, replace_figures, writing_figures
from panbench.reporting.figure_style import figure_width
from panbench.reporting.formats import writer


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("robustness", parents=[common.models, common.pipeline, common.dataset,
                       common.results, common.data_root,
                                              common.image_selection, common.checkpoint, common.device, common.run,
                                              common.evaluator, common.amp, common.seed, common.progress, common.format,
                                              common.corruptions, common.figures],
                       help="PQ under common corruptions (COCO-C style): clean, mPC, rPC per model",
                       description="Run each model on the clean images and on every corruption x severity "
                       "(resumable: a rerun takes the images already scored from the cache), then print and "
                       "record clean PQ, mPC, rPC and the mean PQ per corruption group (docs/robustness.md).")
    p.add_argument("--no-plots", action="store_true", help="do not write the plots")
    return p


def run(args: argparse.Namespace) -> int:
    import_torch()

    from panbench.data.datasets import load_dataset
    from panbench.robustness import corruptions as c

    names = c.parse_names(args.corruptions or "all")
    specs, args.dataset = models_and_dataset(args.model, args.dataset)
    args.checkpoint = single_checkpoint(args.checkpoint, specs)
    severities = c.parse_severities(args.severities or (c.DEMO_SEVERITIES if args.dataset == "demo" else "1-5"))
    for n in names:  # every corruption's package, before any model runs
        c.require_package(n)
    c.preload(names)
    for written in ("runs", "cache", "robustness") + (() if args.no_plots else ("plots",)):
        check_writable(Path(args.results) / written, "--results")
    opts = EvalOptions.from_cli(args)  # what robustness has no option for: EvalOptions' defaults
    ds = load_dataset(dataset_root(args), name=args.dataset, limit=args.limit, subset=args.subset)
    handles = check_models(specs, ds.categories, opts)
    plan = [None] + [c.Corruption(n, s) for n in names for s in severities]
    if rank() == 0:
        print(f"robustness: {len(specs)} model(s) x (clean + {len(names)} corruptions x severities "
              f"{','.join(map(str, severities))}) = {len(specs) * len(plan)} runs on {len(ds.samples)} images of "
              f"{ds.name}; an interrupted sweep continues where it stopped", file=sys.stderr)
    summaries = [sweep(spec, ds, opts, plan, handle) for spec, handle in zip(specs, handles)]
    if rank() == 0:
        note_incomplete_sweeps(args.results)
        # the plots' format, resolution and width
        with figure_output(args.figure_format, args.dpi, command="robustness"), figure_width(args.figure_width):
            report(summaries, Path(args.results), args.format, not args.no_plots)
    finish_distributed()
    return 0


def sweep(spec, ds, opts, plan, handle=None) -> dict:
    """One model over the plan (clean first), each run through its ``handle`` (its config read once); returns its
    summary, written under RESULTS/robustness/."""
    from panbench.evaluation.run import evaluate_model
    from panbench.robustness.summary import summary

    recs = []
    for c in plan:
        t = time.perf_counter()

        def shown(rec: Any, c: Any = c, t: float = t) -> None:  # the numbers before the record is written
            tm, m = rec.timings, rec.metrics
            n = tm.get("corrupt_images") or 0
            cost = f", corruption {1000 * tm['corrupt_s'] / n:.1f} ms/image (data loading)" if n else ""
            print(f"  {spec.name} {c.label if c else 'clean'}: PQ {m['PQ']:.3f}  "
                  f"PQ_th {m['PQ_th']:.3f}  PQ_st {m['PQ_st']:.3f}  ({time.perf_counter() - t:.1f} s{cost})",
                  file=sys.stderr, flush=True)

        recs.append(evaluate_model(spec, ds, replace(opts, corruption=c), show=shown, handle=handle))
    return summary(recs[0], recs[1:])  # the plan starts with the clean run


def report(summaries: list[dict], results: Path, fmt: str, with_plots: bool) -> None:
    """Write each summary and the plots; print the table on stdout (alone: ``--format csv > f.csv`` is one CSV),
    the paths written (and, in CSV, the table's note) on stderr."""
    from panbench.reporting.colors import model_colors
    from panbench.reporting.labels import summary_model
    from panbench.reporting.robustness import NOTE, format_robustness_table, plots, summary_frame
    from panbench.robustness.summary import write_summary

    print(format_robustness_table(summary_frame(summaries), fmt).rstrip("\n"), flush=True)  # numbers first
    paths = [write_summary(results, s) for s in summaries]
    if writer(fmt).notes_apart:
        print(NOTE, file=sys.stderr)
    for p in paths:
        print(f"summary: {p}", file=sys.stderr)
    if with_plots:
        colors = model_colors(results, [], [summary_model(s) for s in summaries])  # each model's colour, kept
        with writing_figures(results / "plots"):  # one command at a time writes under plots/
            written = plots(summaries, results / "plots" / "robustness", colors)
            for p in written:
                print(f"plot: {p}", file=sys.stderr)
            for p in replace_figures(results / "plots" / "robustness", written):  # its own, no longer drawn
                print(f"removed: {p} (written there by an earlier `robustness` in this format, not by this one)",
                      file=sys.stderr)
