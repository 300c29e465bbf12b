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
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of a checkpoint that weights_only loading refuses (as eval's)")
    p.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (default: a GPU when there is one)")
    p.add_argument("--corruption", metavar="NAME", help="show and run the models on the corrupted image "
                   "(docs/robustness.md); needs --severity")
    p.add_argument("--severity", type=int, metavar="S", help="the corruption's severity, 1 to 5")
    p.add_argument("--out", help="output PNG (default RESULTS/viz/<image>_<models>[_<corruption>].png)")
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
    from panbench.robustness.corruptions import corruption_of

    corruption = corruption_of(args.corruption, args.severity)
    ds = load_dataset(dataset_root(args), name=args.dataset)
    sample = find_sample(ds, args.image)
    device = pick_device(args.device)
    preds = []
    for k, name in enumerate(args.model):
        spec = resolve(name, dataset=args.dataset)[0]
        lm = load_model(spec, ds.categories, args.checkpoint[k] if args.checkpoint else None, args.trust_checkpoint,
                        device)
        image = None
        if corruption is not None:  # corrupted as `eval --corruption` corrupts it, after the model's decoding
            from panbench.robustness.pipeline import CorruptedPipeline

            lm.pipeline = CorruptedPipeline(lm.pipeline, corruption, timed=False)
            image = corruption.apply(lm.pipeline.load_rgb({"img_path": str(sample.image_path),
                                                           "img_id": sample.image_id}), sample.image_id)
        preds.append(predict(lm, spec.name, sample))
    tail = f"_{corruption.label}" if corruption else ""
    out = Path(args.out or Path(args.results) / "viz" / f"{args.image}_{'_vs_'.join(p.model for p in preds)}{tail}.png")
    print(render(sample, ds, preds, out, image, f" ({corruption.name}, severity {corruption.severity})"
                 if corruption else ""))
    return 0
