"""``panbench eval``: run zoo models (or your own weights) over a panoptic dataset and record PQ and speed."""

from __future__ import annotations

import argparse
import os

from panbench.cli.options import Common, dataset_root, non_negative_int, positive_int
from panbench.errors import PanbenchError


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", parents=[common.results, common.data_root],
                       help="evaluate models on COCO panoptic val (or demo, cityscapes, ade20k)",
                       description="Run a model over a panoptic dataset, score PQ/SQ/RQ, write a result record "
                       "under results/ and a row in results/runs.csv.")
    p.add_argument("--model", required=True,
                   help="a name or alias from `panbench ls`, a comma-separated list, 'all', or a config path")
    p.add_argument("--dataset", default="coco", help="coco (default), demo, cityscapes or ade20k (panbench data)")
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N images")
    p.add_argument("--subset", help="file of image ids (one per line) to evaluate")
    p.add_argument("--checkpoint", help="your own weights instead of the zoo's")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a checkpoint that weights_only loading refuses")
    p.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda, cuda:1")
    p.add_argument("--batch-size", type=positive_int, default=1, help="images per forward pass (default 1)")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="mixed-precision inference (default: fp32)")
    p.add_argument("--postprocess", default="default", choices=["default", "maskwise", "argmax"],
                   help="panoptic post-processing for MaskFormer/Mask2Former: the model's own fusion (default), "
                   "Panoptic SegFormer's mask-wise merging, or pixel-wise argmax")
    p.add_argument("--pp-alpha", type=float, default=0.25, help="maskwise: exponent of the class probability")
    p.add_argument("--pp-beta", type=float, default=1.0, help="maskwise: exponent of the mask quality")
    p.add_argument("--pp-conf", type=float, default=0.25, help="maskwise: confidence threshold t_cnf")
    p.add_argument("--pp-keep", type=float, default=0.6, help="maskwise: fraction of a mask that must remain")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data-loading worker processes (default 2)")
    p.add_argument("--cpu-procs", type=non_negative_int, default=0,
                   help="on the CPU: inference processes forked after the model is loaded, each with cores/N "
                   "threads and its own data loading (default 0: one per core; 1: a single process)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="batches left out of the timings (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", action="store_true", help="ignore per-image results cached by an earlier run")
    p.add_argument("--cache-every", type=positive_int, default=16,
                   help="write the per-image results cache every N images (default 16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--boundary", action="store_true",
                   help="also boundary PQ (Cheng et al. 2021; opt-in: a second pass over the pixels of each image)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.options import EvalOptions
    from panbench.evaluation.run import evaluate_model
    from panbench.models.registry import resolve
    from panbench.reporting.text import format_comparison, format_record

    specs = resolve(args.model, dataset=args.dataset)
    if args.checkpoint and len(specs) > 1:
        raise PanbenchError("--checkpoint applies to one model; pass a single --model with it")
    ds = load_dataset(dataset_root(args), name=args.dataset, limit=args.limit, subset=args.subset)
    opts = EvalOptions.from_cli(args)
    records = []
    for spec in specs:
        rec = evaluate_model(spec, ds, opts)
        records.append(rec)
        if _rank() == 0:
            print(format_record(rec))
    if len(records) > 1 and _rank() == 0:
        print(format_comparison(records))
    _finish_distributed()
    return 0


def _rank() -> int:
    """This process's rank under torchrun (0 when not distributed): only rank 0 prints."""
    return int(os.environ.get("RANK", "0"))


def _finish_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
