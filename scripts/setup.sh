#!/usr/bin/env bash
# Idempotent set-up of panbench's virtual environment (.venv at the repository root).
#
# Steps: venv -> torch -> build tools -> mmcv 2.1.0 with ops (scripts/install_mmcv.sh: the cached wheel,
# else OpenMMLab's prebuilt wheel for this torch/CUDA pair, else compiled once; the wheel is cached
# outside the repository) -> mmengine/mmdet -> panopticapi and the rest -> panbench itself.
# Every step prints "[setup k/N] ..." and, on failure, which step failed and what to do.
# Packages are installed with uv (PyPI's `uv`, installed into the venv by pip in step 1; about 5x faster
# than pip here, docs/setup-speed.md); PANBENCH_NO_UV=1, or a uv that cannot be installed, falls back to
# pip.  uv does not read pip's configuration: its index, find-links and constraint settings
# (`pip config list`) and .venv/panbench-constraints.txt are passed to uv on its command line.
#
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3.11, else python3)
#   PANBENCH_CACHE    where built wheels are cached (default: ~/.cache/panbench)
#   MAX_JOBS          parallel compile jobs for mmcv (default: number of cores)
#   PANBENCH_MMCV_INDEX  OpenMMLab's mmcv wheel indexes (default https://download.openmmlab.com/mmcv/dist)
#   PANBENCH_NO_UV=1  install with pip instead of uv
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

# uv (when there is one) with pip's own settings, else pip; the constraints file in both cases
UV=""
uv_args() {
  local key val
  echo "--index-strategy unsafe-best-match"  # pip's rule: the best version over all indexes
  "$PY" -m pip config list 2>/dev/null | while IFS="=" read -r key val; do
    val="${val#\'}"; val="${val%\'}"
    case "${key##*.}" in
      index-url) echo "--index-url $val" ;;
      extra-index-url) for v in $val; do echo "--extra-index-url $v"; done ;;
      find-links) for v in $val; do echo "--find-links $v"; done ;;
      constraint) for v in $val; do [[ "$v" == "$CONSTRAINTS" ]] || echo "-c $v"; done ;;
    esac
  done
}
# a uv on PATH, or the one an earlier set-up kept in $CACHE/bin (a single static binary)
find_uv() {
  [[ "${PANBENCH_NO_UV:-0}" == 1 ]] && return
  UV="$(command -v uv || true)"
  [[ -z "$UV" && -x "$CACHE/bin/uv" ]] && UV="$CACHE/bin/uv"
  return 0
}
use_uv() {
  [[ "${PANBENCH_NO_UV:-0}" == 1 ]] && return
  [[ -z "$UV" ]] && find_uv
  if [[ -z "$UV" ]]; then  # the first set-up on this machine: uv from PyPI, kept for the next ones
    quiet_pip install uv >/dev/null 2>&1 || true
    if [[ -x "$VENV/bin/uv" ]]; then
      UV="$VENV/bin/uv"
      mkdir -p "$CACHE/bin" && cp "$UV" "$CACHE/bin/uv.part" && mv "$CACHE/bin/uv.part" "$CACHE/bin/uv" || true
    fi
  fi
  if [[ -n "$UV" ]]; then
    # shellcheck disable=SC2207
    INSTALL=("$UV" pip install --python "$PY" -q $(uv_args) -c "$CONSTRAINTS")
    echo "        installing with $("$UV" --version) (PANBENCH_NO_UV=1: pip)"
  fi
}
INSTALL=("${PIP[@]}" install)
pkg_install() {
  if [[ -n "$UV" ]]; then "${INSTALL[@]}" "$@"; else quiet_pip install "$@"; fi
}

# mmcv 2.1.0 with its ops, compiled with CUDA for a CUDA torch (and running on a visible GPU)
mmcv_ok() { "$PY" "$ROOT/scripts/cuda_setup.py" mmcv; }

# Fast path: everything installed from the same inputs as last time.
HASH_INPUTS="$(cat "$ROOT/scripts/setup.sh" "$ROOT/scripts/install_mmcv.sh" "$ROOT/scripts/cuda_setup.py" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/panbench/*/*.c | sha256sum | cut -c1-16)"
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
  find_uv
  if [[ -n "$UV" ]]; then  # uv's venv, with pip in it (users' pip, and pip.conf's constraints)
    "$UV" venv -q --seed --python "$BASE_PY" "${VENV_FLAGS[@]}" "$VENV" || fail 1 "could not create the venv with $UV" \
      "rerun with PANBENCH_NO_UV=1 (pip's venv)"
  else
    "$BASE_PY" -m venv "${VENV_FLAGS[@]}" "$VENV"
  fi || fail 1 "could not create the venv with $BASE_PY" \
    "install Python 3.11 with venv support (apt-get install python3.11-venv) or set PYTHON=/path/to/python3.11"
fi

write_pip_conf  # setuptools only, until torch and mmcv are installed
use_uv

step 2 "torch"
if "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"; then
  echo "        keeping the installed torch"
elif command -v nvidia-smi >/dev/null 2>&1; then
  # the same torch version as on the CPU (PyPI's Linux wheel is a CUDA build); step 4 checks it against nvcc
  pkg_install torch==2.13.0 || fail 2 "pip install torch==2.13.0 (CUDA build) failed" \
    "check network access to PyPI, then rerun make setup"
else
  # the CPU build (PyPI's Linux torch is the CUDA build, which would then ask for nvcc): from the configured
  # indexes if one carries it, else from PyTorch's CPU index
  pkg_install "torch==2.13.0+cpu" 2>/dev/null \
    || pkg_install --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0+cpu" \
    || fail 2 "installing the CPU build of torch 2.13.0 failed" \
    "install a CPU torch wheel into .venv by hand (.venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu) and rerun make setup"
fi
# torch's version and CUDA from its version.py, without importing torch (seconds; the final check imports it),
# else from an import; they name the mmcv wheel (numpy comes in step 3)
TORCH_INFO="$("$PY" -W ignore -c 'import importlib.util, os, sys
try:
    ns = {}
    exec(open(os.path.join(importlib.util.find_spec("torch").submodule_search_locations[0], "version.py")).read(), ns)
    full, v = ns["__version__"], ns["cuda"]
except Exception:
    import torch
    full, v = torch.__version__, torch.version.cuda
t = full.split("+")[0]
print(full, "cp%d%d-torch%s-%s" % (sys.version_info[0], sys.version_info[1], t, ("cu" + v) if v else "cpu"))')" \
  || fail 2 "torch does not import" "remove .venv and rerun make setup"
TORCH_VERSION="${TORCH_INFO% *}"
TORCH_TAG="${TORCH_INFO#* }"
echo "        torch $TORCH_VERSION"

step 3 "build tools ($SETUPTOOLS: mmcv's setup.py and mmengine import pkg_resources, torch needs >=77.0.3), numpy, mmengine"
pkg_install "$SETUPTOOLS" wheel ninja numpy psutil opencv-python-headless addict packaging Pillow pyyaml yapf \
  mmengine==0.10.7 || fail 3 "installing build tools failed" "check network access to PyPI and rerun make setup"

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
# a cached wheel is checked once at the end, with the other imports (each import of torch costs seconds)
PANBENCH_UV="$UV" PANBENCH_CHECK_LATER=1 bash "$ROOT/scripts/install_mmcv.sh" "$PY" "$WHEELDIR" \
  "$TORCH_TAG" "${BUILD_ENV[@]}" || exit 1  # it said what failed and the fix

step 5 "mmdet 3.3.0 and its dependencies"
pkg_install mmdet==3.3.0 "$SETUPTOOLS" || fail 5 "pip install mmdet==3.3.0 failed" "check network access to PyPI and rerun make setup"

step 6 "panopticapi (panopticapi-lite, no deps: its numpy<2 pin is stale), pycocotools, pandas, matplotlib, cityscapesscripts, transformers (hf: models), test tools"
pkg_install --no-deps panopticapi-lite==0.2.0 || fail 6 "pip install panopticapi-lite failed" "check network access to PyPI and rerun make setup"
pkg_install pyspng deflate pycocotools scikit-image pandas matplotlib tqdm tabulate pytest hypothesis ruff hotcoco torchmetrics nbclient nbformat ipykernel cityscapesscripts transformers \
  || fail 6 "installing the test tools failed" "check network access to PyPI and rerun make setup"

step 7 "panbench (editable; compiles its C extensions panbench/pq/_native.c, panbench/analysis/_boundary.c and _image.c, a few seconds)"
pkg_install --no-deps --no-build-isolation -e "$ROOT" || fail 7 "pip install -e . failed" "run .venv/bin/pip install -e . to see the error"
# one process: mmcv's ops (scripts/cuda_setup.py mmcv; exit 3 when they do not fit), then the other packages
final_check() {
  "$PY" -W ignore -c "import runpy, sys
sys.argv = ['cuda_setup.py', 'mmcv']
try:
    runpy.run_path('$ROOT/scripts/cuda_setup.py', run_name='__main__')
except SystemExit as e:
    if e.code:
        sys.exit(3)
import panbench, mmdet, panopticapi"
}
if final_check; then :; elif [[ $? == 3 ]]; then  # e.g. a cached wheel built without CUDA ops by an older set-up
  echo "        the cached mmcv wheel does not fit: getting another one"
  rm -f "$WHEELDIR"/mmcv-2.1.0-*.whl
  PANBENCH_UV="$UV" bash "$ROOT/scripts/install_mmcv.sh" "$PY" "$WHEELDIR" "$TORCH_TAG" "${BUILD_ENV[@]}" \
    || exit 1
  final_check || fail 7 "a package does not import" "run .venv/bin/panbench doctor"
else
  fail 7 "a package does not import" "run .venv/bin/panbench doctor"
fi
"$PY" -c "import panbench.pq._native, panbench.analysis._boundary, panbench.analysis._image" 2>/dev/null \
  || echo "        note: a C extension did not build (no gcc/Python headers?): scoring uses the slower numpy path (.venv/bin/panbench doctor says which)"

write_pip_conf "torch==$TORCH_VERSION" mmcv==2.1.0 mmengine==0.10.7 mmdet==3.3.0
"$PY" -c "import pkg_resources" 2>/dev/null || fail 7 "pkg_resources does not import (setuptools >= 81?)" \
  ".venv/bin/pip install '$SETUPTOOLS'"

echo "$HASH_INPUTS" >"$STAMP"
echo "[setup] done in $(( $(date +%s) - T0 )) s"
