#!/usr/bin/env bash
# Idempotent set-up of panbench's virtual environment (.venv at the repository root).
#
# Steps: venv -> torch -> build tools -> mmcv 2.1.0 with ops (compiled once, wheel cached
# outside the repository) -> mmengine/mmdet -> panopticapi and the rest -> panbench itself.
# Every step prints "[setup k/N] ..." and, on failure, which step failed and what to do.
#
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3.11, else python3)
#   PANBENCH_CACHE    where built wheels are cached (default: ~/.cache/panbench)
#   MAX_JOBS          parallel compile jobs for mmcv (default: number of cores)
#   CUDA_HOME         CUDA toolkit used to compile mmcv's CUDA ops for a CUDA torch (default: nvcc on PATH)
#   TORCH_CUDA_ARCH_LIST  GPU architectures to compile for (default: the visible GPUs'; all when none is visible)
#
# The venv keeps working when a user installs one more package: .venv/pip.conf points every pip of
# the venv at .venv/panbench-constraints.txt, which keeps setuptools 77.0.3-80.x (torch 2.13 needs
# >=77.0.3; mmengine 0.10.7 and mmcv's setup.py import pkg_resources, which setuptools 82 removed)
# and, once installed, the torch, mmcv, mmengine and mmdet versions that mmcv's ops were compiled for.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)
CACHE="${PANBENCH_CACHE:-$HOME/.cache/panbench}"
STAMP="$VENV/.panbench-setup-ok"
N=7
T0=$(date +%s)

step() { echo "[setup $1/$N] $2"; }
fail() {
  echo "[setup] FAILED at step $1: $2" >&2
  echo "[setup] fix: $3" >&2
  exit 1
}
quiet_pip() { "${PIP[@]}" "$@" 2>&1 | grep -v -E "is ignored: it is neither|dependency resolver does not|requires numpy<2|^ERROR: pip.s" || true; }
SETUPTOOLS="setuptools>=77.0.3,<81"
CONSTRAINTS="$VENV/panbench-constraints.txt"
# pip reads $VIRTUAL_ENV/pip.conf (its "site" configuration) for every pip run with this venv's python
write_pip_conf() {
  { echo "# written by scripts/setup.sh: the versions panbench's environment needs (see there); pip reads it"
    echo "# through $VENV/pip.conf. Remove a line here to upgrade that package on purpose."
    echo "$SETUPTOOLS"
    for pkg in "$@"; do echo "$pkg"; done; } >"$CONSTRAINTS"
  printf '[install]\nconstraint = %s\n' "$CONSTRAINTS" >"$VENV/pip.conf"
}

# mmcv 2.1.0 with its ops, compiled with CUDA for a CUDA torch (and running on a visible GPU)
mmcv_ok() { "$PY" "$ROOT/scripts/cuda_setup.py" mmcv; }

# Fast path: everything installed from the same inputs as last time.
HASH_INPUTS="$(cat "$ROOT/scripts/setup.sh" "$ROOT/scripts/cuda_setup.py" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/panbench/pq/_native.c" "$ROOT/panbench/analysis/_boundary.c" | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH_INPUTS" ]] && "$PY" -c "import panbench, mmdet, mmcv.ops" 2>/dev/null \
  && mmcv_ok 2>/dev/null; then
  echo "[setup] up to date ($VENV); nothing to do"
  exit 0
fi

step 1 "virtual environment $VENV"
if [[ ! -x "$PY" ]]; then
  BASE_PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  VENV_FLAGS=()
  # a CUDA torch already installed for this Python (Colab, a GPU image) is kept: the venv sees it
  if "$BASE_PY" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    VENV_FLAGS=(--system-site-packages)
    echo "        found a CUDA torch in $BASE_PY: the venv will use it"
  fi
  "$BASE_PY" -m venv "${VENV_FLAGS[@]}" "$VENV" || fail 1 "could not create the venv with $BASE_PY" \
    "install Python 3.11 with venv support (apt-get install python3.11-venv) or set PYTHON=/path/to/python3.11"
fi

write_pip_conf  # setuptools only, until torch and mmcv are installed

step 2 "torch"
if "$PY" -c "import torch" 2>/dev/null; then
  echo "        keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1; then
  # the same torch version as on the CPU (PyPI's Linux wheel is a CUDA build); step 4 checks it against nvcc
  quiet_pip install torch==2.13.0 || fail 2 "pip install torch==2.13.0 (CUDA build) failed" \
    "check network access to PyPI, then rerun make setup"
else
  quiet_pip install torch==2.13.0 || fail 2 "pip install torch==2.13.0 failed" \
    "install a CPU torch wheel into .venv by hand (.venv/bin/pip install torch) and rerun make setup"
fi
"$PY" -c "import torch" || fail 2 "torch does not import" "remove .venv and rerun make setup"

step 3 "build tools ($SETUPTOOLS: mmcv's setup.py and mmengine import pkg_resources, torch needs >=77.0.3), numpy, mmengine"
quiet_pip install "$SETUPTOOLS" wheel ninja numpy psutil opencv-python-headless addict packaging Pillow pyyaml yapf \
  mmengine==0.10.7 || fail 3 "installing build tools failed" "check network access to PyPI and rerun make setup"

TORCH_TAG="$("$PY" -c 'import sys, torch
v = torch.version.cuda
t = torch.__version__.split("+")[0]
print("cp%d%d-torch%s-%s" % (sys.version_info[0], sys.version_info[1], t, ("cu" + v) if v else "cpu"))')"
WHEELDIR="$CACHE/wheels/mmcv-2.1.0-$TORCH_TAG"
step 4 "mmcv 2.1.0 with compiled ops for $TORCH_TAG (cache: $WHEELDIR)"
BUILD_ENV=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
if [[ "$TORCH_TAG" == *-cu* ]]; then
  # a CUDA torch: mmcv must be compiled with its CUDA ops even where no GPU is visible at build time
  # (without FORCE_CUDA=1 mmcv's setup.py checks torch.cuda.is_available() and silently leaves them out)
  TOOLKIT="$("$PY" "$ROOT/scripts/cuda_setup.py" toolkit)" || fail 4 "no CUDA toolkit that fits this CUDA torch" \
    "see the message above"
  # shellcheck disable=SC2086
  BUILD_ENV+=(FORCE_CUDA=1 $TOOLKIT)
fi
if mmcv_ok 2>/dev/null; then
  echo "        mmcv 2.1.0 with ops already installed"
else
  if ls "$WHEELDIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "        using cached wheel $(ls "$WHEELDIR"/mmcv-2.1.0-*.whl)"
    quiet_pip install --force-reinstall --no-deps "$WHEELDIR"/mmcv-2.1.0-*.whl || fail 4 "installing the mmcv wheel failed" \
      "delete $WHEELDIR and rerun make setup to rebuild it"
    if ! mmcv_ok; then  # e.g. a wheel built without CUDA ops by an older set-up: rebuild it
      echo "        the cached wheel does not fit: rebuilding it"
      rm -f "$WHEELDIR"/mmcv-2.1.0-*.whl
    fi
  fi
  if ! ls "$WHEELDIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    if [[ "$TORCH_TAG" == *-cu* ]]; then
      echo "        no cached wheel: compiling mmcv with its CUDA ops (not measured by panbench; estimated 30-60 min"
      echo "        on 2 cores for one GPU architecture, longer for all; once per torch version) with ${BUILD_ENV[*]}"
    else
      echo "        no cached wheel: compiling mmcv from source (about 9 min on 2 cores; once per torch version)"
    fi
    mkdir -p "$WHEELDIR"
    BUILD_LOG="$CACHE/mmcv-build-$TORCH_TAG.log"
    BUILD_FIX="install gcc/g++ and the Python headers (apt-get install build-essential python3-dev), then rerun make setup"
    [[ "$TORCH_TAG" == *-cu* ]] && BUILD_FIX="read the end of $BUILD_LOG: nvcc errors need a CUDA toolkit that fits torch (CUDA_HOME) and a host gcc it supports; C++ errors need build-essential and python3-dev"
    (cd "$CACHE" && env "${BUILD_ENV[@]}" "$PY" -m pip wheel --no-build-isolation --no-deps \
      mmcv==2.1.0 -w "$WHEELDIR") >"$BUILD_LOG" 2>&1 || fail 4 "compiling mmcv failed (log: $BUILD_LOG)" "$BUILD_FIX"
    quiet_pip install --force-reinstall --no-deps "$WHEELDIR"/mmcv-2.1.0-*.whl || fail 4 "installing the mmcv wheel failed" \
      "delete $WHEELDIR and rerun make setup to rebuild it"
  fi
fi
mmcv_ok || fail 4 "mmcv's compiled ops do not load or lack CUDA (message above)" "delete $WHEELDIR and rerun make setup"

step 5 "mmdet 3.3.0 and its dependencies"
quiet_pip install mmdet==3.3.0 "$SETUPTOOLS" || fail 5 "pip install mmdet==3.3.0 failed" "check network access to PyPI and rerun make setup"

step 6 "panopticapi (panopticapi-lite, no deps: its numpy<2 pin is stale), pycocotools, pandas, matplotlib, test tools"
quiet_pip install --no-deps panopticapi-lite==0.2.0 || fail 6 "pip install panopticapi-lite failed" "check network access to PyPI and rerun make setup"
quiet_pip install pyspng deflate pycocotools scikit-image pandas matplotlib tqdm tabulate pytest hypothesis ruff hotcoco torchmetrics nbclient nbformat ipykernel \
  || fail 6 "installing the test tools failed" "check network access to PyPI and rerun make setup"

step 7 "panbench (editable; compiles its C extension panbench/pq/_native.c, a few seconds)"
quiet_pip install --no-deps --no-build-isolation -e "$ROOT" || fail 7 "pip install -e . failed" "run .venv/bin/pip install -e . to see the error"
"$PY" -c "import panbench, mmdet, mmcv.ops, panopticapi" || fail 7 "a package does not import" "run .venv/bin/panbench doctor"
"$PY" -c "import panbench.pq._native" 2>/dev/null || echo "        note: the C extension did not build (no gcc/Python headers?): PQ scoring uses the slower numpy path"

write_pip_conf "torch==$("$PY" -c 'import torch; print(torch.__version__)')" mmcv==2.1.0 mmengine==0.10.7 mmdet==3.3.0
"$PY" -c "import pkg_resources" 2>/dev/null || fail 7 "pkg_resources does not import (setuptools >= 81?)" \
  ".venv/bin/pip install '$SETUPTOOLS'"

echo "$HASH_INPUTS" >"$STAMP"
echo "[setup] done in $(( $(date +%s) - T0 )) s"
