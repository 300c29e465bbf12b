#!/usr/bin/env python
"""The originals' panoptic fusion (``query_fusion``, panbench/models/hf/original.py) of another checkout against this
one's, on the same random network outputs, interleaved: the seconds of each and the ratio, after checking that both
give the same id map and segments.  Sizes: COCO's (a 640x480 image at the 800-1333 input, 20 and 100 kept queries)
and Mapillary Vistas' (2048x1536 at 2048-2048, 150 kept: its threshold 0.0 keeps nearly every query).

    .venv/bin/python scripts/ab_fusion.py --other /tmp/base --repeats 3
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

CASES = [(20, (800, 1088), (800, 1067), (480, 640)), (100, (800, 1088), (800, 1067), (480, 640)),
         (150, (1536, 2048), (1536, 2048), (1536, 2048))]


def _module(root: Path, name: str):  # noqa: ANN202 (a module)
    spec = importlib.util.spec_from_file_location(name, root / "panbench" / "models" / "hf" / "original.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _inputs(kept: int, padded: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class logits of 200 queries (``kept`` of them confident, the others no-object) and their mask logits."""
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(200, 66, generator=g) * 4
    cls[:kept, 0] += 20
    cls[kept:, -1] += 30
    return cls, torch.randn(200, padded[0] // 4, padded[1] // 4, generator=g) * 3 - 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--other", type=Path, required=True, help="the other checkout (its panbench/ folder)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls of each side per case (the fastest counts)")
    args = ap.parse_args()
    other, this = _module(args.other, "other_original"), _module(Path(__file__).resolve().parents[1], "this_original")
    for kept, padded, size, target in CASES:
        cls, masks = _inputs(kept, padded)
        call = (cls, masks, padded, size, target, [True] * 37 + [False] * 28, 0.0, 0.8, True)
        a, b = other.query_fusion(*call), this.query_fusion(*call)
        if not (torch.equal(a.id_map, b.id_map) and a.info == b.info):
            print(f"kept {kept}, image {target}: the two give different segments; no ratio")
            return 1
        ta, tb = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            other.query_fusion(*call)
            ta.append(time.perf_counter() - t)
            t = time.perf_counter()
            this.query_fusion(*call)
            tb.append(time.perf_counter() - t)
        print(f"kept {kept:3d}, image {target[1]}x{target[0]}: other {min(ta):.3f} s, this {min(tb):.3f} s, "
              f"this/other {min(tb) / min(ta):.2f}x (same segments)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
