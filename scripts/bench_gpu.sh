#!/usr/bin/env bash
# What to run on a GPU machine (COCO val2017 under data/coco, zoo checkpoints downloadable or cached):
# the R50 zoo architectures at full size, batch 1/4/8, fp32 and bf16 (fp16 on a GPU below compute capability
# 8.0, e.g. a T4 or a V100: no bf16 there), on the first N images; prints
# images/s, the share of time outside the model's forward, peak GPU memory and PQ, one row per run,
# the panoptic fusion's share (the record's fusion_s over wall_s), failed runs included (with their
# one-line error).  Each model also runs once with mmdet's own fusion (--fusion mmdet, at the first batch size
# and precision): the fusion's share before and after, side by side.
#
#   bash scripts/bench_gpu.sh [N_IMAGES=500]
#
# Environment (defaults for the GPU run; tests/evaluation/test_gpu_path.py runs it on the demo set on the CPU):
#   MODELS="panoptic-fpn maskformer mask2former"  BATCHES="1 4 8"  AMPS="fp32 bf16" (or "fp32 fp16", above)  FUSIONS="panbench mmdet"
#   DEVICE=cuda  DATASET=coco  DATA_ROOT=data/coco  WORKERS=8  OUT=results/bench_gpu
#
# Checks first that the data are there (the quick check, before the doctor's seconds), that the set-up
# works (panbench doctor), that the GPU is there, and that /dev/shm can hold what the data-loading workers
# pass (Docker's default is 64 MB): fewer workers where it cannot.  A run that fails is recorded as failed and the others go on.
set -uo pipefail  # no -e: one failed run must not kill the others or the summary
cd "$(dirname "$0")/.."
N="${1:-500}"
PY="${PY:-.venv/bin/python}"
OUT="${OUT:-results/bench_gpu}"
MODELS="${MODELS:-panoptic-fpn maskformer mask2former}"
BATCHES="${BATCHES:-1 4 8}"
FUSIONS="${FUSIONS:-panbench mmdet}"
DEVICE="${DEVICE:-cuda}"
DATASET="${DATASET:-coco}"
DATA_ROOT="${DATA_ROOT:-data/$DATASET}"
WORKERS="${WORKERS:-8}"

die() { echo "bench_gpu: $1" >&2; exit 2; }
[[ -x "$PY" ]] || die "$PY not found: run \`make setup\` first"
if [[ "$DATASET" == coco ]]; then
  [[ -f "$DATA_ROOT/annotations/panoptic_val2017.json" && -d "$DATA_ROOT/val2017" ]] \
    || die "no COCO panoptic val under $DATA_ROOT: run \`$PY -m panbench data coco --root $DATA_ROOT\` first"
elif [[ ! -d "$DATA_ROOT" ]]; then
  die "no dataset under $DATA_ROOT: run \`$PY -m panbench data $DATASET\` first"
fi
$PY -m panbench doctor --data-root "$DATA_ROOT" || die "panbench doctor reports a broken part (above): fix it, then rerun"
if [[ "$DEVICE" == cuda* ]]; then
  $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || die "no CUDA GPU visible to torch (see doctor above): use a GPU machine with a CUDA torch, or DEVICE=cpu"
fi

if [[ -z "${AMPS:-}" ]]; then
  HALF=bf16
  [[ "$DEVICE" == cuda* ]] && HALF="$($PY scripts/cuda_setup.py half)"
  AMPS="fp32 $HALF"
  echo "bench_gpu: AMPS=\"$AMPS\" ($([[ $HALF == fp16 ]] && echo "a GPU below compute capability 8.0: no bf16" || echo "bf16"))"
fi

# Each worker keeps up to 4 batches in flight (prefetch_factor 4) in shared memory; an 800x1333
# COCO image is about 3 MiB as uint8, so allow 16 MiB per image per worker, within half of /dev/shm.
shm_mib=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print int($4 / 1024)}')
workers_for() {  # batch size -> workers that fit in /dev/shm
  local bs=$1 w=$WORKERS
  if [[ -n "$shm_mib" ]]; then
    local fit=$(( shm_mib / 2 / (16 * bs) ))
    (( fit < w )) && w=$fit
  fi
  echo "$w"
}
echo "bench_gpu: /dev/shm has ${shm_mib:-?} MiB free; workers per batch size:$(for b in $BATCHES; do
  printf ' %s->%s' "$b" "$(workers_for "$b")"; done) (docker run --shm-size=8g lifts the limit)"

mkdir -p "$OUT/logs"
STATUS="$OUT/status.tsv"  # one line per run of this invocation: model batch amp status record/error
: >"$STATUS"
read -r first_bs _ <<<"$BATCHES"
read -r first_amp _ <<<"$AMPS"
for model in $MODELS; do
  for bs in $BATCHES; do
    for amp in $AMPS; do
     for fusion in $FUSIONS; do
      [[ "$fusion" != panbench && ( "$bs" != "$first_bs" || "$amp" != "$first_amp" ) ]] && continue
      extra=(--fusion "$fusion")
      [[ "$amp" != fp32 ]] && extra+=(--amp "$amp")
      log="$OUT/logs/$model-b$bs-$amp-$fusion"
      w=$(workers_for "$bs")
      echo "bench_gpu: $model batch $bs $amp fusion $fusion (workers $w)"
      if $PY -m panbench eval --model "$model" --dataset "$DATASET" --data-root "$DATA_ROOT" --limit "$N" \
          --batch-size "$bs" --device "$DEVICE" --workers "$w" --results "$OUT" --no-resume --no-progress \
          "${extra[@]}" >"$log.out" 2>"$log.err"; then
        rec=$(sed -n 's/^  record: //p' "$log.out" | tail -1)
        printf '%s\t%s\t%s\tok\t%s\n' "$model" "$bs" "$amp" "$rec" >>"$STATUS"
      else
        err=$(grep -v '^\s*$' "$log.err" | tail -1)
        printf "%s\t%s\t%s\tFAILED\t%s\n" "$model" "$bs" "$amp" "${err:-no message}" >>"$STATUS"
        echo "bench_gpu:   FAILED: ${err:-no message} (log: $log.err)" >&2
      fi
     done
    done
  done
done

$PY - "$STATUS" "$OUT" <<'PY'
import json, sys
from pathlib import Path

print(f"{'model':20} {'batch':>5} {'amp':>5} {'img/s':>7} {'outside fwd':>11} {'fusion':>8} {'share':>6} "
      f"{'GPU MiB':>8} {'PQ':>7}  status")
failed = 0
for line in Path(sys.argv[1]).read_text().splitlines():
    model, bs, amp, status, info = line.split("\t", 4)
    if status != "ok":
        failed += 1
        print(f"{model:20} {int(bs):5d} {amp:>5} {'-':>7} {'-':>11} {'-':>8} {'-':>6} {'-':>8} {'-':>7}  "
              f"FAILED: {info[:100]}")
        continue
    r = json.loads(Path(sys.argv[2], info).read_text())  # the record path is relative to the results folder
    t = r["timings"]
    outside = 1 - t["forward_s"] / t["wall_s"] if t["wall_s"] else float("nan")
    mem = r["memory"].get("gpu_peak_mib")
    ips = t["images_per_s"]  # None when no image past the warm-up was timed
    speed = f"{ips:7.2f}" if ips is not None else f"{'-':>7}"
    share = t.get("fusion_s", float("nan")) / t["wall_s"] if t["wall_s"] else float("nan")
    print(f"{r['model']:20} {r['batch_size']:5d} {r['amp']:>5} {speed} {outside:11.1%} {r.get('fusion') or '-':>8} "
          f"{share:6.1%} {mem if mem is not None else float('nan'):8.0f} {r['metrics']['PQ']:7.3f}  ok")
print(f"{failed} run(s) failed" if failed else "all runs ok")
sys.exit(1 if failed else 0)
PY
