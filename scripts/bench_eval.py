#!/usr/bin/env python
"""End to end: panbench eval vs MMDetection's standard test loop, same config/checkpoint/images.

MMDetection's way is what ``tools/test.py`` does: mmengine ``Runner.test`` with mmdet's
``CocoPanopticMetric``.  Both run in this process, one after the other, on the demo val split
with the committed demo checkpoints; the script prints both PQs (they must agree to 1e-6) and the
wall-time ratio.

    .venv/bin/python scripts/bench_eval.py [--models mask2former,maskformer,panoptic-fpn] [--workers 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def mmdet_test(spec, ckpt: Path, data_root: Path, workers: int) -> tuple[float, float]:
    """PQ and wall seconds of mmengine Runner.test with CocoPanopticMetric (tools/test.py)."""
    from mmengine.runner import Runner

    from panbench import mm

    cfg = mm.load_config(spec.config)
    cfg.load_from = str(ckpt)
    cfg.work_dir = tempfile.mkdtemp(prefix="bench_eval_")
    cfg.test_dataloader.dataset.data_root = str(data_root) + "/"
    cfg.test_dataloader.num_workers = workers
    cfg.test_dataloader.persistent_workers = workers > 0
    cfg.test_evaluator.ann_file = str(data_root / "annotations" / "panoptic_val2017.json")
    cfg.test_evaluator.seg_prefix = str(data_root / "annotations" / "panoptic_val2017") + "/"
    cfg.default_hooks.logger.interval = 10_000
    t = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    return float(metrics["coco_panoptic/PQ"]), time.perf_counter() - t


def panbench_eval(spec, ckpt: Path, data_root: Path, workers: int, batch_size: int = 1,
                  amp: str | None = None) -> tuple[float, float]:
    from panbench.dataset import load_dataset
    from panbench.evaluate import evaluate_model
    from panbench.runner import EvalOptions

    t = time.perf_counter()
    ds = load_dataset(data_root, name="demo")
    opts = EvalOptions(device="cpu", workers=workers, progress=False, resume=False, warmup=1,
                       batch_size=batch_size, amp=amp)
    rec = evaluate_model(spec, ds, opts, checkpoint=str(ckpt), results_dir=Path(tempfile.mkdtemp()))
    return rec["metrics"]["PQ"], time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mask2former,maskformer,panoptic-fpn")
    ap.add_argument("--workers", type=int, default=1, help="data-loading workers for both (default 1)")
    a = ap.parse_args()
    import logging

    from mmengine.logging import MMLogger

    from panbench.demo_data import make_demo
    from panbench.registry import resolve

    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    data_root = make_demo(ROOT / "data" / "demo")
    rows = []
    for name in a.models.split(","):
        spec = resolve(name, dataset="demo")[0]
        ckpt = sorted((ROOT / "checkpoints" / "demo").glob(f"{spec.name}-*.pth"))[-1]
        pq_mm, t_mm = mmdet_test(spec, ckpt, data_root, a.workers)
        pq_pb, t_pb = panbench_eval(spec, ckpt, data_root, a.workers)
        rows.append((spec.name, pq_mm, pq_pb, t_mm, t_pb))
    print(f"\n{'model':22} {'PQ mmdet':>10} {'PQ panbench':>12} {'|diff|':>9} {'mmdet s':>8} "
          f"{'panbench s':>10} {'speed-up':>8}")
    worst = 0.0
    for name, pq_mm, pq_pb, t_mm, t_pb in rows:
        worst = max(worst, abs(pq_mm - pq_pb))
        print(f"{name:22} {pq_mm:10.6f} {pq_pb:12.6f} {abs(pq_mm - pq_pb):9.2e} {t_mm:8.2f} {t_pb:10.2f} "
              f"{t_mm / t_pb:7.2f}x")
    print("\nbatched and mixed-precision inference: PQ difference to fp32 batch 1 (panbench, same images)")
    print(f"{'model':22} {'setting':>12} {'PQ':>10} {'diff':>9} {'s':>7}")
    for name, _, pq_ref, _, _ in rows:
        spec = resolve(name, dataset="demo")[0]
        ckpt = sorted((ROOT / "checkpoints" / "demo").glob(f"{spec.name}-*.pth"))[-1]
        for bs, amp in ((4, None), (1, "bf16"), (4, "bf16")):
            pq, t = panbench_eval(spec, ckpt, data_root, a.workers, bs, amp)
            print(f"{name:22} {f'b{bs} ' + (amp or 'fp32'):>12} {pq:10.4f} {pq - pq_ref:+9.4f} {t:7.2f}")
    total_mm, total_pb = sum(r[3] for r in rows), sum(r[4] for r in rows)
    print(f"total wall time: mmdet {total_mm:.2f} s, panbench {total_pb:.2f} s: {total_mm / total_pb:.2f}x "
          f"(target >= 1.5x); PQ agreement {'OK' if worst < 1e-6 else 'FAILED'} (max |diff| {worst:.2e})")


if __name__ == "__main__":
    main()
