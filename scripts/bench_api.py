#!/usr/bin/env python
"""The Python API's ground truth read once: ``CocoPanopticQuality(..., keep_ground_truth=True)``, round 1
against round 2 of an evaluation, side by side in one process.

Each round scores every image's prediction (decoded into memory before the timer: it stands for a model's
output) against the ground truth; round 1 decodes each ground-truth PNG (and keeps it compactly), round 2 reads
the kept maps.  Beside them, a round without keeping (what every round costs then): round 1 with keeping costs
more than it (it also makes the compact copy), so both ratios are printed.  Every round's numbers are
checked equal to ``panbench.pq_compute`` on the same files before any ratio is printed.  The sets:

- real: ``scripts/bench_pq.py``'s set of COCO's own PNGs replicated to ``--images`` (scripts/pq_bench_data.py),
- demo: the demo set's ground truth (``panbench data demo``) against perturbed copies of it.

Run: ``.venv/bin/python scripts/bench_api.py [--images 1000] [--repeat 3]``.  One process, one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pq_bench_data import make_real_set  # noqa: E402

from panbench import CocoPanopticQuality, pq_compute  # noqa: E402
from panbench.pq.kernels import rgb2id  # noqa: E402
from panbench.pq.png import decode_png  # noqa: E402


def predictions(pred_json: Path, pred_dir: Path) -> list[tuple[object, np.ndarray, list]]:
    anns = json.loads(pred_json.read_text())["annotations"]
    return [(a["image_id"], rgb2id(decode_png(pred_dir / a["file_name"], "bench")), a["segments_info"]) for a in anns]


def demo_set(work: Path) -> tuple[Path, Path, Path, Path]:
    """The demo ground truth and perturbed predictions of it (panbench.data.synth.perturb)."""
    from panbench.data.demo import make_demo
    from panbench.data.synth import PanopticImage, perturb, write_png

    root = make_demo(ROOT / "data" / "demo") / "annotations"
    gt_json, gt_dir = root / "panoptic_val2017.json", root / "panoptic_val2017"
    pred_json, pred_dir = work / "pred.json", work / "pred"
    if not pred_json.exists():
        gt = json.loads(gt_json.read_text())
        rng = np.random.default_rng(0)
        pred_dir.mkdir(parents=True, exist_ok=True)
        anns = []
        for a in gt["annotations"]:
            ids = rgb2id(decode_png(gt_dir / a["file_name"], "bench"))
            p = perturb(rng, PanopticImage(ids, a["segments_info"]), gt["categories"])
            write_png(pred_dir / a["file_name"], p.ids)
            anns.append({"image_id": a["image_id"], "file_name": a["file_name"], "segments_info": p.segments_info})
        pred_json.write_text(json.dumps({"annotations": anns}))
    return gt_json, gt_dir, pred_json, pred_dir


def one_round(m: CocoPanopticQuality, preds: list) -> tuple[float, dict]:
    m.reset()
    t = time.perf_counter()
    for image_id, ids, segs in preds:
        m.update(image_id, ids, segs)
    res = m.compute()
    return time.perf_counter() - t, res.to_panopticapi()


def bench(name: str, files: tuple[Path, Path, Path, Path], repeat: int) -> None:
    gt_json, gt_dir, pred_json, pred_dir = files
    preds = predictions(pred_json, pred_dir)
    ref = pq_compute(gt_json, pred_json, gt_dir, pred_dir)
    first, second, plain = [], [], []
    for _ in range(repeat):
        kept = CocoPanopticQuality(gt_json, gt_dir, keep_ground_truth=True)
        t1, r1 = one_round(kept, preds)
        t2, r2 = one_round(kept, preds)
        t0, r0 = one_round(CocoPanopticQuality(gt_json, gt_dir), preds)
        for r in (r0, r1, r2):
            if r != ref:
                sys.exit(f"{name}: a round's numbers differ from pq_compute's; no ratio printed")
        first.append(t1)
        second.append(t2)
        plain.append(t0)
    n = len(preds)
    f, s, p = (float(np.median(x)) for x in (first, second, plain))
    print(f"\n{name}: {n} images, PQ {100 * ref['All']['pq']:.3f} (equal to pq_compute in every round)")
    print(f"  round 1, keep_ground_truth=True (decode + keep): {1e3 * f / n:7.2f} ms/image  {f:7.2f} s")
    print(f"  round 2, keep_ground_truth=True (kept maps):     {1e3 * s / n:7.2f} ms/image  {s:7.2f} s")
    print(f"  any round, keep_ground_truth=False (decode):     {1e3 * p / n:7.2f} ms/image  {p:7.2f} s")
    print(f"  round 2 / round 1: {s / f:.2f}x (goal <= 0.5x); round 2 / a round without keeping: {s / p:.2f}x")
    print(f"  kept: {kept.ground_truth.kept_bytes / n / 1e6:.2f} MB per image ({kept.ground_truth.kept_bytes / 1e6:.0f} "
          f"MB in all); medians of {repeat}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-api"))
    a = ap.parse_args()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, load "
          f"{os.getloadavg()[0]:.2f} (1 min) at the start")
    real = a.workdir / f"real{a.images}"
    real.mkdir(parents=True, exist_ok=True)
    print(make_real_set(real, a.images))
    bench(f"real (COCO's own PNGs x{a.images})", (real / "gt.json", real / "gt", real / "pred.json", real / "pred"),
          a.repeat)
    demo = a.workdir / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    bench("demo (the demo set, perturbed predictions)", demo_set(demo), a.repeat)
    print(f"\nload {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
