"""``panbench eval``: run zoo models (or your own weights) over a panoptic dataset and record PQ and speed."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from panbench.cli.options import (
    Common,
    add_image_selection,
    add_run_options,
    check_writable,
    dataset_root,
    non_negative_int,
)
from panbench.errors import PanbenchError

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("eval", parents=[common.results, common.data_root],
                       help="evaluate models on COCO panoptic val (or demo, cityscapes, ade20k)",
                       description="Run a model over a panoptic dataset, score PQ/SQ/RQ, write a result record "
                       "under results/ and a row in results/runs.csv.")
    p.add_argument("--model", required=True,
                   help="a name or alias from `panbench ls`, a comma-separated list, 'all' (the MMDetection models), a "
                   "config path, or hf:<hub id or directory> (a Hugging Face transformers model, docs/huggingface.md)")
    p.add_argument("--dataset", help="coco, demo, cityscapes or ade20k (panbench data); default: the dataset the "
                   "models were trained on (coco for the zoo, demo for the demo models)")
    add_image_selection(p)
    p.add_argument("--save-predictions", metavar="DIR",
                   help="also write the predictions in the COCO panoptic format (PNGs + JSON) under DIR")
    p.add_argument("--images", metavar="DIR|JSON",
                   help="run on images without ground truth (a folder, or an image-info JSON such as COCO's "
                   "image_info_test-dev2017.json) and save the predictions (needs --save-predictions); no scoring")
    p.add_argument("--image-dir", help="with --images JSON: the folder of its images (default DATA_ROOT/test2017)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                   help="override settings of the model config, mmengine's syntax (as mmdet's tools/test.py), e.g. "
                   "model.test_cfg.object_mask_thr=0.9; part of the record and of the resume-cache key")
    p.add_argument("--checkpoint", help="your own weights instead of the zoo's")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a checkpoint that weights_only loading refuses")
    add_run_options(p)
    p.add_argument("--postprocess", default="default", choices=["default", "maskwise", "argmax"],
                   help="panoptic post-processing for MaskFormer/Mask2Former: the model's own fusion (default), "
                   "Panoptic SegFormer's mask-wise merging, or pixel-wise argmax")
    p.add_argument("--fusion", default="panbench", choices=["panbench", "mmdet"],
                   help="how the model's own panoptic fusion runs: panbench's vectorized implementation of the "
                   "same rules, pixel-identical (default), or mmdet's per-segment loop")
    p.add_argument("--flops-images", type=non_negative_int, default=1, metavar="N",
                   help="GFLOPs per image averaged over the first N images, counted in a separate pass after the "
                   "timed inference (default 1; the Mask2Former paper uses 100; 0: not counted)")
    p.add_argument("--pp-alpha", type=float, default=0.25, help="maskwise: exponent of the class probability")
    p.add_argument("--pp-beta", type=float, default=1.0, help="maskwise: exponent of the mask quality")
    p.add_argument("--pp-conf", type=float, default=0.25, help="maskwise: confidence threshold t_cnf")
    p.add_argument("--pp-keep", type=float, default=0.6, help="maskwise: fraction of a mask that must remain")
    p.add_argument("--corruption", metavar="NAME", help="corrupt each image after loading (one of the 15 "
                   "COCO-C corruptions, docs/robustness.md); needs --severity")
    p.add_argument("--severity", type=int, metavar="S", help="the corruption's severity, 1 to 5")
    p.add_argument("--boundary", action="store_true",
                   help="also boundary PQ (Cheng et al. 2021; opt-in: a second pass over the pixels of each image)")
    p.add_argument("--no-ap", action="store_true",
                   help="PQ only: no COCO mask AP beside it (the models' instance outputs stay off; faster)")
    p.add_argument("--strict", action="store_true",
                   help="refuse ground-truth PNG ids that segments_info does not list (default: score them as "
                   "panopticapi does and say how many pixels)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.options import EvalOptions, check_models
    from panbench.evaluation.run import evaluate_model
    from panbench.pq.score import unlisted_note
    from panbench.reporting.text import format_comparison, format_record

    specs = models_and_dataset(args)
    if args.checkpoint and len(specs) > 1:
        raise PanbenchError("--checkpoint applies to one model; pass a single --model with it")
    if args.images and not args.save_predictions:
        raise PanbenchError("--images runs models without scoring them: pass --save-predictions DIR to keep "
                            "their predictions")
    if args.image_dir and not args.images:
        raise PanbenchError("--image-dir goes with --images FILE.json")
    check_writable(args.results, "--results")
    if args.save_predictions:
        check_writable(args.save_predictions, "--save-predictions")
    opts = EvalOptions.from_cli(args)
    if args.images:
        return _predict(args, specs, opts)
    ds = load_dataset(dataset_root(args), name=args.dataset, limit=args.limit, subset=args.subset)
    check_models(specs, ds.categories, opts)  # every model and option, before any model runs
    records = []
    for k, spec in enumerate(specs):
        args.models_done, args.models_left = [s.name for s in specs[:k]], [s.name for s in specs[k:]]  # for Ctrl-C
        rec = evaluate_model(spec, ds, opts)
        records.append(rec)
        if _rank() == 0:
            print(format_record(rec))
            for note in (unlisted_note(rec.to_json()), shared_note(rec)):
                if note:
                    print(note, file=sys.stderr)
    if len(records) > 1 and _rank() == 0:
        print(format_comparison(records, args.results))
    _finish_distributed()
    return 0


def shared_note(rec: RunRecord) -> str | None:
    """The line that says that the run's speed was measured while other panbench runs shared the machine."""
    ctx = rec.speed_context or {}
    if not ctx.get("overlapped"):
        return None
    runs = ctx.get("overlapped_runs") or []
    who = ", ".join(f"pid {o['pid']}" for o in runs[:3]) or "on another rank's machine"
    return (f"note: another panbench run overlapped this one ({who}): its speed shares the machine and is marked "
            "~ in tables; rerun alone for a speed to compare")


def models_and_dataset(args: argparse.Namespace) -> list:
    """The models of ``--model``; without ``--dataset``, the dataset they were trained on (set in
    ``args.dataset``): the demo models run on the demo set, zoo models on COCO.  Models of different
    datasets need ``--dataset``.  An explicit ``--dataset`` is kept (a model whose classes do not map
    to it is refused by the class check)."""
    from panbench.models.registry import resolve

    if args.dataset:
        return resolve(args.model, dataset=args.dataset)
    first = args.model.split(",")[0].strip()
    guess = "coco"
    if first != "all":
        spec = resolve(first)[0]
        guess = spec.dataset
    specs = resolve(args.model, dataset=guess)
    # a model the registry does not list (hf:DIR) says nothing of its dataset: it follows the others (its labels
    # are checked)
    found = sorted({s.dataset for s in specs if not s.unregistered}) or [guess]
    if len(found) > 1:
        raise PanbenchError(f"--model {args.model}: the models were trained on different datasets "
                            f"({', '.join(found)}); pass --dataset")
    args.dataset = found[0]
    return specs


def _predict(args: argparse.Namespace, specs: list, opts: Any) -> int:
    """``--images``: each model's predictions saved, nothing scored, no record."""
    from panbench.data.images import load_images
    from panbench.evaluation.options import check_models
    from panbench.evaluation.run import predict_images

    if args.subset:
        raise PanbenchError("--subset selects images of a dataset with ground truth; with --images, list the "
                            "images in the folder or the JSON")
    images = load_images(args.images, args.dataset, dataset_root(args), args.image_dir, limit=args.limit)
    check_models(specs, images.categories, opts)
    for spec in specs:
        path = predict_images(spec, images, opts)
        if _rank() == 0:
            print(f"{spec.name} [{opts.postprocess.label()}]: predictions of {len(images.samples)} images in "
                  f"{path} and {path.with_suffix('')}/ (not scored: no ground truth)")
    _finish_distributed()
    return 0


def _rank() -> int:
    """This process's rank under torchrun (0 when not distributed): only rank 0 prints."""
    return int(os.environ.get("RANK", "0"))


def _finish_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        from panbench.evaluation.distributed import barrier

        barrier()  # one line, not a traceback, when rank 0 stopped at the end (e.g. a predictions JSON unwritten)
        dist.destroy_process_group()
