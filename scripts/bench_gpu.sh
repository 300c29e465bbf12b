#!/usr/bin/env bash
# What to run on a GPU machine (COCO val2017 under data/coco, zoo checkpoints downloadable or cached):
# the R50 zoo architectures at full size, batch 1/4/8, fp32/bf16, on the smoke subset or the first
# N images; prints images/s, the share of time outside the model's forward, peak GPU memory and PQ.
#
#   bash scripts/bench_gpu.sh [N_IMAGES=500]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500}"
PY=.venv/bin/python
OUT=results/bench_gpu
mkdir -p "$OUT"
$PY -m panbench doctor
for model in panoptic-fpn maskformer mask2former; do
  for bs in 1 4 8; do
    for amp in fp32 bf16; do
      extra=()
      [[ "$amp" != fp32 ]] && extra=(--amp "$amp")
      $PY -m panbench eval --model "$model" --limit "$N" --batch-size "$bs" --device cuda --workers 8 \
        --results "$OUT" --no-resume --no-progress "${extra[@]}" >/dev/null
    done
  done
done
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
rows = []
for p in sorted(Path(sys.argv[1], "runs").glob("*.json")):
    r = json.loads(p.read_text()); t = r["timings"]
    busy = t["data_s"] + t["forward_s"] + t["postprocess_s"]
    outside = 1 - t["forward_s"] / t["wall_s"] if t["wall_s"] else float("nan")
    rows.append((r["model"], r["batch_size"], r["amp"], t["images_per_s"], outside, r["memory"].get("gpu_peak_mib"),
                 r["metrics"]["PQ"]))
print(f"{'model':20} {'batch':>5} {'amp':>5} {'img/s':>7} {'outside fwd':>11} {'GPU MiB':>8} {'PQ':>7}")
for m, b, a, ips, out, mem, pq in rows:
    print(f"{m:20} {b:5d} {a:>5} {ips:7.2f} {out:11.1%} {mem or 0:8.0f} {pq:7.3f}")
PY
