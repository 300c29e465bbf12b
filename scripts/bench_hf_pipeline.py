#!/usr/bin/env python
"""The cost of ``--pipeline original`` against ``--pipeline transformers`` for a Mask2Former checkpoint, side by side
in one process (docs/benchmarks.md, "hf: pipelines"):

- post-processing per image at COCO's size (640x480): panbench's original path (``query_fusion``: the kept queries
  upsampled to the padded 800x1088 input, cropped, resized, fused), the same with every query upsampled as the
  original's ``MaskFormer.forward`` does, and transformers' ``post_process_panoptic_segmentation`` (masks at its
  384x384 input). The two pipelines' inputs differ as their pre-processing makes them: 100 queries, mask logits at a
  quarter of 800x1088 (original) or of 384x384 (transformers); the class logits are the same, biased so that about
  15 queries pass the 0.8 threshold, as a trained COCO model's do.
- with ``--forward``, the network's forward at 800x1088 against 384x384 (a Swin-T Mask2Former of the hub's
  size, random weights; 133 COCO classes).

    .venv/bin/python scripts/bench_hf_pipeline.py --rounds 20 [--forward]

Prints medians in ms and the ratios; the same device (CPU here) and thread count for every side."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from panbench.models.hf.original import image_masks, query_fusion  # noqa: E402

Q, K = 100, 133  # queries, COCO panoptic classes
TARGET = (480, 640)
ORIGINAL_IN, ORIGINAL_PAD = (800, 1067), (800, 1088)
STOCK_IN = (384, 384)


def outputs(pad: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class logits [Q, K+1] (15 queries confident) and mask logits at a quarter of ``pad``: each confident query
    covers the cell of the image nearest its centre (soft borders), the others are low everywhere."""
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(Q, K + 1, generator=g)
    cls[torch.arange(15), torch.randint(0, K, (15,), generator=g)] += 12.0  # confident queries
    h, w = pad[0] // 4, pad[1] // 4
    ch, cw = h // 8, w // 8  # the cells at an eighth of the masks' size, upsampled: soft borders at any size
    yy, xx = torch.meshgrid(torch.arange(ch, dtype=torch.float32), torch.arange(cw, dtype=torch.float32),
                            indexing="ij")
    centres = torch.rand(15, 2, generator=g) * torch.tensor([ch, cw])
    owner = ((yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2).argmin(0)
    cells = (owner[None] == torch.arange(15)[:, None, None]).float() * 12 - 6
    masks = torch.full((Q, h, w), -8.0) + torch.randn(Q, h, w, generator=g)
    masks[:15] = F.interpolate(cells[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return cls, masks


def median_ms(fn, rounds: int) -> float:
    return interleaved({"": fn}, rounds)[""]


def interleaved(fns: dict, rounds: int) -> dict[str, float]:
    """Each function's median wall time in ms, the functions called in turn each round (the order turned every
    round), after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def every_query(cls: torch.Tensor, masks: torch.Tensor, is_thing: list[bool]) -> None:
    """The original's order: every query upsampled to the padded input, then the kept ones fused."""
    image_masks(masks, ORIGINAL_PAD, ORIGINAL_IN, TARGET)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--forward", action="store_true", help="also time the network's forward at both input sizes")
    args = ap.parse_args(argv)
    from transformers import Mask2FormerImageProcessorPil

    is_thing = [k < 80 for k in range(K)]
    cls, masks = outputs(ORIGINAL_PAD)
    _, small = outputs((STOCK_IN[0], STOCK_IN[1]))
    proc = Mask2FormerImageProcessorPil(size={"height": 384, "width": 384})
    stuff = {k for k in range(K) if not is_thing[k]}
    ns = type("O", (), {"class_queries_logits": cls[None], "masks_queries_logits": small[None]})()
    fused = query_fusion(cls, masks, ORIGINAL_PAD, ORIGINAL_IN, TARGET, is_thing, 0.8, 0.8, own_mask=True)
    stock = proc.post_process_panoptic_segmentation(ns, threshold=0.8, overlap_mask_area_threshold=0.8,
                                                    label_ids_to_fuse=stuff, target_sizes=[TARGET])[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; image {TARGET[1]}x{TARGET[0]}; "
          f"segments: original {len(fused.info)}, transformers {len(stock['segments_info'])}")
    rows = interleaved({
        "original (kept queries upsampled)":
            lambda: query_fusion(cls, masks, ORIGINAL_PAD, ORIGINAL_IN, TARGET, is_thing, 0.8, 0.8, True),
        "original, every query upsampled (the original's order)": lambda: every_query(cls, masks, is_thing),
        "transformers post_process_panoptic_segmentation":
            lambda: proc.post_process_panoptic_segmentation(ns, threshold=0.8, overlap_mask_area_threshold=0.8,
                                                            label_ids_to_fuse=stuff, target_sizes=[TARGET]),
    }, args.rounds)
    for name, ms in rows.items():
        print(f"  {name:58s} {ms:8.1f} ms")
    kept, every, tf = rows.values()
    print(f"original / transformers: {kept / tf:.2f}x; every-query upsampling / kept-only: {every / kept:.1f}x "
          "(the upsampling alone, before any fusion)")
    if args.forward:
        forward(args.rounds)
    return 0


def forward(rounds: int) -> None:
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    swin = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                      out_features=["stage1", "stage2", "stage3", "stage4"])
    model = Mask2FormerForUniversalSegmentation(Mask2FormerConfig(backbone_config=swin, num_labels=K)).eval()
    inputs = {"800x1088 (original)": torch.randn(1, 3, *ORIGINAL_PAD),
              "384x384 (transformers)": torch.randn(1, 3, *STOCK_IN)}
    with torch.inference_mode():
        times = interleaved({k: (lambda x=x: model(pixel_values=x)) for k, x in inputs.items()}, max(3, rounds // 5))
    for name, ms in times.items():
        print(f"  forward {name:40s} {ms:8.1f} ms")
    a, b = times.values()
    print(f"forward at 800x1088 / at 384x384: {a / b:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
