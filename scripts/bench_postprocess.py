#!/usr/bin/env python
"""Post-processing at COCO's size, per stage, against the floor of reading the mask logits once.

The zoo's R-50 architectures (PanopticFPN, MaskFormer, Mask2Former; their configs as the zoo has them, random
weights drawn from seed 0: ``random_model``) run on the images of the real COCO sample (640x427 and 640x360,
resized to 800x1067 and 800x1199 by the configs' pipelines).  Random weights score every query near 1/134, below
the release's ``object_mask_thr`` 0.8, so the MaskFormer family keeps every query here
(``object_mask_thr = iou_thr = 0``: 100 segments compete for each pixel, more than a trained model keeps); the
instance output (AP) is on.  Each image's forward runs once under the eval loop's deferral, then each stage of
its post-processing is timed ``--repeat`` times (median), with torch's threads as the forward has them (what the
eval loop's post-processing thread uses):

  fusion+inst   panbench's fusion with its instance output (``finish``: the panoptic map, the top-100
                detections' scores, masks and boxes, each kept query's mask upsampled once)
  segments      ``to_segments`` (the panoptic map to an id map and segments_info)
  instances     ``to_instances`` (the detections as COCO RLEs: on a GPU the places where the masks change are
                found there and only they copied; on the CPU counted in C where the masks lie)
  via host      for comparison, not in ``post``: the same RLEs from the masks copied to the host whole first, then
                counted in C (what a GPU run did before the device encoding; equal strings checked)
  gt RLE        AP's ground truth: the image's thing segments as RLEs (``gt_annotations``, in C)
  post          the sum: what the post-processing thread does per image beside PQ's own scoring
  floor         reading the mask logits the fusion head receives once (``mask_pred.sum()`` over the Q maps of
                the resized image, float32): no post-processing can read less
  forward       the network (for scale), timed once after one untimed pass
  grid          a grid of four settings of the architecture's own thresholds (``finish_grid``, then each setting's
                ``to_segments`` and ``to_instances``; docs/eval.md, "Grids"): MaskFormer's and Mask2Former's
                ``object_mask_thr`` 0, 0.004, 0.006, 0.008 (random weights score near 1/134 = 0.0075: 100 queries
                down to a few), PanopticFPN's ``mask_overlap`` 0.3, 0.5 by ``stuff_area_limit`` 0, 4096
  +/setting     what each setting after the first adds, as a share of the first setting run alone the same
                way (its fusion, segments and instances; the target is at most 25%); the setting alone, the grid
                and the rules are timed in turn within each round, so that the load of the moment falls on each
  rules         the same for ``postprocess=default,maskwise,argmax`` (``object_mask_thr`` 0: the model's own
                fusion of every query, then mask-wise merging and pixel-wise argmax of the same outputs)

    .venv/bin/python scripts/bench_postprocess.py [--models mask2former,maskformer,panoptic-fpn] [--repeat 5]
        [--data-root ../shared/data/coco-panoptic-val2017-sample] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_ROOT = ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample"


SYNC = [lambda: None]  # torch.cuda.synchronize with --device cuda: kernels are asynchronous


def clock(fn, repeat: int) -> tuple[float, object]:
    """Median milliseconds of ``fn()`` over ``repeat`` calls (the device synchronised), and its last result."""
    times, out = [], None
    for _ in range(repeat):
        SYNC[0]()
        t = time.perf_counter()
        out = fn()
        SYNC[0]()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mask2former,maskformer,panoptic-fpn")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data-root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the model and the fusion run")
    a = ap.parse_args()

    import torch

    if a.device.startswith("cuda"):
        SYNC[0] = torch.cuda.synchronize

    from panbench.data.datasets import load_dataset
    from panbench.models.families import open_model
    from panbench.models.postprocess import PostProcess
    from panbench.models.registry import resolve

    ds = load_dataset(a.data_root, name="coco")
    cats = [int(c) for c in ds.categories.ids]
    things = [int(c) for c, t in zip(ds.categories.ids, ds.categories.isthing) if t]

    cuda = a.device.startswith("cuda")
    where = torch.cuda.get_device_name(a.device) if cuda else f"{torch.get_num_threads()} threads"
    print(f"{len(ds.samples)} COCO images ({a.data_root}), torch {torch.__version__} on {a.device} ({where}); "
          f"ms per image, median of {a.repeat}")
    print(f"{'model':20} {'image':>18} {'queries':>7} {'dets':>5} {'fusion+inst':>11} {'segments':>8} "
          f"{'instances':>9} {'via host':>8} {'gt RLE':>7} {'post':>7} {'floor':>7} {'post/floor':>10} {'forward':>8} "
          f"{'grid':>7} {'+/setting':>9} {'rules':>7} {'+/rule':>7}")
    for name in a.models.split(","):
        spec = resolve(name)[0]
        fam = open_model(spec).random_model(a.device)
        fam.label2cat = cats
        head = fam.detector.panoptic_fusion_head
        if type(head).__name__ == "MaskFormerFusionHead":
            head.test_cfg.update(instance_on=True, object_mask_thr=0.0, iou_thr=0.0)
            fam.instance_source = "mmdet instance_on"
        else:
            fam.instance_source = "mmdet roi_head"
        assert fam.configure(PostProcess(), "panbench") == "panbench"
        for s in ds.samples:
            print(image_row(fam, spec.name, s, things, a.repeat, a.device), flush=True)


def image_row(fam, name: str, s, things: list[int], repeat: int, device: str) -> str:
    """One image's line: its forward once (the fusion deferred), then each post-processing stage timed."""
    import torch
    from mmdet.structures import DetDataSample

    from panbench.analysis.ap import gt_annotations
    from panbench.models.mmdet.family import PENDING, MaskFormerPredict
    from panbench.pq.png import read_ids

    data = fam.pipeline({"img_path": str(s.image_path), "img_id": s.image_id})
    gt = read_ids(s.gt_png, "ground truth")
    with torch.inference_mode():
        with fam.deferred():
            (out,) = fam.forward([data], device, None)  # once untimed: a GPU's first pass loads its kernels
        SYNC[0]()
        t = time.perf_counter()
        with fam.deferred():
            (out,) = fam.forward([data], device, None)
        SYNC[0]()
        forward = 1000 * (time.perf_counter() - t)
        job = out.pred_panoptic_seg.metainfo[PENDING]
        fused, _ = clock(job, repeat)
        held = DetDataSample(metainfo=out.metainfo)  # the deferred output, for the grid
        held.pred_panoptic_seg = out.pred_panoptic_seg
        if "pred_instances" in out:
            held.pred_instances = out.pred_instances
        fam.finish([out])
        seg_ms, _ = clock(lambda: fam.to_segments(out), repeat)
        ins_ms, inst = clock(lambda: fam.to_instances(out), repeat)
        host_ms, via_host = clock(lambda: host_instances(out, fam.label2cat), repeat)
        assert inst is None or inst.rles == via_host.rles, "the device's RLEs differ from the host's"
        gt_ms, _ = clock(lambda: gt_annotations(1, gt, s.gt_ann["segments_info"], things), repeat)
        post = fused + seg_ms + ins_ms + gt_ms
        if isinstance(getattr(job, "func", None) and job.func.__self__, MaskFormerPredict):
            mask_pred = job.args[1]  # MaskFormerPredict.results(mask_cls, mask_pred, size)
            floor, _ = clock(lambda: float(mask_pred.sum()), repeat)
            q, ratio = f"{mask_pred.shape[0]}", f"{post / floor:9.2f}x"
        else:
            floor, q, ratio = float("nan"), "-", "-"
        kind = fam.grid_kind()
        grid = grid_settings(kind)
        runs = [grid[:1], grid] + ([grid_settings("rules")] if kind == "maskformer" else [])
        # the first setting alone, the grid and the rules, timed in turn in each round: load that comes and goes
        # falls on each alike
        one, grid_ms, *rest = interleaved([lambda g=g: run_grid(fam, held, g) for g in runs], repeat)
        if rest:
            rules, per_rule = f"{rest[0]:7.1f}", f"{(rest[0] - one) / 2 / one:7.0%}"
        else:
            rules, per_rule = f"{'-':>7}", f"{'-':>7}"
    h, w = fam.input_hw(data)
    return (f"{name:20} {f'{s.width}x{s.height}->{w}x{h}':>18} {q:>7} {len(inst):5d} {fused:11.1f} {seg_ms:8.1f} "
            f"{ins_ms:9.1f} {host_ms:8.1f} {gt_ms:7.1f} {post:7.1f} {floor:7.1f} {ratio:>10} {forward:8.0f} "
            f"{grid_ms:7.1f} {(grid_ms - one) / 3 / one:9.0%} {rules} {per_rule}")


def interleaved(fns, repeat: int) -> list[float]:
    """Median milliseconds of each of ``fns``, called in turn ``repeat`` times (the device synchronised)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            SYNC[0]()
            t = time.perf_counter()
            fn()
            SYNC[0]()
            times[k].append(1000 * (time.perf_counter() - t))
    return [statistics.median(t) for t in times]


def grid_settings(kind: str):
    """The four settings of the ``grid`` column (``rules``: the three merging rules)."""
    from panbench.models.grid import expand, parse_grid
    from panbench.models.postprocess import PostProcess

    grid = {"maskformer": ["object_mask_thr=0,0.004,0.006,0.008"],
            "heuristic": ["mask_overlap=0.3,0.5", "stuff_area_limit=0,4096"],
            "rules": ["object_mask_thr=0", "postprocess=default,maskwise,argmax"]}[kind]
    return expand(parse_grid(grid), "maskformer" if kind == "rules" else kind, "bench", None, PostProcess())


def run_grid(fam, out, settings) -> None:
    """What the eval loop's post-processing thread does with a forward's output under a grid: each setting's
    outputs, converted."""
    for (one,) in fam.finish_grid([out], settings):
        fam.to_segments(one)
        fam.to_instances(one)


def host_instances(out, label2cat):
    """The instances with their masks copied to the host whole, then encoded there."""
    from panbench.analysis.ap import from_arrays

    p = out.pred_instances
    return from_arrays(p.masks.cpu(), p.scores, p.labels, label2cat)


if __name__ == "__main__":
    main()
