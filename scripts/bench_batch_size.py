"""What ``--batch-size`` changes: each model evaluated at batch 1 and at each larger batch size (whole
``panbench eval`` processes, ``--save-predictions``, no resume), then compared with batch 1 image by image.

    .venv/bin/python scripts/bench_batch_size.py --model demo-mask2former --limit 60 --batch-sizes 2 4 8

Prints, per model and batch size: the batches that ran (size x count, from the record's ``timings.batches``), the
images whose panoptic prediction differs from batch 1 and the pixels that differ, the largest difference of an
instance score (AP's input), the PQ/SQ/RQ/AP/mIoU differences, and images/s.  Differences come from the kernels'
float rounding with another batch (the padding is the same: batches hold images of one padded shape).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panbench.pq.png import read_ids  # noqa: E402

METRICS = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")


def run(model: str, dataset: str, limit: int, batch: int, out: Path, extra: list[str]) -> tuple[dict, Path]:
    res, pred = out / f"res-b{batch}", out / f"pred-b{batch}"
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", model, "--dataset", dataset, "--limit", str(limit),
           "--batch-size", str(batch), "--no-resume", "--no-progress", "--results", str(res),
           "--save-predictions", str(pred), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rec = json.loads(next((res / "runs").glob("*.json")).read_text())
    return rec, pred


def predictions(folder: Path) -> tuple[dict[int, tuple[np.ndarray, list]], dict[int, list]]:
    js = next(p for p in folder.glob("*.json") if not p.name.endswith("_instances.json"))
    pan = {a["image_id"]: (read_ids(js.with_suffix("") / a["file_name"], "prediction"), a["segments_info"])
           for a in json.loads(js.read_text())["annotations"]}
    inst: dict[int, list] = defaultdict(list)
    ijs = js.with_name(js.stem + "_instances.json")
    if ijs.is_file():
        for d in json.loads(ijs.read_text()):
            inst[d["image_id"]].append(d)
    return pan, inst


def compare(base: tuple[dict, Path], other: tuple[dict, Path]) -> dict[str, Any]:
    (r1, p1), (r2, p2) = base, other
    (pan1, inst1), (pan2, inst2) = predictions(p1), predictions(p2)
    images = pixels = total = 0
    for i, (ids, segs) in pan1.items():
        ids2, segs2 = pan2[i]
        d = int((ids != ids2).sum())
        total += ids.size
        if d or segs != segs2:
            images += 1
            pixels += d
    score = 0.0
    for i, dets in inst1.items():
        a = sorted(x["score"] for x in dets)
        b = sorted(x["score"] for x in inst2.get(i, []))
        score = max([score, *(abs(x - y) for x, y in zip(a, b))]) if len(a) == len(b) else float("inf")
    m1, m2 = r1["metrics"], r2["metrics"]
    ap1, ap2 = (r.get("ap") or {} for r in (r1, r2))
    return {"images_differ": images, "pixels_differ": pixels, "pixels": total, "max_score_diff": score,
            "dPQ": max(abs(m1[k] - m2[k]) for k in METRICS),
            "dAP": abs(ap1.get("AP", 0) - ap2.get("AP", 0)) if ap1 else None,
            "dmIoU": abs((r1.get("miou") or 0) - (r2.get("miou") or 0))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--dataset", default="demo")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--extra", default="", help="more eval options, one string (e.g. '--cpu-procs 1')")
    args = ap.parse_args()
    sizes = sorted(set([1, *args.batch_sizes]))
    print("model | batch | batches run | images differ | pixels differ | max score diff | max dPQ | dAP | dmIoU | "
          "images/s")
    for model in args.model:
        with tempfile.TemporaryDirectory() as tmp:
            runs = {b: run(model, args.dataset, args.limit, b, Path(tmp), args.extra.split()) for b in sizes}
            for b in sizes:
                rec = runs[b][0]
                c = compare(runs[1], runs[b])
                batches = " ".join(f"{k}x{v}" for k, v in rec["timings"]["batches"].items())
                ips = rec["timings"].get("images_per_s")
                print(f"{model} | {b} | {batches} | {c['images_differ']}/{rec['n_images']} | "
                      f"{c['pixels_differ']}/{c['pixels']} | {c['max_score_diff']:.2g} | {c['dPQ']:.2g} | "
                      f"{c['dAP'] if c['dAP'] is None else format(c['dAP'], '.2g')} | {c['dmIoU']:.2g} | "
                      f"{ips if ips is None else format(ips, '.2f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
