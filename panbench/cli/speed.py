"""``panbench speed``: FPS by a stated protocol (MMDetection's benchmark.py), written as a speed record."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from panbench.announce import announce
from panbench.cli.options import Common, check_writable, dataset_root, non_negative_int, positive_int
from panbench.cli.running import import_torch, models_and_dataset
from panbench.errors import PanbenchError
from panbench.evaluation.options import check_pipeline, with_pipeline
from panbench.records.speed import write_speed_record


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("speed", parents=[common.models, common.pipeline, common.dataset,
                       common.results, common.data_root,
                                         common.image_selection, common.device, common.amp, common.seed],
                       help="FPS by MMDetection's benchmark protocol (warm-up, batch 1, synchronized forward)",
                       description="Measure each model's FPS as MMDetection's tools/analysis_tools/benchmark.py "
                       "does: batch 1 at the model's test size, --warmup-iters iterations left out, then --iters "
                       "forward passes timed with device synchronisation (CUDA events on a GPU), and the same end to "
                       "end (load, preprocess, forward, segments); writes results/speed/*.json, which `panbench "
                       "table` shows beside the eval runs (docs/benchmarks.md, 'FPS by a stated protocol').")
    p.add_argument("--warmup-iters", type=non_negative_int, default=5,
                   help="untimed iterations first (default 5, benchmark.py's; with --compile at least one per "
                   "distinct input: compilation, once per input shape, falls here)")
    p.add_argument("--iters", type=positive_int, default=50,
                   help="timed iterations (default 50; benchmark.py runs 2000)")
    p.add_argument("--batch", type=int, default=1, choices=[1], help="images per forward pass: 1, the protocol's")
    p.add_argument("--compile", action="store_true", help="torch.compile the network (transformers: the model; "
                   "mmdet: backbone and neck) before the warm-up")
    p.add_argument("--compile-mode", default="default", choices=["default", "reduce-overhead", "max-autotune"],
                   help="torch.compile's mode (default: default)")
    p.add_argument("--no-e2e", action="store_true", help="forward only: no end-to-end timing")
    p.add_argument("--check-pq", action="store_true", help="also score the images eager and compiled (the eval "
                   "loop) and fail (exit 1) when PQ differs by more than 0.01")
    return p


def run(args: argparse.Namespace) -> int:
    announce("importing torch")
    import_torch()

    from panbench.data.datasets import load_dataset
    from panbench.evaluation.speed import SpeedOptions, measure

    specs, args.dataset = models_and_dataset(args.model, args.dataset)
    cfg_options = with_pipeline(None, args.pipeline)
    check_pipeline(specs, cfg_options)
    check_writable(args.results, "--results")
    announce(f"reading the dataset at {dataset_root(args)}")
    ds = load_dataset(dataset_root(args), name=args.dataset, limit=args.limit, subset=args.subset)
    if not ds.samples:
        raise PanbenchError(f"{dataset_root(args)}: no images to time; check --dataset / --limit")
    opts = SpeedOptions(warmup=args.warmup_iters, iters=args.iters, compile=args.compile,
                        compile_mode=args.compile_mode, amp=args.amp, device=args.device,
                        end_to_end=not args.no_e2e, check_pq=args.check_pq, seed=args.seed,
                        results_dir=Path(args.results), command=getattr(args, "command_line", None),
                        cfg_options=cfg_options)
    failed = []
    for spec in specs:
        rec = measure(spec, ds, opts)
        print(speed_text(rec), flush=True)  # the numbers before the record is written
        rec = write_speed_record(opts.results_dir, rec)
        print(f"  record: {opts.results_dir / str(rec.record)}")
        if rec.pq_check is not None and not rec.pq_check["within"]:
            failed.append(spec.name)
    if failed:
        print(f"panbench speed: PQ compiled differs from eager by more than 0.01 for {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


def speed_text(rec: Any) -> str:
    """A speed record in a few lines: the FPS, what was timed and on what, the published FPS where comparable."""
    f, p = rec.forward, rec.protocol
    split = (f" (network {f['network_ms_mean']:.1f} + fusion {f['fusion_ms_mean']:.1f})"
             if "network_ms_mean" in f else "")
    lines = [f"{rec.model} on {rec.dataset}: forward {f['fps']:.2f} FPS, {f['ms_mean']:.1f} ms mean{split}, "
             f"median {f['ms_median']:.1f} ms"]
    if e := rec.end_to_end:
        lines.append(f"  end to end (load, preprocess, forward, segments): {e['fps']:.2f} FPS, {e['ms_mean']:.1f} ms")
    state = f"compiled ({', '.join(rec.compile.get('modules', []))})" if rec.compile.get("on") else "eager"
    lines.append(f"  protocol {p['name']}: batch {p['batch']}, {p['warmup']} warm-up + {p['iters']} timed "
                 f"iterations over {p['images']} images, {p['clock']}; input {rec.input_size}"
                 + (f" (pipeline {pipe})" if (pipe := rec.provenance.get("pipeline")) else "") + f"; {rec.device}, "
                 f"{rec.amp}, {state}; torch {rec.provenance['versions'].get('torch')}")
    ctx = rec.speed_context or {}
    lines.append(f"  load {ctx.get('load_start')} -> {ctx.get('load_end')}, other work on "
                 f"{ctx.get('other_cores')} of {ctx.get('cores')} cores")
    from panbench.records.rows import SHARED_SPEED_NOTE, speed_shared

    if speed_shared(rec):
        lines.append(f"  note: {SHARED_SPEED_NOTE}: marked ~ in tables; rerun alone for a speed to compare")
    if rec.published_fps is not None:
        where = "this device" if rec.published_matches else f"{rec.published_fps_device}: not this device, not compared"
        lines.append(f"  published: {rec.published_fps:g} FPS on {where} ({rec.published_fps_source})")
    if (c := rec.pq_check) is not None:
        lines.append(f"  PQ eager {c['eager']:.4f}, compiled {c['compiled']:.4f}: |delta| {c['delta']:.4f} "
                     f"({'within' if c['within'] else 'OUTSIDE'} {c['tolerance']}) on {c['images']} images")
    return "\n".join(lines)
