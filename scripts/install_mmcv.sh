#!/usr/bin/env bash
# Step 4 of scripts/setup.sh for the compiled-mmcv opt-in (PANBENCH_MMCV=compiled, `make setup-mmcv`):
# mmcv 2.1.0 with its compiled ops, the fastest way there is:
#   1. the wheel cached by an earlier set-up ($WHEELDIR), else
#   2. OpenMMLab's prebuilt wheel for this torch/CUDA pair, when they publish one
#      ($PANBENCH_MMCV_INDEX/<cu121|cpu>/torch<major.minor>/index.html; downloaded into $WHEELDIR), else
#   3. compiling it from source (minutes; the wheel is cached in $WHEELDIR for next time).
#
# Usage: install_mmcv.sh PYTHON WHEELDIR TORCH_TAG [VAR=value ...]   (the VAR=value: compile environment)
# Environment:
#   PANBENCH_UV           uv to install the wheel with (setup.sh passes its uv; default: PYTHON -m pip)
#   PANBENCH_MMCV_INDEX   where OpenMMLab's wheel indexes are (default https://download.openmmlab.com/mmcv/dist;
#                         a local folder or file:// URL works too: tests/test_setup_speed.py uses one)
#   PANBENCH_CHECK_LATER=1  install a cached wheel without loading it (setup.sh checks it at the end)
#   PANBENCH_SETUP_DRY_RUN=1  look for the wheel (downloads it) but print the install or compile command
#                         instead of running it, and do not check the installed mmcv
set -euo pipefail
PY="$1"; WHEELDIR="$2"; TORCH_TAG="$3"; shift 3
BUILD_ENV=("$@")
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$(dirname "$(dirname "$WHEELDIR")")"
DRY="${PANBENCH_SETUP_DRY_RUN:-0}"
INDEX="${PANBENCH_MMCV_INDEX:-https://download.openmmlab.com/mmcv/dist}"
if [[ -n "${PANBENCH_UV:-}" ]]; then
  INSTALL=("$PANBENCH_UV" pip install --python "$PY" -q)
else
  INSTALL=("$PY" -m pip install -q)  # pip reads .venv/pip.conf's constraints itself
fi

fail() {
  echo "[setup] FAILED at step 4: $1" >&2
  echo "[setup] fix: $2" >&2
  exit 1
}
run() { if [[ "$DRY" == 1 ]]; then echo "        dry run: $*"; else "$@"; fi; }
mmcv_ok() { [[ "$DRY" == 1 ]] || "$PY" "$ROOT/scripts/cuda_setup.py" mmcv; }
cached() { ls "$WHEELDIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; }
install_cached() {
  run "${INSTALL[@]}" --force-reinstall --no-deps "$(ls "$WHEELDIR"/mmcv-2.1.0-*.whl | head -1)" \
    || fail "installing the mmcv wheel failed" "delete $WHEELDIR and rerun make setup"
}

has_mmcv() { "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('mmcv') is None)"; }
if [[ "$DRY" != 1 ]] && has_mmcv && mmcv_ok 2>/dev/null; then
  echo "        mmcv 2.1.0 with ops already installed"
  exit 0
fi
mkdir -p "$WHEELDIR"
if cached; then
  echo "        using cached wheel $(ls "$WHEELDIR"/mmcv-2.1.0-*.whl | head -1)"
  install_cached
  [[ "${PANBENCH_CHECK_LATER:-0}" == 1 ]] && exit 0
  if mmcv_ok; then
    exit 0
  fi  # e.g. a wheel built without CUDA ops by an older set-up: get another one
  echo "        the cached wheel does not fit: removing it"
  rm -f "$WHEELDIR"/mmcv-2.1.0-*.whl
fi
if ! cached; then
  # OpenMMLab's index names: cu121/torch2.1/index.html, cpu/torch2.1/index.html
  TORCH_MM="$(sed -E 's/.*-torch([0-9]+\.[0-9]+).*/\1/' <<<"$TORCH_TAG")"
  CU="$(sed -E 's/.*-(cpu|cu[0-9.]+)$/\1/' <<<"$TORCH_TAG" | tr -d .)"
  URL="$INDEX/$CU/torch$TORCH_MM/index.html"
  echo "        looking for OpenMMLab's prebuilt mmcv 2.1.0 wheel: $URL"
  if "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-index --only-binary=:all: \
      --timeout 15 --retries 1 -f "$URL" -d "$WHEELDIR" mmcv==2.1.0 >/dev/null 2>&1 && cached; then
    echo "        found $(basename "$(ls "$WHEELDIR"/mmcv-2.1.0-*.whl | head -1)"): installing it (no compiling)"
    install_cached
    if mmcv_ok; then
      exit 0
    fi
    echo "        the prebuilt wheel does not load here: compiling instead"
    rm -f "$WHEELDIR"/mmcv-2.1.0-*.whl
  else
    echo "        none published for torch $TORCH_MM / $CU: compiling"
  fi
fi
if ! cached; then
  if [[ "$TORCH_TAG" == *-cu* ]]; then
    echo "        compiling mmcv with its CUDA ops: this takes long (not measured by panbench; estimated 30-60 min"
    echo "        on 2 cores for one GPU architecture, longer for all; once per torch version) with ${BUILD_ENV[*]}"
  else
    CORES="$(sed -nE 's/^MAX_JOBS=([0-9]+)$/\1/p' <<<"$(printf '%s\n' "${BUILD_ENV[@]}")")"
    CORES="${CORES:-$(nproc)}"
    # measured on 2026-11-22: about 12 min on a 2-core machine; the 77 C++ sources compile in parallel
    echo "        compiling mmcv from source: this takes about $(( (24 + CORES - 1) / CORES )) min with $CORES" \
      "parallel jobs (about 12 min on 2 cores; once per torch version; the wheel is cached in $WHEELDIR)"
  fi
  BUILD_LOG="$CACHE/mmcv-build-$TORCH_TAG.log"
  BUILD_FIX="install gcc/g++ and the Python headers (apt-get install build-essential python3-dev), then rerun make setup"
  [[ "$TORCH_TAG" == *-cu* ]] && BUILD_FIX="read the end of $BUILD_LOG: nvcc errors need a CUDA toolkit that fits torch (CUDA_HOME) and a host gcc it supports; C++ errors need build-essential and python3-dev"
  if [[ "$DRY" == 1 ]]; then
    echo "        dry run: (cd $CACHE && env ${BUILD_ENV[*]} $PY -m pip wheel --no-build-isolation --no-deps mmcv==2.1.0 -w $WHEELDIR) >$BUILD_LOG 2>&1"
    exit 0
  fi
  (cd "$CACHE" && env "${BUILD_ENV[@]}" "$PY" -m pip wheel --no-build-isolation --no-deps \
    mmcv==2.1.0 -w "$WHEELDIR") >"$BUILD_LOG" 2>&1 || fail "compiling mmcv failed (log: $BUILD_LOG)" "$BUILD_FIX"
  install_cached
fi
mmcv_ok || fail "mmcv's compiled ops do not load or lack CUDA (message above)" "delete $WHEELDIR and rerun make setup"
