"""``panbench robustness``: PQ under the 15 common corruptions (COCO-C style): clean, mPC, rPC per model."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from panbench.cli.options import Common, add_image_selection, add_run_options, dataset_root

DEMO_SEVERITIES = "3"  # the demo set's default: 15 runs per model, a few minutes on two cores (docs/robustness.md)


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("robustness", parents=[common.results, common.data_root],
                       help="PQ under common corruptions (COCO-C style): clean, mPC, rPC per model",
                       description="Run each model on the clean images and on every corruption x severity "
                       "(resumable: a rerun takes the images already scored from the cache), then print and "
                       "record clean PQ, mPC, rPC and the mean PQ per corruption group (docs/robustness.md).")
    p.add_argument("--model", required=True, help="a name or alias from `panbench ls`, a comma-separated list, "
                   "'all' (the MMDetection models), a config path, or hf:<hub id or directory>")
    p.add_argument("--dataset", help="coco, demo, cityscapes or ade20k; default: the dataset the models were "
                   "trained on")
    p.add_argument("--corruptions", default="all", help="all (default), a group (noise, blur, weather, digital) "
                   "or a comma-separated list of groups and corruption names")
    p.add_argument("--severities", help="severities to run, e.g. 1-5 (default), 3 or 1,3,5; on the demo set "
                   f"the default is {DEMO_SEVERITIES}")
    add_image_selection(p)
    p.add_argument("--checkpoint", help="your own weights instead of the zoo's (one model)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a checkpoint that weights_only loading refuses")
    add_run_options(p, workers_help="data-loading worker processes, where the images are corrupted (default 2)")
    p.add_argument("--format", default="md", choices=["md", "csv", "latex", "html"], help="of the printed table")
    p.add_argument("--no-plots", action="store_true", help="do not write the plots")
    p.add_argument("--no-ap", action="store_true", help="PQ only: no COCO mask AP (the instance outputs stay off)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.cli.eval import _finish_distributed, _rank, models_and_dataset
    from panbench.data.datasets import load_dataset
    from panbench.errors import PanbenchError
    from panbench.evaluation.options import EvalOptions, check_models
    from panbench.robustness.corruptions import (
        Corruption,
        parse_names,
        parse_severities,
        preload,
        require_package,
    )

    names = parse_names(args.corruptions)
    specs = models_and_dataset(args)
    if args.checkpoint and len(specs) > 1:
        raise PanbenchError("--checkpoint applies to one model; pass a single --model with it")
    severities = parse_severities(args.severities or (DEMO_SEVERITIES if args.dataset == "demo" else "1-5"))
    for n in names:  # every corruption's package, before any model runs
        require_package(n)
    preload(names)
    for k in ("postprocess", "pp_alpha", "pp_beta", "pp_conf", "pp_keep", "cfg_options", "save_predictions",
              "boundary"):
        setattr(args, k, {"postprocess": "default", "pp_alpha": 0.25, "pp_beta": 1.0, "pp_conf": 0.25,
                          "pp_keep": 0.6}.get(k))
    args.corruption = args.severity = None
    opts = EvalOptions.from_cli(args)
    ds = load_dataset(dataset_root(args), name=args.dataset, limit=args.limit, subset=args.subset)
    check_models(specs, ds.categories, opts)
    plan = [None] + [Corruption(n, s) for n in names for s in severities]
    if _rank() == 0:
        print(f"robustness: {len(specs)} model(s) x (clean + {len(names)} corruptions x severities "
              f"{','.join(map(str, severities))}) = {len(specs) * len(plan)} runs on {len(ds.samples)} images of "
              f"{ds.name}; an interrupted sweep continues where it stopped", file=sys.stderr)
    summaries = [sweep(spec, ds, opts, plan) for spec in specs]
    if _rank() == 0:
        report(summaries, Path(args.results), args.format, not args.no_plots)
    _finish_distributed()
    return 0


def sweep(spec, ds, opts, plan) -> dict:
    """One model over the plan (clean first); returns its summary, written under RESULTS/robustness/."""
    from panbench.evaluation.run import evaluate_model
    from panbench.robustness.summary import summary

    clean, corrupted = None, []
    for c in plan:
        t = time.perf_counter()
        rec = evaluate_model(spec, ds, replace(opts, corruption=c))
        t = time.perf_counter() - t
        if c is None:
            clean = rec
        else:
            corrupted.append(rec)
        if _rank0():
            tm, m = rec.timings, rec.metrics
            n = tm.get("corrupt_images") or 0
            cost = f", corruption {1000 * tm['corrupt_s'] / n:.1f} ms/image (data loading)" if n else ""
            print(f"  {spec.name} {c.label if c else 'clean'}: PQ {m['PQ']:.3f}  "
                  f"PQ_th {m['PQ_th']:.3f}  PQ_st {m['PQ_st']:.3f}  ({t:.1f} s{cost})",
                  file=sys.stderr)
    assert clean is not None, "the plan starts with the clean run"
    return summary(clean, corrupted)


def _rank0() -> bool:
    from panbench.cli.eval import _rank

    return _rank() == 0


def report(summaries: list[dict], results: Path, fmt: str, with_plots: bool) -> None:
    """Write each summary and the plots; print the table and the paths."""
    from panbench.reporting.robustness import frame, plots, render
    from panbench.robustness.summary import write_summary

    paths = [write_summary(results, s) for s in summaries]
    print(render(frame(summaries), fmt))
    for p in paths:
        print(f"summary: {p}")
    if with_plots:
        for p in plots(summaries, results / "plots" / "robustness"):
            print(f"plot: {p}")
