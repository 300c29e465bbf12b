"""``panbench viz``: panoptic overlays of one or two models on one image, beside the ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.cli.options import Common, dataset_root
from panbench.errors import PanbenchError


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("viz", parents=[common.results, common.data_root],
                       help="panoptic overlays of one or two models on one image",
                       description="The image with each model's panoptic overlay beside the ground truth; for two "
                       "models a map of where their labels disagree; for MaskFormer/Mask2Former the mask maps "
                       "of the top queries.")
    p.add_argument("--model", action="append", required=True, help="a model (repeat for a second one)")
    p.add_argument("--image", type=int, required=True, help="image id")
    p.add_argument("--dataset", help="coco, demo, cityscapes or ade20k; default: the dataset the models were "
                   "trained on (as `panbench eval`)")
    p.add_argument("--checkpoint", action="append", help="weights for each --model, in order")
    p.add_argument("--trust-checkpoint", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="output PNG (default RESULTS/viz/<image>_<models>.png)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.data.datasets import load_dataset
    from panbench.evaluation.device import pick_device
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve
    from panbench.reporting.viz import find_sample, predict, render

    if len(args.model) > 2:
        raise PanbenchError("--model: give one or two models")
    if args.checkpoint and len(args.checkpoint) != len(args.model):
        raise PanbenchError("--checkpoint: give one per --model, in the same order")
    if not args.dataset:  # the models' own dataset, as eval infers it (demo for the demo models)
        from panbench.cli.eval import models_and_dataset

        guess = argparse.Namespace(model=",".join(args.model), dataset=None)
        models_and_dataset(guess)
        args.dataset = guess.dataset
    ds = load_dataset(dataset_root(args), name=args.dataset)
    sample = find_sample(ds, args.image)
    device = pick_device(args.device)
    preds = []
    for k, name in enumerate(args.model):
        spec = resolve(name, dataset=args.dataset)[0]
        lm = load_model(spec, ds.categories, args.checkpoint[k] if args.checkpoint else None, args.trust_checkpoint,
                        device)
        preds.append(predict(lm, spec.name, sample, len(lm.names)))
    out = Path(args.out or Path(args.results) / "viz" / f"{args.image}_{'_vs_'.join(p.model for p in preds)}.png")
    print(render(sample, ds, preds, out))
    return 0
