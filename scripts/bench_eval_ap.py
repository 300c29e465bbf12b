#!/usr/bin/env python
"""The cost of AP in ``panbench eval``, side by side in one run: the demo eval of a model with AP (its instance
output on, the masks to RLE per image, COCO's segm evaluation at the end) and with ``--no-ap`` (PQ only),
interleaved, ``--repeats`` times each.  Printed: the median wall seconds of the whole command, the median
images/s the record measured (forward, post-processing and scoring of the timed images) and their ratios.

    .venv/bin/python scripts/bench_eval_ap.py [--model mask2former] [--limit 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(model: str, limit: int, results: Path, ap: bool) -> tuple[float, float]:
    """Wall seconds of one eval and the images/s of its record."""
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", model, "--dataset", "demo", "--limit", str(limit),
           "--results", str(results), "--no-resume", "--no-progress", "--device", "cpu", "--cpu-procs", "1",
           "--flops-images", "0", *([] if ap else ["--no-ap"])]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t
    rec = json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())
    assert ("ap" in rec) == ap, "AP in the record does not follow --no-ap"
    return wall, float(rec["timings"]["images_per_s"] or 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mask2former")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for with_ap in (False, True):
                runs[with_ap].append(one(a.model, a.limit, Path(tmp) / f"{with_ap}-{r}", with_ap))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(s for _, s in v)) for k, v in runs.items()}
    print(f"panbench eval --model {a.model} --dataset demo --limit {a.limit}, CPU, one process, "
          f"median of {a.repeats} (interleaved)")
    for k, label in ((False, "--no-ap (PQ only)"), (True, "AP beside PQ")):
        print(f"  {label:20} wall {med[k][0]:7.2f} s   {med[k][1]:7.2f} images/s (record)")
    print(f"  AP's cost: wall x{med[True][0] / med[False][0]:.3f}, images/s x{med[True][1] / med[False][1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
