#!/usr/bin/env python
"""End to end: panbench eval vs MMDetection's standard test loop, same config/checkpoint/images.

MMDetection's way is what ``tools/test.py`` does: mmengine ``Runner.test`` with mmdet's
``CocoPanopticMetric``.  Each side runs as a whole process (imports, model and data set-up,
inference, scoring), one after the other, on the demo val split with the committed demo
checkpoints; the script prints both PQs (they must agree to 1e-6) and the wall-time ratio.

    .venv/bin/python scripts/bench_eval.py [--models mask2former,maskformer,panoptic-fpn] [--workers 1] [--repeat 3]

panbench runs with its defaults (on the CPU: one inference process per core, forked after the
model is loaded) and, for comparison, with ``--cpu-procs 1``.  Runs of the two tools are
interleaved and repeated; the medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


MMDET_TEST = """
import logging, sys, tempfile, time
t = time.perf_counter()
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from panbench.models import mm
cfg_path, ckpt, root, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = mm.load_config(cfg_path)  # the same file; mm.load_config only registers mmdet and reads it
cfg.load_from = ckpt
cfg.work_dir = tempfile.mkdtemp(prefix="bench_eval_")
cfg.test_dataloader.dataset.data_root = root + "/"
cfg.test_dataloader.num_workers = workers
cfg.test_dataloader.persistent_workers = workers > 0
cfg.test_evaluator.ann_file = root + "/annotations/panoptic_val2017.json"
cfg.test_evaluator.seg_prefix = root + "/annotations/panoptic_val2017/"
cfg.default_hooks.logger.interval = 10_000
cfg.log_level = "WARNING"
metrics = Runner.from_cfg(cfg).test()
print("RESULT", metrics["coco_panoptic/PQ"], time.perf_counter() - t)
"""


def mmdet_test(spec, ckpt: Path, data_root: Path, workers: int) -> tuple[float, float]:
    """PQ and wall seconds of MMDetection's tools/test.py path (mmengine Runner.test with
    CocoPanopticMetric), as a whole process."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", MMDET_TEST, str(spec.config), str(ckpt), str(data_root), str(workers)],
                       capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if r.returncode or not line:
        raise SystemExit(f"mmdet test failed:\n{r.stderr[-3000:]}")
    return float(line[-1].split()[1]), wall


def panbench_eval(spec, ckpt: Path, data_root: Path, workers: int, batch_size: int = 1,
                  amp: str | None = None, cpu_procs: int = 0) -> tuple[float, float]:
    """PQ and wall seconds of ``panbench eval`` as a whole process."""
    import json

    res = Path(tempfile.mkdtemp(prefix="bench_eval_pb_"))
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", spec.name, "--dataset", "demo", "--data-root",
           str(data_root), "--checkpoint", str(ckpt), "--workers", str(workers), "--batch-size", str(batch_size),
           "--results", str(res), "--no-progress", "--no-resume", "--device", "cpu", "--cpu-procs", str(cpu_procs)]
    if amp:
        cmd += ["--amp", amp]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode:
        from panbench.errors import PanbenchError

        raise PanbenchError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "panbench eval failed")
    rec = json.loads(next((res / "runs").glob("*.json")).read_text())
    return rec["metrics"]["PQ"], wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mask2former,maskformer,panoptic-fpn")
    ap.add_argument("--workers", type=int, default=1, help="data-loading workers for both (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs per side; medians are compared")
    a = ap.parse_args()
    import logging

    from mmengine.logging import MMLogger

    from panbench.data.demo import make_demo
    from panbench.errors import PanbenchError
    from panbench.models.registry import resolve

    MMLogger.get_instance("mmengine").setLevel(logging.WARNING)
    data_root = make_demo(ROOT / "data" / "demo")
    names = a.models.split(",")
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for rep in range(a.repeat):  # interleaved, so that a slow spell of the machine hits all sides
        for name in names:
            spec = resolve(name, dataset="demo")[0]
            ckpt = sorted((ROOT / "checkpoints" / "demo").glob(f"{spec.name}-*.pth"))[-1]
            runs.setdefault((spec.name, "mmdet"), []).append(mmdet_test(spec, ckpt, data_root, a.workers))
            runs.setdefault((spec.name, "panbench"), []).append(panbench_eval(spec, ckpt, data_root, a.workers))
            runs.setdefault((spec.name, "panbench-1proc"), []).append(
                panbench_eval(spec, ckpt, data_root, a.workers, cpu_procs=1))
            print(f"  round {rep + 1}/{a.repeat} {spec.name}: " + ", ".join(
                f"{side} {runs[(spec.name, side)][-1][1]:.2f} s" for side in ("mmdet", "panbench", "panbench-1proc")),
                flush=True)
    med = {k: (v[0][0], statistics.median(t for _, t in v)) for k, v in runs.items()}
    rows = []
    for name in names:
        spec_name = resolve(name, dataset="demo")[0].name
        (pq_mm, t_mm), (pq_pb, t_pb), (pq_1, t_1) = (med[(spec_name, s)] for s in ("mmdet", "panbench",
                                                                                    "panbench-1proc"))
        rows.append((spec_name, pq_mm, pq_pb, t_mm, t_pb, pq_1, t_1))
    print(f"\nmedian of {a.repeat} interleaved runs per side; panbench = default (--cpu-procs 0: one forked "
          f"process per core), 1proc = --cpu-procs 1")
    print(f"{'model':22} {'PQ mmdet':>10} {'PQ panbench':>12} {'|diff|':>9} {'mmdet s':>8} "
          f"{'panbench s':>10} {'speed-up':>8} {'1proc s':>8} {'speed-up':>8}")
    worst = 0.0
    for name, pq_mm, pq_pb, t_mm, t_pb, pq_1, t_1 in rows:
        worst = max(worst, abs(pq_mm - pq_pb), abs(pq_mm - pq_1))
        print(f"{name:22} {pq_mm:10.6f} {pq_pb:12.6f} {abs(pq_mm - pq_pb):9.2e} {t_mm:8.2f} {t_pb:10.2f} "
              f"{t_mm / t_pb:7.2f}x {t_1:8.2f} {t_mm / t_1:7.2f}x")
    print("\nbatched and mixed-precision inference: PQ difference to fp32 batch 1 (panbench, same images)")
    print(f"{'model':22} {'setting':>12} {'PQ':>10} {'diff':>9} {'s':>7}")
    for name, _, pq_ref, *_ in rows:
        spec = resolve(name, dataset="demo")[0]
        ckpt = sorted((ROOT / "checkpoints" / "demo").glob(f"{spec.name}-*.pth"))[-1]
        for bs, amp in ((4, None), (1, "bf16"), (4, "bf16")):
            try:
                pq, t = panbench_eval(spec, ckpt, data_root, a.workers, bs, amp)
            except PanbenchError as e:
                print(f"{name:22} {f'b{bs} ' + (amp or 'fp32'):>12} unsupported: {str(e)[:90]}")
                continue
            print(f"{name:22} {f'b{bs} ' + (amp or 'fp32'):>12} {pq:10.4f} {pq - pq_ref:+9.4f} {t:7.2f}")
    total_mm, total_pb, total_1 = (sum(r[k] for r in rows) for k in (3, 4, 6))
    print(f"total wall time (medians): mmdet {total_mm:.2f} s, panbench {total_pb:.2f} s: {total_mm / total_pb:.2f}x "
          f"(target >= 1.5x); panbench --cpu-procs 1 {total_1:.2f} s: {total_mm / total_1:.2f}x; "
          f"PQ agreement {'OK' if worst < 1e-6 else 'FAILED'} (max |diff| {worst:.2e})")


if __name__ == "__main__":
    main()
