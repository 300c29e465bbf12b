#!/usr/bin/env python
"""panbench's CUDA paths against its CPU paths, on one machine in one run: the ops and the Python API's metrics.

    python scripts/gpu_check.py [--device cuda] [--repeat 20]

1. ops: panbench's ``nms`` and ``roi_align_forward`` (the stand-in ``mmcv._ext``) on CUDA tensors (torchvision's
   kernels) against panbench's C port of mmcv's CPU ops: clustered boxes with continuous and with tied scores, 3
   IoU thresholds; RoIAlign at PanopticFPN's shapes.  mmcv sorts the scores on their own device, and a GPU's sort
   orders tied scores otherwise than the CPU's, so the kept indices on the GPU are checked against mmcv's
   suppression loop visiting the boxes in the GPU's sort order (mmcv's CUDA nms visits them so), and where the
   CPU's order keeps other boxes that is printed beside.  Prints whether the kept indices are identical,
   RoIAlign's largest difference, and the median time of ``--repeat`` calls per side (CUDA synchronised).
   mmcv's deformable attention runs mmcv's own PyTorch function on both devices; its largest difference is printed
   too.
2. metrics: ``panbench.PanopticQuality`` and the torchmetrics metric
   (``panbench.integrations.torchmetrics.PanbenchPanopticQuality``) fed the same id maps as CUDA tensors and as
   CPU tensors: every PQ/SQ/RQ must be equal (the scoring is integer sums on the CPU either way); the median
   update time per image is printed.

3. train: two training iterations of each demo model (mmengine's Runner) on the device: on CUDA mmdet calls the
   mmcv ops of a training step (focal loss, the backward passes of RoIAlign and deformable attention), which
   panbench's ops serve on mmcv-lite; the loss must be finite.

Exit status 1 when a check fails.  With ``--device cpu`` both sides run on the CPU (a dry run of the script).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

FAILED: list[str] = []


def check(name: str, ok: bool, detail: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        FAILED.append(name)


def timed(fn: Callable[[], Any], device: str, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call, the device synchronised around each."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def boxes(seed: int, n: int, ties: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` boxes in 40 clusters (a detector's overlapping proposals) on an 800x1333 image; scores continuous
    or from 20 levels (many ties)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(40, 2, generator=g) * torch.tensor([1333.0, 800.0])
    c = centers[torch.randint(0, 40, (n,), generator=g)] + torch.randn(n, 2, generator=g) * 12
    wh = 30 + torch.rand(n, 2, generator=g) * 200
    b = torch.cat([c - wh / 2, c + wh / 2], 1).float()
    s = torch.rand(n, generator=g)
    if ties:
        s = torch.floor(s * 20) / 20
    return b, s.float()


def suppress(b: torch.Tensor, order: torch.Tensor, thr: float) -> torch.Tensor:
    """mmcv's ``nms_cpu`` suppression loop (panbench's C port) over CPU boxes ``b`` visited in ``order``."""
    from panbench.ops import kernels

    select = np.ones(b.shape[0], np.uint8)
    kernels._cpu.nms(b.contiguous().numpy(), order.numpy(), select, float(thr), 0)
    return order[torch.from_numpy(select.view(np.bool_))]


def ops(device: str, repeat: int) -> None:
    from panbench.ops import install, kernels, kernels_path

    install()
    print(f"ops: {kernels_path('cuda' if device.startswith('cuda') else 'cpu')} against {kernels_path('cpu')}")
    for n in (1000, 4000):
        for ties in (False, True):
            b, s = boxes(n + ties, n, ties)
            bd, sd = b.to(device), s.to(device)
            # mmcv's nms sorts the scores where they are (scores.sort(0, descending=True)), so its CPU and CUDA kernels
            # visit tied scores in the order of each device's sort; the reference for the device is mmcv's CPU
            # suppression loop (panbench's C) visiting the boxes in the device's sort order
            order_dev = sd.sort(0, descending=True)[1].cpu()
            for thr in (0.3, 0.5, 0.7):
                keep_dev = kernels.nms(bd, sd, thr, 0).cpu()
                keep_ref = suppress(b, order_dev, thr)
                keep_cpu = kernels.nms(b, s, thr, 0)
                same = torch.equal(keep_dev, keep_ref)
                detail = f"{len(keep_ref)} kept of {n}" + ("" if same else f", {len(keep_dev)} on {device}")
                if not torch.equal(keep_cpu, keep_ref):
                    moved = int((order_dev != s.sort(0, descending=True)[1]).sum())
                    detail += (f"; the CPU's sort orders {moved} tied boxes otherwise and keeps "
                               f"{len(set(keep_cpu.tolist()) ^ set(keep_ref.tolist()))} other boxes")
                if thr == 0.5:
                    t_dev = timed(lambda a=(bd, sd, thr, 0): kernels.nms(*a), device, repeat)
                    t_cpu = timed(lambda a=(b, s, thr, 0): kernels.nms(*a), "cpu", max(2, repeat // 8))
                    detail += f"; {t_dev * 1e3:.3f} ms on {device}, {t_cpu * 1e3:.3f} ms CPU C"
                check(f"nms n={n} {'tied' if ties else 'continuous'} iou={thr}: mmcv's loop in the device's order",
                      same, detail)
    g = torch.Generator().manual_seed(1)
    # FPN levels P2-P4 of an 800x1344 input (2 images), 512 RoIs each of the sizes mmdet's mapper sends there
    for level, (h, w, scale, lo, hi) in enumerate([(200, 336, 0.25, 8, 112), (100, 168, 0.125, 112, 224),
                                                   (50, 84, 0.0625, 224, 448)]):
        feat = torch.randn(2, 256, h, w, generator=g)
        n = 512
        xy = torch.rand(n, 2, generator=g) * torch.tensor([1300.0, 780.0])
        wh = lo + torch.rand(n, 2, generator=g) * (hi - lo)
        rois = torch.cat([torch.randint(0, 2, (n, 1), generator=g).float(), xy, xy + wh], 1)
        out = {}
        times = {}
        for dev in (device, "cpu"):
            f, r = feat.to(dev), rois.to(dev)
            o = torch.empty(n, 256, 7, 7, device=dev)

            def call(f: torch.Tensor = f, r: torch.Tensor = r, o: torch.Tensor = o, sc: float = scale) -> None:
                kernels.roi_align_forward(f, r, o, o, o, 7, 7, sc, 0, 1, True)

            call()
            out[dev] = o.cpu()
            times[dev] = timed(call, dev, repeat if dev != "cpu" else max(2, repeat // 8))
        diff = float((out[device] - out["cpu"]).abs().max())
        check(f"roi_align P{level + 2} ({h}x{w}, {n} RoIs of {lo}-{hi} px, sampling 0, aligned): within 1e-4",
              diff <= 1e-4, f"max |diff| {diff:.3g}; {times[device] * 1e3:.3f} ms on {device}, "
              f"{times['cpu'] * 1e3:.3f} ms CPU C")
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

    shapes = torch.tensor([[100, 168], [50, 84], [25, 42]])
    nv = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = torch.randn(1, nv, 8, 32, generator=g)
    loc = torch.rand(1, 2000, 8, 3, 4, 2, generator=g)
    att = torch.rand(1, 2000, 8, 3, 4, generator=g).flatten(-2).softmax(-1).view(1, 2000, 8, 3, 4)
    res = {}
    for dev in (device, "cpu"):
        args = [t.to(dev) for t in (value, shapes, loc, att)]
        res[dev] = multi_scale_deformable_attn_pytorch(*args).cpu()
        times[dev] = timed(lambda args=args: multi_scale_deformable_attn_pytorch(*args), dev,
                           repeat if dev != "cpu" else max(2, repeat // 8))
    diff = float((res[device] - res["cpu"]).abs().max())
    check("ms_deform_attn (mmcv's PyTorch function, Mask2Former's shapes): within 1e-4", diff <= 1e-4,
          f"max |diff| {diff:.3g}; {times[device] * 1e3:.3f} ms on {device}, {times['cpu'] * 1e3:.3f} ms CPU")
    # the training step's ops: each output on the device against the CPU's
    grad_out = torch.randn(res["cpu"].shape, generator=g)
    grads = {dev: [t.cpu() for t in kernels.ms_deform_attn_grads(*(t.to(dev) for t in (value, shapes, loc, att)),
                                                                  grad_out.to(dev))] for dev in (device, "cpu")}
    diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(grads[device], grads["cpu"]))
    check("ms_deform_attn backward (value, locations, weights): within 1e-4 of the largest", diff <= 1e-4,
          f"max relative |diff| {diff:.3g}")
    logits = torch.randn(4000, 80, generator=g) * 4
    target = torch.randint(0, 81, (4000,), generator=g)
    for derivative in (False, True):
        outs = {dev: kernels.sigmoid_focal_loss(logits.to(dev), target.to(dev), torch.empty(0, device=dev), 2.0, 0.25,
                                                derivative).cpu() for dev in (device, "cpu")}
        diff, top = float((outs[device] - outs["cpu"]).abs().max()), float(outs["cpu"].abs().max())
        check(f"sigmoid_focal_loss {'backward' if derivative else 'forward'} (4000 x 80): within 1e-5 of the largest",
              diff <= 1e-5 * top, f"max |diff| {diff:.3g}, largest |value| {top:.3g}")
    feat_shape = (2, 64, 100, 168)
    rois = torch.cat([torch.randint(0, 2, (64, 1), generator=g).float(), xy[:64], xy[:64] + wh[:64]], 1)
    go = torch.randn(64, 64, 7, 7, generator=g)
    gin = {dev: kernels.roi_align_grad(go.to(dev), rois.to(dev), feat_shape, 7, 7, 0.125, 0, True).cpu()
           for dev in (device, "cpu")}
    diff = float((gin[device] - gin["cpu"]).abs().max() / gin["cpu"].abs().max())
    check("roi_align backward (P3, 64 channels, 64 RoIs): within 1e-4 of the largest", diff <= 1e-4,
          f"max relative |diff| {diff:.3g} (CUDA: torchvision's backward kernel; CPU: autograd through the PyTorch "
          "RoIAlign)")


def id_maps(seed: int, h: int = 480, w: int = 640) -> tuple[torch.Tensor, list[dict[str, Any]], torch.Tensor,
                                                          list[dict[str, Any]]]:
    """A ground-truth id map of rectangles over stuff and its prediction: the rectangles shifted, one dropped,
    one added (TP, FP and FN)."""
    rng = np.random.default_rng(seed)
    gt = np.full((h, w), 1000, np.int64)
    gt[: h // 2] = 1001
    gseg = [{"id": 1000, "category_id": 3, "iscrowd": 0}, {"id": 1001, "category_id": 4, "iscrowd": 0}]
    pred = gt.copy()
    pseg = [dict(s) for s in gseg]
    for k in range(6):
        y, x = rng.integers(0, h - 80), rng.integers(0, w - 80)
        hh, ww = rng.integers(20, 80, 2)
        gt[y:y + hh, x:x + ww] = k + 1
        gseg.append({"id": k + 1, "category_id": 1 + k % 2, "iscrowd": 0})
        if k == 5:
            continue
        dy, dx = rng.integers(-8, 9, 2)
        pred[max(0, y + dy):y + dy + hh, max(0, x + dx):x + dx + ww] = k + 1
        pseg.append({"id": k + 1, "category_id": 1 + k % 2, "iscrowd": 0})
    pred[0:30, 0:30] = 99
    pseg.append({"id": 99, "category_id": 1, "iscrowd": 0})
    return torch.from_numpy(pred), pseg, torch.from_numpy(gt), gseg


CATEGORIES = [{"id": 1, "name": "a", "isthing": 1}, {"id": 2, "name": "b", "isthing": 1},
              {"id": 3, "name": "c", "isthing": 0}, {"id": 4, "name": "d", "isthing": 0}]


def metrics(device: str, repeat: int) -> None:
    from panbench import PanopticQuality
    from panbench.integrations.torchmetrics import PanbenchPanopticQuality

    print(f"metrics: CUDA tensors ({device}) against CPU tensors")
    data = [id_maps(seed) for seed in range(16)]
    results, times = {}, {}
    for dev in (device, "cpu"):
        metric = PanopticQuality(CATEGORIES)
        moved = [(p.to(dev), ps, g.to(dev), gs) for p, ps, g, gs in data]

        def feed(metric: PanopticQuality = metric, moved: list[Any] = moved) -> None:
            metric.reset()
            for i, (p, ps, g, gs) in enumerate(moved):
                metric.update(p, ps, g, gs, image_id=i)

        times[dev] = timed(feed, dev, max(2, repeat // 8)) / len(data)
        r = metric.compute()
        results[dev] = (r.all.pq, r.all.sq, r.all.rq, r.things.pq, r.stuff.pq)
    check("PanopticQuality: equal results", results[device] == results["cpu"],
          f"PQ {results['cpu'][0]:.6f}; update {times[device] * 1e3:.3f} ms/img from {device}, "
          f"{times['cpu'] * 1e3:.3f} ms/img from CPU")

    def tm_input(p: torch.Tensor, ps: list[dict[str, Any]]) -> torch.Tensor:
        cat = {s["id"]: s["category_id"] for s in ps}
        ids = p.numpy()
        c = np.zeros_like(ids)
        inst = np.zeros_like(ids)
        for sid, cid in cat.items():
            c[ids == sid] = cid
            inst[ids == sid] = sid if cid in (1, 2) else 0
        return torch.from_numpy(np.stack([c, inst], -1))[None]

    pairs = [(tm_input(p, ps), tm_input(g, gs)) for p, ps, g, gs in data]
    for dev in (device, "cpu"):
        tm = PanbenchPanopticQuality([1, 2], [3, 4]).to(dev)
        moved = [(p.to(dev), t.to(dev)) for p, t in pairs]

        def feed_tm(tm: PanbenchPanopticQuality = tm, moved: list[Any] = moved) -> None:
            tm.reset()
            for p, t in moved:
                tm.update(p, t)

        times[dev] = timed(feed_tm, dev, max(2, repeat // 8)) / len(pairs)
        results[dev] = float(tm.compute())
    check("torchmetrics PanbenchPanopticQuality: equal PQ", results[device] == results["cpu"],
          f"PQ {results['cpu']:.6f}; update {times[device] * 1e3:.3f} ms/img on {device}, "
          f"{times['cpu'] * 1e3:.3f} ms/img on CPU")


def train(device: str, repeat: int) -> None:
    """Two training iterations of each demo architecture (batch 2, mmengine's Runner, the demo configs), on
    ``device``: on CUDA, mmdet reaches mmcv's focal loss (MaskFormer) and the backward passes of deformable
    attention (Mask2Former) and RoIAlign (PanopticFPN), which panbench's ops serve on mmcv-lite."""
    import logging
    import math
    import tempfile

    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    from panbench.ops import install
    from panbench.package import REPO_ROOT

    install()
    demo = REPO_ROOT / "data" / "demo"
    if not (demo / "annotations" / "panoptic_train2017.json").exists():
        raise RuntimeError(f"no demo set at {demo}: run `panbench data demo` first")
    print(f"train: 2 iterations of each demo model on {device}")
    # one folder for the three runs: mmengine's visualizer, made by the first runner, goes on writing into its own
    with tempfile.TemporaryDirectory() as work:
        for model in ("mask2former", "maskformer", "panoptic-fpn"):
            cfg = Config.fromfile(str(REPO_ROOT / "configs" / "demo" / f"{model}.py"))
            cfg.train_dataloader.dataset.data_root = str(demo) + "/"
            cfg.train_dataloader.batch_size, cfg.train_dataloader.num_workers = 2, 0
            cfg.train_dataloader.persistent_workers = False
            cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=2, val_interval=1000)
            cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
            cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
            cfg.default_hooks.checkpoint = dict(type="CheckpointHook", by_epoch=False, interval=1000)
            cfg.work_dir, cfg.log_level = f"{work}/{model}", "WARNING"
            MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
            runner = Runner.from_cfg(cfg)
            t0 = time.perf_counter()
            runner.train()
            loss = float(runner.message_hub.get_scalar("train/loss").current())
            where = next(runner.model.parameters()).device
            check(f"train {model}: 2 iterations", math.isfinite(loss) and where.type == device.split(":")[0],
                  f"loss {loss:.4f} on {where}, {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--parts", default="ops,metrics,train", help="comma-separated: ops, metrics, train (default all)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible to torch; --device cpu runs the script on the CPU")
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(args.device)})" if args.device.startswith("cuda") else ""))
    parts = {"ops": ops, "metrics": metrics, "train": train}
    for part in (parts[p] for p in args.parts.split(",")):
        try:
            part(args.device, args.repeat)
        except Exception as e:  # one part failing must not hide the other
            check(part.__name__, False, f"{type(e).__name__}: {e}")
    print(f"{len(FAILED)} check(s) failed: {', '.join(FAILED)}" if FAILED else "all checks passed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
