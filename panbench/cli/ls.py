"""``panbench ls``: the registered models, their published PQ, and where their weights are: ``cached``
(downloaded), ``download`` (fetched on first use), ``committed`` (the demo models' weights, in the
repository under ``checkpoints/``)."""

from __future__ import annotations

import argparse

from panbench.cli.options import Common
from panbench.errors import PanbenchError

HEAD = ("model", "architecture", "backbone", "dataset", "input", "pub. PQ", "PQ_th", "PQ_st", "FPS", "params",
        "GFLOPs", "weights", "aliases")


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("ls", parents=[common.only_dataset], help="list the models panbench knows",
                       description="Every registered model with "
                       "architecture, backbone, published PQ and whether its weights are cached, to be "
                       "downloaded or committed in the repository (the demo models).")
    p.add_argument("--params", action="store_true",
                   help="build each model (random weights) to count its parameters and its GFLOPs on one 640x480 "
                   "image (COCO val's most common size) through its test pipeline (COCO models: 800x1067 after "
                   "the resize), instead of reading the config's counts; slow (a forward pass per model)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.models.registry import all_models

    specs = all_models()
    if args.only_dataset:
        known = sorted({s.dataset for s in specs})
        specs = [s for s in specs if s.dataset == args.only_dataset]
        if not specs:
            raise PanbenchError(f"--only-dataset {args.only_dataset}: no registered model is for it; use one of: "
                                f"{', '.join(known)}")
    rows = []
    for s in specs:
        pub = [_num(s.published.get(k)) for k in ("PQ", "PQ_th", "PQ_st")]
        params, gflops = _sizes(s, args.params)
        rows.append((s.name, s.architecture, s.backbone, s.dataset, s.input_size or "-", *pub,
                     _num(s.published_fps, "{:.0f}"), params, gflops, s.family.entry().weights_state(s),
                     ", ".join(s.aliases)))
    widths = [max(len(str(r[i])) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _num(v: float | None, fmt: str = "{:.1f}") -> str:
    """A published number, ``-`` when none is published."""
    return fmt.format(v) if v is not None else "-"


def _sizes(spec, measure: bool) -> tuple[str, str]:
    """Parameters (the registry's count, else counted) and, with ``--params``, GFLOPs on one 640x480 image
    (:func:`panbench.evaluation.flops.random_gflops`) of the model with random weights; ``-`` when its family
    cannot build one without a download (a transformers model: its record has the count)."""
    if spec.params is not None and not measure:
        return f"{spec.params / 1e6:.1f}M", "-"
    model = spec.family.entry().random_model(spec, "cpu")
    if model is None:
        return "-", "-"
    from panbench.evaluation.flops import random_gflops
    from panbench.models.protocol import count_parameters

    params = f"{count_parameters(model.module) / 1e6:.1f}M"
    return params, f"{random_gflops(model)['gflops']:.1f}" if measure else "-"
