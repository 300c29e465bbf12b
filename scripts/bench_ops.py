"""panbench's CPU ops (``panbench.ops``) against compiled mmcv 2.1.0's, side by side in one run.

    .venv/bin/python scripts/bench_ops.py [--images 20] [--rounds 3] [--repeat 5] [--torch-path]

Needs compiled mmcv (the opt-in: PANBENCH_MMCV=compiled make setup, docs/setup.md); without it, it says so
and exits 2.  Three parts, all on the CPU:

1. The calls: the demo PanopticFPN runs on the first ``--images`` demo val images with compiled mmcv while
   every ``nms`` and ``roi_align_forward`` call it makes is recorded (its real inputs: PanopticFPN's RPN,
   bbox head, RoI extractors).
2. The ops: each recorded call replayed with compiled mmcv's function and with panbench's (the C extension;
   ``--torch-path`` adds the PyTorch fallback), the best of ``--repeat`` runs each, same inputs; the outputs
   are checked to be bit-identical.  Prints the total time per op and the ratio.
3. The model: the demo PanopticFPN's ``test_step`` per image (data pipeline excluded) in two subprocesses,
   one per backend (``PANBENCH_OPS=mmcv`` / ``panbench``), alternated for ``--rounds`` rounds; prints the
   median time per image and the ratio (target: panbench within 1.05x of compiled mmcv).

Both sides do the same work on the same inputs, with the same number of torch threads (``--threads``,
default 1: steadier figures on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "demo-panoptic-fpn"
FIX = "install compiled mmcv (PANBENCH_MMCV=compiled make setup, docs/setup.md)"


def demo_model(n_images: int) -> tuple[Any, list[Any]]:
    """The demo PanopticFPN (its committed weights) and the first ``n_images`` demo val images, through its
    test pipeline."""
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.evaluation.loading import load_model
    from panbench.models.registry import resolve

    root = make_demo(ROOT / "data" / "demo")
    ds = load_dataset(root, "demo", limit=n_images)
    spec = resolve(MODEL, dataset="demo")[0]
    lm = load_model(spec, ds.categories, None, False, "cpu")
    items = [lm.pipeline({"img_path": str(s.image_path), "img_id": s.image_id}) for s in ds.samples]
    return lm.model.eval(), items


def step(model: Any, item: Any) -> float:
    import torch
    from mmengine.dataset import pseudo_collate

    with torch.inference_mode():
        t = time.perf_counter()
        model.test_step(pseudo_collate([item]))
        return time.perf_counter() - t


def worker(n_images: int, warmup: int, threads: int) -> int:
    """One backend (PANBENCH_OPS): the seconds of each image's test_step after ``warmup`` images, as JSON."""
    import torch

    from panbench.ops import install

    torch.set_num_threads(threads)
    backend = install()
    model, items = demo_model(n_images)
    for item in items[:warmup]:
        step(model, item)
    print(json.dumps({"backend": backend, "times": [step(model, it) for it in items]}))
    return 0


def record_calls(n_images: int) -> dict[str, list[tuple]]:
    """The nms and roi_align_forward calls of the demo PanopticFPN on ``n_images`` images (inputs cloned)."""
    import importlib

    nms_mod = importlib.import_module("mmcv.ops.nms")  # the module (mmcv.ops.nms is the function)
    roi_mod = importlib.import_module("mmcv.ops.roi_align")
    real = nms_mod.ext_module
    calls: dict[str, list[tuple]] = {"nms": [], "roi_align_forward": []}

    class Recorder:
        def nms(self, boxes: Any, scores: Any, iou_threshold: float, offset: int) -> Any:
            calls["nms"].append((boxes.clone(), scores.clone(), iou_threshold, offset))
            return real.nms(boxes, scores, iou_threshold=iou_threshold, offset=offset)

        def roi_align_forward(self, input: Any, rois: Any, output: Any, argmax_y: Any, argmax_x: Any,
                              **kw: Any) -> None:
            calls["roi_align_forward"].append((input.clone(), rois.clone(), output.shape, argmax_y.shape, kw))
            real.roi_align_forward(input, rois, output, argmax_y, argmax_x, **kw)

    model, items = demo_model(n_images)
    nms_mod.ext_module = roi_mod.ext_module = Recorder()
    try:
        for item in items:
            step(model, item)
    finally:
        nms_mod.ext_module = roi_mod.ext_module = real
    return calls


def best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def call(op: str, side: str, a: tuple) -> Any:
    """A function running recorded call ``a`` of ``op`` with ``side``'s implementation; it returns the output."""
    from mmcv.ops.roi_align import ext_module as mmcv_ext

    from panbench.ops import kernels

    if op == "nms":
        boxes, scores, thr, offset = a
        if side == "mmcv":
            return lambda: mmcv_ext.nms(boxes, scores, iou_threshold=thr, offset=offset)
        f = kernels.nms_c if side == "panbench C" else kernels.nms_torch
        return lambda: f(boxes, scores, thr, offset)
    x, rois, oshape, ashape, kw = a
    o, ay, ax = x.new_zeros(oshape), x.new_zeros(ashape), x.new_zeros(ashape)
    pos = (kw["aligned_height"], kw["aligned_width"], kw["spatial_scale"], kw["sampling_ratio"], kw["pool_mode"],
           kw["aligned"])
    if side == "panbench torch":
        return lambda: kernels.roi_align_torch(x, rois, *pos)[0]

    def run() -> Any:
        if side == "mmcv":
            mmcv_ext.roi_align_forward(x, rois, o, ay, ax, **kw)
        else:
            kernels.roi_align_c(x, rois, o, ay, ax, *pos)
        return o

    return run


def bench_calls(calls: dict[str, list[tuple]], repeat: int, torch_path: bool) -> list[dict[str, Any]]:
    """Each recorded call on each side: total of the best-of-``repeat`` times, and the outputs compared."""
    import torch

    sides = ["mmcv", "panbench C"] + (["panbench torch"] if torch_path else [])
    rows = []
    for op, args in calls.items():
        totals = {s: 0.0 for s in sides}
        identical = True
        for a in args:
            outs = {}
            for side in sides:
                fn = call(op, side, a)
                totals[side] += best(fn, repeat)
                outs[side] = fn().clone()
            identical &= all(torch.equal(v, outs["mmcv"]) for v in outs.values())
        rows.append({"op": op, "calls": len(args), "ms": {s: 1e3 * t for s, t in totals.items()},
                     "identical": identical})
    return rows


def bench_forward(n_images: int, warmup: int, rounds: int, threads: int) -> dict[str, list[float]]:
    """Per-image test_step seconds of each backend, from alternating subprocesses."""
    times: dict[str, list[float]] = {"mmcv": [], "panbench": []}
    for r in range(rounds):
        for backend in (("mmcv", "panbench") if r % 2 == 0 else ("panbench", "mmcv")):
            env = {**os.environ, "PANBENCH_OPS": backend, "PYTHONPATH": str(ROOT)}
            cmd = [sys.executable, __file__, "--worker", "--images", str(n_images), "--warmup", str(warmup),
                   "--threads", str(threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if out.returncode:
                raise SystemExit(f"bench_ops: the {backend} worker failed:\n{out.stderr[-2000:]}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            assert res["backend"] == backend, res["backend"]
            times[backend] += res["times"]
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20, help="demo val images (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="images run before timing, per worker (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating worker pairs for the model (default 3)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each recorded op call, best taken (default 5)")
    ap.add_argument("--torch-path", action="store_true", help="also time panbench's PyTorch fallback")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on both sides (default 1)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.images, a.warmup, a.threads)
    from panbench.ops import compiled_mmcv, install

    if not compiled_mmcv():
        print(f"bench_ops: mmcv has no compiled ops (mmcv._ext) to compare with; {FIX}", file=sys.stderr)
        return 2
    os.environ["PANBENCH_OPS"] = "mmcv"
    install()
    import torch

    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {MODEL}, {a.images} demo val images")
    calls = record_calls(a.images)
    print(f"\nops: each recorded call replayed, best of {a.repeat}; total ms over the calls")
    rows = bench_calls(calls, a.repeat, a.torch_path)
    sides = list(rows[0]["ms"])
    print(f"{'op':18} {'calls':>5} " + " ".join(f"{s:>15}" for s in sides) + "   mmcv/panbench C  identical")
    for r in rows:
        ms = r["ms"]
        print(f"{r['op']:18} {r['calls']:5d} " + " ".join(f"{ms[s]:15.1f}" for s in sides)
              + f"   {ms['mmcv'] / ms['panbench C']:15.2f}x  {'yes' if r['identical'] else 'NO'}")
    times = bench_forward(a.images, a.warmup, a.rounds, a.threads)
    med = {k: statistics.median(v) for k, v in times.items()}
    tot = {k: sum(v) for k, v in times.items()}
    print(f"\nmodel: test_step per image, {a.rounds} rounds x {a.images} images per backend (subprocesses)")
    for k in ("mmcv", "panbench"):
        print(f"  {k:9} median {1e3 * med[k]:7.1f} ms   total {tot[k]:6.2f} s")
    print(f"  panbench / mmcv: median {med['panbench'] / med['mmcv']:.3f}x, total {tot['panbench'] / tot['mmcv']:.3f}x "
          "(target <= 1.05x)")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
