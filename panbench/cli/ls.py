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
    p = sub.add_parser("ls", help="list the models panbench knows", description="Every registered model with "
                       "architecture, backbone, published PQ and whether its weights are cached, to be "
                       "downloaded or committed in the repository (the demo models).")
    p.add_argument("--dataset", help="only models for this dataset (coco, demo, ...)")
    p.add_argument("--params", action="store_true",
                   help="build each model (random weights) to count its parameters and its GFLOPs on one 640x480 "
                   "image (COCO val's most common size) through its test pipeline (COCO models: 800x1067 after "
                   "the resize), instead of reading the config's counts; slow (a forward pass per model)")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.models.checkpoints import cache_dir
    from panbench.models.registry import all_models

    specs = all_models()
    if args.dataset:
        known = sorted({s.dataset for s in specs})
        specs = [s for s in specs if s.dataset == args.dataset]
        if not specs:
            raise PanbenchError(f"--dataset {args.dataset}: no registered model is for it; use one of: "
                                f"{', '.join(known)}")
    rows = []
    for s in specs:
        pub = [_num(s.published.get(k)) for k in ("PQ", "PQ_th", "PQ_st")]
        if s.hf:  # a transformers model: counted only once downloaded (its record has the count)
            params, gflops = "-", "-"
        else:
            params = _params(s) if args.params or s.params is None else f"{s.params / 1e6:.1f}M"
            gflops = _gflops(s) if args.params else "-"
        rows.append((s.name, s.architecture, s.backbone, s.dataset, s.input_size or "-", *pub,
                     _num(s.published_fps, "{:.0f}"), params, gflops, weights_state(s, cache_dir()),
                     ", ".join(s.aliases)))
    widths = [max(len(str(r[i])) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _num(v: float | None, fmt: str = "{:.1f}") -> str:
    """A published number, ``-`` when none is published."""
    return fmt.format(v) if v is not None else "-"


def _params(spec) -> str:
    """Build the model and count its parameters (``--params``, or a config without a count)."""
    from panbench.models.mmdet import mm

    n = mm.count_parameters(mm.build_model(mm.load_config(spec.config), spec.config))
    return f"{n / 1e6:.1f}M"


def _gflops(spec) -> str:
    """GFLOPs of the model (random weights) on one 640x480 image (panbench.evaluation.flops.config_gflops)."""
    from panbench.evaluation.flops import config_gflops

    return f"{config_gflops(spec.config)['gflops']:.1f}"


def weights_state(spec, cache) -> str:
    """``cached``, ``download`` or ``committed`` (a model without a URL whose weights are in the repository)."""
    from panbench.resources import committed_checkpoints

    if spec.hf:
        return "cached" if _hf_cached(spec) else "download"
    if spec.checkpoint_filename:
        return "cached" if (cache / spec.checkpoint_filename).exists() else "download"
    if committed_checkpoints(spec.name, spec.dataset):
        return "committed"
    return "none"


def _hf_cached(spec) -> bool:
    """A transformers model is in huggingface_hub's cache (or is a local directory)."""
    from pathlib import Path

    if Path(spec.hf).expanduser().is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(spec.hf, "config.json"), str)
