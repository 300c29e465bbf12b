"""``panbench ls``: the registered models, their published PQ, and whether their checkpoint is cached."""

from __future__ import annotations

import argparse

from panbench.cli.options import Common

HEAD = ("model", "architecture", "backbone", "dataset", "pub. PQ", "params", "cached", "aliases")


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("ls", help="list the models panbench knows", description="Every registered model with "
                       "architecture, backbone, published PQ and whether its checkpoint is cached.")
    p.add_argument("--dataset", help="only models for this dataset (coco, demo, ...)")
    p.add_argument("--params", action="store_true",
                   help="build each model to count its parameters instead of reading the config's count")
    return p


def run(args: argparse.Namespace) -> int:
    from panbench.models.checkpoints import cache_dir
    from panbench.models.registry import all_models

    specs = all_models()
    if args.dataset:
        specs = [s for s in specs if s.dataset == args.dataset]
    rows = []
    for s in specs:
        cached = bool(s.checkpoint_filename and (cache_dir() / s.checkpoint_filename).exists()) or _hf_cached(s)
        pq = s.published.get("PQ") if s.published else None
        if s.hf:  # a transformers model: counted only once downloaded (its record has the count)
            params = "-"
        else:
            params = _params(s) if args.params or s.params is None else f"{s.params / 1e6:.1f}M"
        rows.append((s.name, s.architecture, s.backbone, s.dataset, f"{pq:.1f}" if pq is not None else "-",
                     params, "yes" if cached else "no", ", ".join(s.aliases)))
    widths = [max(len(str(r[i])) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _params(spec) -> str:
    """Build the model and count its parameters (``--params``, or a config without a count)."""
    from panbench.models import mm

    n = mm.count_parameters(mm.build_model(mm.load_config(spec.config), spec.config))
    return f"{n / 1e6:.1f}M"


def _hf_cached(spec) -> bool:
    """A transformers model is in huggingface_hub's cache (or is a local directory)."""
    if not spec.hf:
        return False
    from pathlib import Path

    if Path(spec.hf).expanduser().is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(spec.hf, "config.json"), str)
