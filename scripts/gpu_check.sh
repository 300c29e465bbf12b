#!/usr/bin/env bash
# The checks to run on a GPU machine, stage after stage, each under its own time limit: a stage that fails or runs
# out of time is recorded and the next one runs.  What each stage runs, and what came out the last time it ran on a
# GPU, is in docs/gpu.md.
#
#   bash scripts/gpu_check.sh [LOGDIR=results/gpu_check]
#
# Environment: PY (default .venv/bin/python, else python3), DEVICE (default cuda), COCO_SAMPLE (a COCO panoptic
# folder for the post-processing stage; default ../shared/data/coco-panoptic-val2017-sample), STAGES (default all:
# env doctor demo ops post speed batch bench_gpu), TESTS (the pytest selection of the tests, which run in the background beside
# the stages, on TEST_WORKERS workers, default 6; TESTS= leaves them out), BUDGET_S (seconds for everything: each stage's limit is cut to
# what is left).  Writes LOGDIR/<stage>.log and LOGDIR/summary.tsv (stage, exit status, seconds); exits 1 when a stage failed or ran out of time.
set -uo pipefail  # no -e: one failed stage must not stop the others
cd "$(dirname "$0")/.."
LOG="${1:-results/gpu_check}"
PY="${PY:-.venv/bin/python}"
[[ -x "$PY" ]] || PY="$(command -v python3)"
DEVICE="${DEVICE:-cuda}"
COCO_SAMPLE="${COCO_SAMPLE:-../shared/data/coco-panoptic-val2017-sample}"
STAGES="${STAGES:-env doctor demo ops post speed batch bench_gpu}"
TESTS="${TESTS-tests/evaluation/test_gpu_path.py tests/integrations tests/ops tests/metrics tests/evaluation/test_oom.py}"
END=$(( $(date +%s) + ${BUDGET_S:-100000} ))
R="$LOG/results"
mkdir -p "$LOG" "$R"
: >"$LOG/summary.tsv"
TEST_WORKERS="${TEST_WORKERS:-6}"
DEMO_MODELS="demo-panoptic-fpn demo-maskformer demo-mask2former"
export PY DEVICE COCO_SAMPLE R DEMO_MODELS TEST_WORKERS

run_stage() {  # name limit_s command...: runs it under `timeout` (at most what is left of BUDGET_S), logs it,
  local name=$1 limit=$2 t0 rc left  # records its exit status and seconds
  shift 2
  left=$(( END - $(date +%s) ))
  (( left < limit )) && limit=$left
  if (( limit < 5 )); then
    printf '%s\tskipped\t0\n' "$name" >>"$LOG/summary.tsv"
    return
  fi
  t0=$(date +%s%N)
  echo "gpu_check: $name (limit ${limit}s)"
  timeout -k 10 "$limit" "$@" >"$LOG/$name.log" 2>&1
  rc=$?
  t0=$(( ($(date +%s%N) - t0) / 100000000 ))
  printf '%s\t%s\t%d.%d\n' "$name" "$rc" $(( t0 / 10 )) $(( t0 % 10 )) >>"$LOG/summary.tsv"
  [[ $rc == 0 ]] || echo "gpu_check:   $name exited $rc$([[ $rc == 124 ]] && echo " (time limit)"); its log: $LOG/$name.log" >&2
}

stage_env() {
  date -u +"%Y-%m-%d %H:%M UTC"; git rev-parse --short HEAD 2>/dev/null; uptime
  nvidia-smi || true
  "$PY" -c "import sys, torch, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'CUDA', torch.version.cuda,
  'cudnn', torch.backends.cudnn.version(), 'numpy', numpy.__version__)
import importlib.metadata as md
for p in ('torchvision', 'mmcv-lite', 'mmengine', 'mmdet', 'transformers', 'timm', 'torchmetrics', 'lightning', 'hotcoco'):
    try: print(p, md.version(p))
    except md.PackageNotFoundError: print(p, 'not installed')
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0); print(p.name, f'{p.total_memory / 2**30:.0f} GiB, cc {p.major}.{p.minor}')"
}

stage_demo() {  # `make demo`'s two commands, then each demo model on the CPU: their PQ side by side
  "$PY" -m panbench data demo || return
  "$PY" -m panbench eval --model all --dataset demo --device "$DEVICE" --results "$R/demo" --no-resume || return
  "$PY" -m panbench eval --model all --dataset demo --device cpu --results "$R/demo-cpu" --no-resume || return
  "$PY" - "$R/demo" "$R/demo-cpu" <<'PY'
import json, sys
from pathlib import Path
def pq(folder):
    out = {}
    for f in sorted(Path(folder).rglob("*.json")):
        try:
            r = json.loads(f.read_text())
        except ValueError:
            continue
        if isinstance(r, dict) and "metrics" in r and "model" in r:
            out[r["model"]] = (r["metrics"]["PQ"], r.get("device"), r["timings"].get("images_per_s"))
    return out
gpu, cpu = pq(sys.argv[1]), pq(sys.argv[2])
for m in sorted(gpu):
    ips = f"{gpu[m][2]:.1f}" if gpu[m][2] is not None else "-"
    print(f"{m:22} PQ {gpu[m][0]!r} on {gpu[m][1]} ({ips} img/s); {cpu[m][0]!r} on the CPU" if m in cpu else
          f"{m:22} PQ {gpu[m][0]!r} on {gpu[m][1]} ({ips} img/s); no CPU record")
PY
}

stage_speed() {  # `panbench speed` on the demo models: fp32, bf16 autocast, torch.compile
  for extra in "" "--amp bf16" "--compile"; do
    echo "== panbench speed --dataset demo $extra"
    # shellcheck disable=SC2086
    "$PY" -m panbench speed --model all --dataset demo --device "$DEVICE" --results "$R/speed" $extra || echo "FAILED: $extra"
  done
}

stage_batch() {  # what --batch-size changes on the device: batch 8 against batch 1, image by image
  # shellcheck disable=SC2086
  "$PY" scripts/bench_batch_size.py $(printf -- '--model %s ' $DEMO_MODELS) --limit 60 --batch-sizes 1 8 \
    --extra "--device $DEVICE"
}

stage_bench_gpu() {  # bench_gpu.sh on the demo set for one model: batch 1 and 8, fp32 and bf16, both fusions
  PY="$PY" MODELS=demo-mask2former DATASET=demo BATCHES="1 8" AMPS="fp32 bf16" DEVICE="$DEVICE" WORKERS=4 \
    OUT="$R/bench_gpu" bash scripts/bench_gpu.sh 64
}

stage_post() {  # post-processing at COCO's size (zoo configs, random weights) on the device
  "$PY" scripts/bench_postprocess.py --device "$DEVICE" --data-root "$COCO_SAMPLE" --repeat 5
}

stage_tests() {  # the tests nearest the GPU path; CUDA-only tests run here, skip elsewhere
  # shellcheck disable=SC2086
  "$PY" -m pytest -q -p no:randomly -n "${TEST_WORKERS:-6}" --durations=15 $TESTS
}

export -f stage_env stage_demo stage_speed stage_batch stage_bench_gpu stage_post stage_tests
[[ -n "$TESTS" ]] && { TESTS="$TESTS" run_stage tests 600 bash -c stage_tests & }
for s in $STAGES; do
  case "$s" in
    env) run_stage env 60 bash -c stage_env ;;
    doctor) run_stage doctor 120 "$PY" -m panbench doctor ;;
    demo) run_stage demo 150 bash -c stage_demo ;;
    ops) run_stage ops 120 "$PY" scripts/gpu_check.py --device "$DEVICE" ;;
    post) run_stage post 120 bash -c stage_post ;;
    speed) run_stage speed 150 bash -c stage_speed ;;
    batch) run_stage batch 150 bash -c stage_batch ;;
    bench_gpu) run_stage bench_gpu 120 bash -c stage_bench_gpu ;;
    *) echo "gpu_check: unknown stage $s (env doctor demo ops post speed batch bench_gpu)" >&2; exit 2 ;;
  esac
done
wait
column -t "$LOG/summary.tsv" 2>/dev/null || cat "$LOG/summary.tsv"
! cut -f2 "$LOG/summary.tsv" | grep -qv '^0$'
