#!/usr/bin/env bash
# Idempotent set-up of panbench's virtual environment (.venv at the repository root).
#
# Steps: venv -> torch -> build tools, numpy, mmengine -> mmcv 2.1.0 -> mmdet -> panopticapi and the rest
# -> panbench itself (editable, with its C extensions).  Nothing is compiled but panbench's own C.
# Every step prints "[setup k/N] ..." and, on failure, which step failed and what to do.
#
# mmcv: by default `mmcv-lite==2.1.0` (mmcv's pure-Python wheel, no compile) and panbench's own
# implementation of the compiled mmcv functions inference needs (panbench.ops, installed as mmcv._ext).
# PANBENCH_MMCV=compiled installs mmcv 2.1.0 with its compiled ops instead (scripts/install_mmcv.sh: a
# cached wheel, OpenMMLab's prebuilt one, else a compile of 10 min to an hour); the choice is remembered
# in .venv/panbench-mmcv until PANBENCH_MMCV=lite.  `make setup-mmcv` is that opt-in.
#
# torch: a torch the Python already has (Colab, a CUDA image, conda) is kept: the venv is made with
# --system-site-packages, every install goes through pip (uv does not see system site-packages, so it
# would install a second torch into the venv, shadowing the first) and pip's constraints pin the present
# torch and torchvision before the first install.  Otherwise torch 2.13.0 is installed: the CPU build
# without a GPU, with nvidia-smi the CUDA build its driver supports (scripts/cuda_setup.py torch-build).
#
# Packages are installed with uv (PyPI's `uv`, installed into the venv by pip in step 1) when torch is the
# venv's own; PANBENCH_NO_UV=1, a kept torch, or a uv that cannot be installed: pip.  uv does not read pip's
# configuration: its index, find-links and constraint settings (`pip config list`) and
# .venv/panbench-constraints.txt are passed to uv on its command line.
#
# The second environment (`make setup-vision`, PANBENCH_VISION=1): .venv-vision with torch 2.14.1 and the
# torchvision 0.29.1 built for it (PyPI's CUDA build, which runs on the CPU), timm, and the packages detectron2's
# evaluation imports (fvcore, iopath, omegaconf, hydra-core...; docs/setup.md#the-torchvision-environment).
#
# Environment:
#   PANBENCH_VISION=1 set up .venv-vision (torch with torchvision) instead of .venv
#   PYTHON            interpreter used to create the venv (default: python3.11, else python3)
#   PANBENCH_MMCV     lite (default) or compiled (mmcv's own compiled ops; see above)
#   PANBENCH_CACHE    where uv and compiled mmcv wheels are cached (default: ~/.cache/panbench)
#   PANBENCH_NO_UV=1  install with pip instead of uv
#   for PANBENCH_MMCV=compiled only:
#   MAX_JOBS          parallel compile jobs (default: min(cores, RAM GiB / 2))
#   PANBENCH_MMCV_INDEX  OpenMMLab's mmcv wheel indexes (default https://download.openmmlab.com/mmcv/dist)
#   CUDA_HOME         CUDA toolkit used to compile mmcv's CUDA ops for a CUDA torch (default: nvcc on PATH)
#   TORCH_CUDA_ARCH_LIST  GPU architectures to compile for (default: the visible GPUs'; all when none is visible)
#
# The venv keeps working when a user installs one more package: .venv/pip.conf points every pip of
# the venv at .venv/panbench-constraints.txt, which keeps setuptools 77.0.3-80.x (torch 2.13 needs
# >=77.0.3; mmengine 0.10.7 imports pkg_resources, which setuptools 82 removed) and the torch (and
# torchvision) version as installed, and mmcv, mmengine, mmdet and transformers at the versions the tests ran on
# (each family's Family.tested, its class in panbench/models/<family>/__init__.py, read in step 1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VISION="${PANBENCH_VISION:-0}"
[[ "$VISION" == 0 || "$VISION" == 1 ]] || { echo "[setup] PANBENCH_VISION=$VISION: use 1 (.venv-vision) or 0 (.venv)" >&2; exit 2; }
VENV="$ROOT/.venv"
[[ "$VISION" == 1 ]] && VENV="$ROOT/.venv-vision"
# the vision environment's torch and the torchvision built for it (one pair, as pip names them)
VISION_TORCH=(torch==2.14.1 torchvision==0.29.1)
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)
CACHE="${PANBENCH_CACHE:-$HOME/.cache/panbench}"
STAMP="$VENV/.panbench-setup-ok"
CHOICE_FILE="$VENV/panbench-mmcv"
N=7
T0=$(date +%s)

step() { echo "[setup $1/$N] $2"; }
fail() {
  echo "[setup] FAILED at step $1: $2" >&2
  echo "[setup] fix: $3" >&2
  exit 1
}
quiet_pip() {  # pip without its known harmless warnings; pip's exit status
  local out rc=0
  out="$("${PIP[@]}" "$@" 2>&1)" || rc=$?
  [[ -z "$out" ]] || grep -v -E "is ignored: it is neither|dependency resolver does not|requires numpy<2|^ERROR: pip.s" \
    <<<"$out" || true
  return "$rc"
}
SETUPTOOLS="setuptools>=77.0.3,<81"
CONSTRAINTS="$VENV/panbench-constraints.txt"
# pip reads $VIRTUAL_ENV/pip.conf (its "site" configuration) for every pip run with this venv's python
write_pip_conf() {
  { echo "# written by scripts/setup.sh: the versions panbench's environment needs (see there); pip reads it"
    echo "# through $VENV/pip.conf. Remove a line here to upgrade that package on purpose."
    echo "$SETUPTOOLS"
    for pkg in "$@" "${STACK_PINS[@]}"; do echo "$pkg"; done; } >"$CONSTRAINTS"
  printf '[install]\nconstraint = %s\n' "$CONSTRAINTS" >"$VENV/pip.conf"
}

# mmcv: lite (default) or compiled; an explicit PANBENCH_MMCV wins, else the venv's remembered choice
MMCV="${PANBENCH_MMCV:-}"
[[ -z "$MMCV" && -f "$CHOICE_FILE" ]] && MMCV="$(cat "$CHOICE_FILE")"
MMCV="${MMCV:-lite}"
[[ "$MMCV" == lite || "$MMCV" == compiled ]] || fail 0 "PANBENCH_MMCV=$MMCV" \
  "use PANBENCH_MMCV=lite (the default: no compile) or PANBENCH_MMCV=compiled (mmcv's compiled ops)"

# Fast path: everything installed from the same inputs as last time (checked without importing torch)
HASH_INPUTS="$( (cat "$ROOT/scripts/setup.sh" "$ROOT/scripts/install_mmcv.sh" "$ROOT/scripts/cuda_setup.py" \
  "$ROOT/scripts/compile_imports.py" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/panbench/models/{families.py,mmdet/__init__.py,hf/__init__.py} "$ROOT"/panbench/*/*.c; echo "mmcv=$MMCV vision=$VISION") | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH_INPUTS" ]] && "$PY" -c "
import importlib.metadata as md, importlib.util as u, sys
dist = {'lite': 'mmcv-lite', 'compiled': 'mmcv'}['$MMCV']
sys.exit(any(u.find_spec(m) is None for m in ('torch', 'mmcv', 'mmdet', 'panbench', 'panopticapi')
             + (('torchvision', 'timm') if $VISION else ()))
         or md.version(dist) != '2.1.0')" 2>/dev/null; then
  echo "[setup] up to date ($VENV, mmcv: $MMCV); nothing to do"
  exit 0
fi

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
  # pip: no bytecode compiled at install (as uv; Python compiles what it imports, once)
  if [[ -n "$UV" ]]; then "${INSTALL[@]}" "$@"; else quiet_pip install --no-compile "$@"; fi
}
# where torch is, and its version, without importing it (seconds saved): "<version> <path>" or nothing
torch_here() {
  "$PY" -W ignore -c 'import importlib.metadata as md, importlib.util as u
s = u.find_spec("torch")
if s is not None:
    print(md.version("torch"), s.submodule_search_locations[0])' 2>/dev/null || true
}

step 1 "virtual environment $VENV"
if [[ ! -x "$PY" ]]; then
  BASE_PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  VENV_FLAGS=()
  # a torch already installed for this Python (Colab, a CUDA image, conda) is kept: the venv sees it
  if "$BASE_PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" 2>/dev/null; then
    if "$BASE_PY" -c "import sys; sys.exit(sys.prefix == sys.base_prefix)"; then
      # a venv made from a venv sees the base interpreter's site-packages, not that venv's
      echo "        note: $BASE_PY is a venv: .venv cannot see its torch and gets its own; to use that torch," \
        "install panbench into that venv instead (pip install -e '.[mmdet]', docs/setup.md)"
    else
      VENV_FLAGS=(--system-site-packages)
      echo "        found torch in $BASE_PY: the venv uses it (--system-site-packages) and installs with pip"
    fi
  fi
  "$BASE_PY" -m venv "${VENV_FLAGS[@]}" "$VENV" || fail 1 "could not create the venv with $BASE_PY" \
    "install Python 3.11-3.13 with venv support (apt-get install python3.11-venv) or set PYTHON=/path/to/python3"
fi
# the models' packages at the versions the tests ran on (Family.tested): pinned in the constraints from here on
# (mmcv's pin, mmcv-lite or mmcv, follows in step 4)
declare -A TESTED
while read -r name version; do TESTED[$name]=$version; done < <(PYTHONPATH="$ROOT" "$PY" -c "
from panbench.models.families import tested_versions
for name, version in tested_versions().items(): print(name, version)") || true
[[ -n "${TESTED[mmdet]:-}" && -n "${TESTED[mmengine]:-}" && -n "${TESTED[transformers]:-}" ]] \
  || fail 1 "could not read the tested versions from the families of $ROOT/panbench/models/families.py" \
  "run $PY -c 'import panbench.models.families' from $ROOT to see the error"
STACK_PINS=("mmengine==${TESTED[mmengine]}" "mmdet==${TESTED[mmdet]}" "transformers==${TESTED[transformers]}")
read -r TORCH_VERSION TORCH_DIR <<<"$(torch_here)" || true
KEPT_TORCH=0
if [[ -n "${TORCH_DIR:-}" && "$TORCH_DIR" != "$VENV"/* ]]; then
  # torch outside the venv (system site-packages): pip sees it and, with the pins below, keeps it
  KEPT_TORCH=1
  PINS=("torch==$TORCH_VERSION")
  TV="$("$PY" -c 'import importlib.metadata as md; print(md.version("torchvision"))' 2>/dev/null || true)"
  [[ -n "$TV" ]] && PINS+=("torchvision==$TV")
  write_pip_conf "${PINS[@]}"
  echo "        keeping $TORCH_DIR (torch $TORCH_VERSION${TV:+, torchvision $TV}): pinned for every install"
else
  PINS=()
  [[ -n "${TORCH_VERSION:-}" ]] && PINS=("torch==$TORCH_VERSION")
  write_pip_conf "${PINS[@]}"
  use_uv
fi

step 2 "torch"
if [[ -n "${TORCH_VERSION:-}" ]]; then
  echo "        keeping torch $TORCH_VERSION ($TORCH_DIR)"
else
  BUILD="$("$PY" "$ROOT/scripts/cuda_setup.py" torch-build 2>"$VENV/torch-build.txt")" || BUILD=cpu
  [[ "$VISION" == 1 ]] || echo "        $(cat "$VENV/torch-build.txt")"
  if [[ "$VISION" == 1 ]]; then
    echo "        ${VISION_TORCH[*]} (PyPI's builds: CUDA, which run on the CPU too)"
    pkg_install "${VISION_TORCH[@]}" || fail 2 "installing ${VISION_TORCH[*]} failed" \
      "check network access to PyPI (pip install ${VISION_TORCH[*]} into $VENV) and rerun make setup-vision"
  elif [[ "$BUILD" == cu* ]]; then
    # with its torchvision: panbench's CUDA ops run nms and RoIAlign with torchvision's kernels
    pkg_install --extra-index-url "https://download.pytorch.org/whl/$BUILD" "torch==2.13.0+$BUILD" \
      "torchvision==0.28.0+$BUILD" \
      || pkg_install torch==2.13.0 torchvision==0.28.0 \
      || fail 2 "installing torch 2.13.0+$BUILD failed" \
      "check network access to download.pytorch.org/whl/$BUILD, or install a torch into the Python you set up with (the set-up keeps it)"
  else
    # the CPU build: from the configured indexes if one carries it, else PyTorch's CPU index, else PyPI's
    # plain Linux wheel (a CUDA build, which runs on the CPU; some 4 GB with its CUDA libraries)
    pkg_install "torch==2.13.0+cpu" 2>/dev/null \
      || pkg_install --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0+cpu" 2>/dev/null \
      || { echo "        no CPU build of torch 2.13.0 reachable for this Python: PyPI's torch==2.13.0 (a CUDA build; runs on the CPU)"
           pkg_install torch==2.13.0; } \
      || fail 2 "installing torch 2.13.0 failed" \
      "install a torch into .venv by hand (.venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu) and rerun make setup"
  fi
  read -r TORCH_VERSION TORCH_DIR <<<"$(torch_here)" || true
  [[ -n "${TORCH_VERSION:-}" ]] || fail 2 "torch is not installed after step 2" "remove .venv and rerun make setup"
  PINS=("torch==$TORCH_VERSION")
  write_pip_conf "${PINS[@]}"  # nothing later may replace it
fi
echo "        torch $TORCH_VERSION"
# a CUDA torch (installed above or kept) needs its torchvision; one that is present is kept
TORCH_CUDA="$("$PY" -W ignore -c 'import importlib.util, os
ns = {}
exec(open(os.path.join(importlib.util.find_spec("torch").submodule_search_locations[0], "version.py")).read(), ns)
print(ns.get("cuda") or "")')"
if [[ -n "$TORCH_CUDA" && -z "$("$PY" -c 'import importlib.metadata as md; print(md.version("torchvision"))' 2>/dev/null)" ]]; then
  mapfile -t TV_PIN < <("$PY" "$ROOT/scripts/cuda_setup.py" torchvision "$TORCH_VERSION")
  echo "        CUDA torch without torchvision: installing ${TV_PIN[0]} (panbench's CUDA nms and RoIAlign use it)"
  pkg_install ${TV_PIN[1]:+--extra-index-url "${TV_PIN[1]}"} "${TV_PIN[0]}" \
    || fail 2 "installing ${TV_PIN[0]} failed" \
    "install the torchvision built for torch $TORCH_VERSION into .venv by hand (pytorch.org/get-started) and rerun make setup"
fi

step 3 "build tools ($SETUPTOOLS: mmengine imports pkg_resources, torch needs >=77.0.3), numpy, mmengine"
pkg_install "$SETUPTOOLS" wheel numpy psutil opencv-python-headless addict packaging Pillow pyyaml yapf \
  "mmengine==${TESTED[mmengine]}" || fail 3 "installing build tools failed" "check network access to PyPI and rerun make setup"

# mmcv-lite and mmcv install the same `mmcv` package: the other one goes first, so that neither's
# uninstall can later remove the other's files
dist_version() { "$PY" -c "import importlib.metadata as md; print(md.version('$1'))" 2>/dev/null || true; }
if [[ "$MMCV" == lite ]]; then
  step 4 "mmcv-lite 2.1.0 (mmcv's Python code, no compile; its compiled functions come from panbench.ops)"
  REINSTALL=0
  if [[ -n "$(dist_version mmcv)" ]]; then
    echo "        removing the compiled mmcv $(dist_version mmcv) (PANBENCH_MMCV=compiled make setup keeps it)"
    quiet_pip uninstall -y mmcv || fail 4 "pip uninstall mmcv failed" "remove .venv and rerun make setup"
    REINSTALL=1  # its uninstall removed the files the two share
  fi
  if [[ "$REINSTALL" == 1 || "$(dist_version mmcv-lite)" != 2.1.0 ]]; then
    # the wheel from the index only: never a locally built (or pip-cached) wheel with compiled ops
    if [[ -n "$UV" ]]; then
      pkg_install --only-binary mmcv-lite --reinstall-package mmcv-lite mmcv-lite==2.1.0
    else
      quiet_pip install --no-compile --no-cache-dir --only-binary mmcv-lite --force-reinstall --no-deps \
        mmcv-lite==2.1.0 && pkg_install mmcv-lite==2.1.0
    fi || fail 4 "installing mmcv-lite 2.1.0 failed" "check network access to PyPI and rerun make setup"
  fi
  MMCV_PIN=mmcv-lite==2.1.0
else
  CUDA_V="$("$PY" -W ignore -c 'import importlib.util, os
ns = {}
exec(open(os.path.join(importlib.util.find_spec("torch").submodule_search_locations[0], "version.py")).read(), ns)
print(ns.get("cuda") or "")')"
  JOBS="${MAX_JOBS:-$("$PY" "$ROOT/scripts/cuda_setup.py" max-jobs)}"
  BUILD_ENV=(MMCV_WITH_OPS=1 MAX_JOBS="$JOBS")
  ARCHS=""
  if [[ -n "$CUDA_V" ]]; then
    # a CUDA torch: mmcv must be compiled with its CUDA ops even where no GPU is visible at build time
    # (without FORCE_CUDA=1 mmcv's setup.py checks torch.cuda.is_available() and silently leaves them out)
    TOOLKIT="$("$PY" "$ROOT/scripts/cuda_setup.py" toolkit)" || fail 4 "no CUDA toolkit that fits this CUDA torch" \
      "see the message above"
    # shellcheck disable=SC2086
    BUILD_ENV+=(FORCE_CUDA=1 $TOOLKIT)
    ARCHS="${TORCH_CUDA_ARCH_LIST:-$(sed -nE 's/^TORCH_CUDA_ARCH_LIST=(.*)$/\1/p' <<<"$TOOLKIT")}"
  fi
  # the wheel holds kernels for these GPU architectures only: another GPU type gets another wheel
  KEY="$("$PY" "$ROOT/scripts/cuda_setup.py" wheel-tag "$TORCH_VERSION" "$CUDA_V" "$ARCHS")"
  TORCH_TAG="${KEY%-arch*}"  # names OpenMMLab's prebuilt wheel index (scripts/install_mmcv.sh)
  WHEELDIR="$CACHE/wheels/mmcv-2.1.0-$KEY"
  step 4 "mmcv 2.1.0 with its compiled ops (PANBENCH_MMCV=compiled) for $KEY, MAX_JOBS=$JOBS (cache: $WHEELDIR)"
  if [[ -n "$(dist_version mmcv-lite)" ]]; then
    echo "        removing mmcv-lite"
    quiet_pip uninstall -y mmcv-lite || fail 4 "pip uninstall mmcv-lite failed" "remove .venv and rerun make setup"
  fi
  PANBENCH_UV="$UV" bash "$ROOT/scripts/install_mmcv.sh" "$PY" "$WHEELDIR" "$TORCH_TAG" "${BUILD_ENV[@]}" \
    || exit 1  # it said what failed and the fix
  MMCV_PIN=mmcv==2.1.0
fi
echo "$MMCV" >"$CHOICE_FILE"
write_pip_conf "${PINS[@]}" "$MMCV_PIN"

step 5 "mmdet ${TESTED[mmdet]} and its dependencies"
pkg_install "mmdet==${TESTED[mmdet]}" "$SETUPTOOLS" \
  || fail 5 "pip install mmdet==${TESTED[mmdet]} failed" "check network access to PyPI and rerun make setup"

step 6 "panopticapi (panopticapi-lite, no deps: its numpy<2 pin is stale), imagecorruptions (no deps: it asks for opencv-python beside opencv-python-headless), pycocotools, pandas, matplotlib, cityscapesscripts, transformers ${TESTED[transformers]} (hf: models), timm where a fitting torchvision is, test and packaging tools"
pkg_install --no-deps panopticapi-lite==0.2.0 imagecorruptions==1.1.2 \
  || fail 6 "pip install panopticapi-lite imagecorruptions failed" "check network access to PyPI and rerun make setup"
pkg_install pyspng deflate pycocotools scikit-image scipy pandas pyarrow matplotlib tqdm tabulate pytest "pytest-xdist>=3.6" hypothesis ruff mypy hotcoco \
  torchmetrics==1.9.0 vernier==0.5.4 lightning==2.6.6 nbclient nbformat ipykernel cityscapesscripts "transformers==${TESTED[transformers]}" submitit build twine \
  || fail 6 "installing the test tools failed" "check network access to PyPI and rerun make setup"

# timm (DETR's hub checkpoints build their backbone with it) requires torchvision: only beside one that fits this
# torch (PyPI's torchvision, a CUDA build, does not load with a CPU torch and breaks `import torchvision` for all)
TV="$(dist_version torchvision)"
if [[ -n "$TV" ]]; then
  pkg_install timm "torchvision==$TV" || fail 6 "pip install timm failed" "check network access to PyPI and rerun make setup"
  if [[ "$VISION" == 1 ]]; then  # what detectron2's evaluation imports (../shared/vendor/README.md; detectron2 itself is not on PyPI)
    pkg_install fvcore iopath cloudpickle omegaconf hydra-core termcolor yacs "torchvision==$TV" \
      || fail 6 "installing detectron2's evaluation packages failed" "check network access to PyPI and rerun make setup-vision"
  fi
else
  echo "        note: no torchvision beside torch $TORCH_VERSION: timm (DETR's hub checkpoints) not installed; to add" \
       "it: $("$PY" "$ROOT/scripts/cuda_setup.py" install timm "${VENV#"$ROOT"/}/bin/pip")"
fi

step 7 "panbench (editable; compiles its C extensions, panbench/**/_*.c, a few seconds)"
CC_BIN="${CC:-cc}"
command -v "${CC_BIN%% *}" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 \
  || fail 7 "no C compiler (panbench compiles its C extensions)" "install one (apt-get install gcc; conda install gcc) and rerun"
pkg_install --no-deps --no-build-isolation -e "$ROOT" || fail 7 "pip install -e . failed" "run .venv/bin/pip install -e . to see the error"
# the mmcv._ext import hook a wheel install puts into site-packages (panbench/ops/hook.py): mmdet's own tools
# work in this venv without importing panbench first
cp "$ROOT/panbench/ops/panbench-mmcv-ext.pth" "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/" \
  || fail 7 "could not write the mmcv._ext hook into site-packages" "check that .venv is writable, or remove it and rerun"
WANT_OPS=panbench; [[ "$MMCV" == compiled ]] && WANT_OPS=mmcv
# one process (each import of torch costs seconds): the ops backend, the stack, and the torch that was kept
"$PY" -W ignore -c "import sys
import panbench.ops as o
backend = o.install()
import mmdet, mmcv.ops, panopticapi, torch
if backend != '$WANT_OPS':
    sys.exit(f'mmcv ops backend {backend}, expected $WANT_OPS (PANBENCH_MMCV=$MMCV)')
import importlib.metadata as md  # its version as pip names it (PyPI's 2.13.0 reports 2.13.0+cu130 itself)
if md.version('torch') != '$TORCH_VERSION' or not torch.__file__.startswith('$TORCH_DIR/'):
    sys.exit(f'torch changed during set-up: {md.version(\"torch\")} at {torch.__file__}, was $TORCH_VERSION at $TORCH_DIR')
print(f'        mmcv ops: {backend}; torch {torch.__version__} ({\"CUDA \" + torch.version.cuda if torch.version.cuda else \"CPU build\"})')
" || fail 7 "a package does not import (message above)" "run .venv/bin/panbench doctor"

TV="$(dist_version torchvision)"
[[ -n "$TV" && "${PINS[*]}" != *torchvision* ]] && PINS+=("torchvision==$TV")
write_pip_conf "${PINS[@]}" "$MMCV_PIN"
"$PY" -W ignore -c "import pkg_resources" 2>/dev/null || fail 7 "pkg_resources does not import (setuptools >= 81?)" \
  ".venv/bin/pip install '$SETUPTOOLS'"

# bytecode (.pyc): Python writes each module's on its first import, except under PYTHONDONTWRITEBYTECODE, where it
# reads .pyc files but never writes them and each command would compile again all it imports: there, and only
# there, what panbench's commands import is compiled once (scripts/compile_imports.py; docs/setup.md#bytecode)
if [[ -n "${PYTHONDONTWRITEBYTECODE:-}" ]]; then
  echo "        PYTHONDONTWRITEBYTECODE is set: compiling the modules panbench's commands import (seconds to a minute)"
  LISTED="$CACHE/bytecode/$HASH_INPUTS-$("$PY" -c 'import sys; print(sys.implementation.cache_tag)').txt"
  PYTHONPATH="$ROOT" "$PY" -W ignore "$ROOT/scripts/compile_imports.py" --list "$LISTED" || true  # compile-bytecode
fi
echo "$HASH_INPUTS" >"$STAMP"
echo "[setup] done in $(( $(date +%s) - T0 )) s (mmcv: $MMCV$([[ $KEPT_TORCH == 1 ]] && echo ", torch kept from $TORCH_DIR"))"
