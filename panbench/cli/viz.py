"""``panbench viz``: panoptic overlays of one or two models on one image, beside the ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.announce import announce
from panbench.cli.options import Common, check_file_writable, check_writable, dataset_root
from panbench.cli.running import models_and_dataset
from panbench.errors import PanbenchError
from panbench.models.registry import resolve
from panbench.reporting.figure_files import FORMATS, figure_output, figure_path
from panbench.reporting.figure_style import figure_width


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("viz", parents=[common.models, common.dataset, common.results, common.data_root,
                                       common.checkpoint, common.device, common.corruption, common.out,
                                       common.figures],
                       help="panoptic overlays of one or two models on one image",
                       description="The image with each model's panoptic overlay beside the ground truth; for two "
                       "models a map of where their labels disagree; for MaskFormer/Mask2Former the mask maps "
                       "of the top queries; --corruption shows and runs the models on the corrupted image. The "
                       "figure goes to --out (its format the suffix's, or --figure-format), default "
                       "RESULTS/viz/<image>_<models>[_<corruption>].png (.pdf, .svg with --figure-format).")
    p.add_argument("--image", type=int, required=True, help="image id")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.data.datasets import load_dataset

    announce("importing torch and the models' packages")
    from panbench.evaluation.loading import load_model
    from panbench.evaluation.runtime import pick_device
    from panbench.reporting.viz import draw_overlay, find_sample, predict
    from panbench.robustness.corruptions import corruption_of

    if len(models := [m.strip() for m in args.model.split(",")]) > 2:
        raise PanbenchError("--model: give one or two models")
    if args.checkpoint and len(args.checkpoint) != len(models):
        raise PanbenchError("--checkpoint: give one per --model, in the same order")
    _, args.dataset = models_and_dataset(args.model, args.dataset)  # default: the models' own (as eval's)
    corruption = corruption_of(args.corruption, args.severity)
    args.figure_format = out_format(args.out, args.figure_format)
    if args.out:
        check_file_writable(args.out, "--out")
    else:
        check_writable(Path(args.results) / "viz", "--results (or --out)")
    announce(f"reading the dataset at {dataset_root(args)}")
    ds = load_dataset(dataset_root(args), name=args.dataset)
    sample = find_sample(ds, args.image)
    device = pick_device(args.device)
    preds = []
    for k, name in enumerate(models):
        spec = resolve(name, dataset=args.dataset)[0]
        announce(f"loading {spec.name}")
        lm = load_model(spec, ds.categories, args.checkpoint[k] if args.checkpoint else None, args.trust_checkpoint,
                        device, dataset=ds.name)
        image = None
        if corruption is not None:  # corrupted as `eval --corruption` corrupts it, after the model's decoding
            from panbench.robustness.pipeline import CorruptedPipeline

            lm.pipeline = CorruptedPipeline(lm.family, corruption, timed=False, family=spec.framework)
            image = corruption.apply(lm.pipeline.load_rgb({"img_path": str(sample.image_path),
                                                           "img_id": sample.image_id}), sample.image_id)
        announce(f"running {spec.name} on image {args.image}")
        preds.append(predict(lm, spec.name, sample))
    tail = f"_{corruption.label}" if corruption else ""
    out = Path(args.out or Path(args.results) / "viz" / f"{args.image}_{'_vs_'.join(p.model for p in preds)}{tail}.png")
    with figure_output(args.figure_format, args.dpi, command="viz"), figure_width(args.figure_width):
        announce(f"drawing {figure_path(out)}")  # the file of the format written (a.pdf with --figure-format pdf)
        print(draw_overlay(sample, ds, preds, out, image, f" ({corruption.name}, severity {corruption.severity})"
                           if corruption else ""))
    return 0


def out_format(out: str | None, fmt: str | None) -> str | None:
    """``--figure-format``, else the suffix of ``--out`` where it is a figure format's (``--out a.pdf`` writes a
    PDF); refused where the two disagree or the suffix is not a figure format's."""
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    if suffix and suffix not in FORMATS:
        raise PanbenchError(f"--out {out}: .{suffix} is not a figure format viz writes; give it a "
                            f"{', '.join('.' + f for f in FORMATS)} name (nothing was run)")
    if fmt and suffix and suffix != fmt:
        raise PanbenchError(f"--out {out}: a .{suffix} file, but --figure-format {fmt}; give --out a .{fmt} name "
                            "or leave one of the two out (nothing was run)")
    return fmt or suffix or None
