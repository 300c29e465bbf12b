"""CUDA checks for scripts/setup.sh (run with the venv's Python).

  cuda_setup.py mmcv      exit 0 when the installed mmcv 2.1.0 has its compiled ops and, for a CUDA
                          torch, was compiled with CUDA (and runs nms on a visible GPU); else print why
  cuda_setup.py toolkit   for a CUDA torch: find nvcc, compare its release with torch.version.cuda;
                          prints shell assignments (CUDA_HOME=..., TORCH_CUDA_ARCH_LIST=...) on stdout,
                          warnings on stderr; exit 1 with the fix when the build cannot work
  cuda_setup.py torch-build   (any Python, no torch needed) which build of torch to install: reads
                          ``nvidia-smi``; prints ``cpu`` or ``cuXYZ`` on stdout and the reason on stderr
  cuda_setup.py max-jobs  parallel nvcc/g++ jobs for compiling mmcv: min(cores, RAM GiB / 2), at least 1
  cuda_setup.py wheel-tag TORCH_VERSION CUDA ARCHS   the compiled-mmcv wheel cache's folder tag (see wheel_tag)
  cuda_setup.py torchvision TORCH_VERSION   the torchvision that pairs with this torch: prints
                          ``torchvision==0.28.0+cu130`` and, for a PyTorch-index build, its index URL on a second line
  cuda_setup.py install PACKAGE PIP   (the venv's Python) the command that installs PACKAGE with PIP beside the
                          installed torch (panbench.ops.pairing.install_command: timm with the torchvision it loads)
  cuda_setup.py half      (the venv's Python) the half precision for the visible GPUs: fp16 when one has compute
                          capability below 8.0 (no bf16 there, e.g. a T4 or a V100), else bf16 (also without a GPU)

The decisions are plain functions (tested in tests/evaluation/test_gpu_path.py and tests/test_setup_torch.py);
nothing here needs a GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # panbench's source, before it is installed
from panbench.ops.pairing import install_command, torchvision_for  # noqa: E402  (standard library only)


def mmcv_problem(torch_cuda: str | None, compiled_cuda: str) -> str | None:
    """Why the installed mmcv does not fit this torch (None: it fits).  ``compiled_cuda`` is
    ``mmcv.ops.get_compiling_cuda_version()``: "not available" for a build without CUDA ops."""
    if torch_cuda and compiled_cuda == "not available":
        return (f"mmcv's ops were compiled without CUDA, but torch is a CUDA {torch_cuda} build "
                "(built on a machine with no GPU visible and without FORCE_CUDA=1)")
    return None


def installed_mmcv_problem() -> str | None:
    """:func:`mmcv_problem` for the installed stack, plus nms on the GPU when one is visible."""
    try:
        import mmcv
        import torch
        from mmcv.ops import get_compiling_cuda_version, nms
    except Exception as e:  # not installed or the compiled ops do not load
        return f"mmcv's ops do not import ({type(e).__name__}: {e})".splitlines()[0]
    if mmcv.__version__ != "2.1.0":
        return f"mmcv {mmcv.__version__} installed, panbench needs 2.1.0"
    gpu = bool(torch.version.cuda) and torch.cuda.is_available()
    problem = mmcv_problem(torch.version.cuda, get_compiling_cuda_version())
    if problem or not gpu:
        return problem
    try:
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]], device="cuda")
        nms(boxes, torch.tensor([0.9, 0.8], device="cuda"), iou_threshold=0.5)
    except Exception as e:
        return f"mmcv's nms does not run on the GPU ({type(e).__name__}: {e})".splitlines()[0]
    return None


def nvcc_release(nvcc: str) -> str | None:
    """``12.1`` from ``nvcc --version`` (None when it does not run)."""
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\d+\.\d+)", out)
    return m.group(1) if m else None


def find_nvcc(env: dict[str, str]) -> str | None:
    """nvcc from ``$CUDA_HOME/bin``, then ``PATH``, then /usr/local/cuda."""
    for cand in ([str(Path(env["CUDA_HOME"]) / "bin" / "nvcc")] if env.get("CUDA_HOME") else []) + \
            [shutil.which("nvcc", path=env.get("PATH")) or "", "/usr/local/cuda/bin/nvcc"]:
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def toolkit_verdict(torch_cuda: str, nvcc: str | None, release: str | None) -> tuple[str | None, str | None]:
    """(error with its fix, warning) for building mmcv's CUDA ops against a CUDA ``torch_cuda`` torch."""
    want = ".".join(torch_cuda.split(".")[:2])
    tag = want.replace(".", "")
    if nvcc is None:
        return (f"torch is a CUDA {want} build, and compiling mmcv's CUDA ops needs nvcc from the CUDA toolkit, "
                f"but no nvcc was found (CUDA_HOME, PATH, /usr/local/cuda): install the CUDA {want} toolkit "
                f"(NVIDIA's cuda-toolkit-{want.replace('.', '-')} package, or conda's nvidia::cuda-toolkit={want}) and "
                f"export CUDA_HOME=/usr/local/cuda-{want} PATH=$CUDA_HOME/bin:$PATH, then rerun make setup", None)
    if release is None:
        return f"{nvcc} does not run (nvcc --version fails); fix the CUDA toolkit or set CUDA_HOME", None
    if release.split(".")[0] != want.split(".")[0]:
        return (f"the CUDA toolkit is {release} ({nvcc}) but torch is built for CUDA {want}: torch refuses to build "
                f"extensions across major versions; install the CUDA {want} toolkit and set CUDA_HOME to it, or "
                f"install a torch for CUDA {release} (.venv/bin/pip install torch==<version> --index-url "
                f"https://download.pytorch.org/whl/cu{release.replace('.', '')}) and rerun make setup", None)
    if release != want:
        return None, (f"the CUDA toolkit is {release}, torch is built for CUDA {want} (cu{tag}): same major version, "
                      "the build usually works; if it fails, install the CUDA " + want + " toolkit")
    return None, None


def _toolkit() -> int:
    import torch

    if not torch.version.cuda:
        return 0
    nvcc = find_nvcc(dict(os.environ))
    err, warn = toolkit_verdict(torch.version.cuda, nvcc, nvcc_release(nvcc) if nvcc else None)
    if err:
        print(err, file=sys.stderr)
        return 1
    if warn:
        print(f"        warning: {warn}", file=sys.stderr)
    assert nvcc is not None
    print(f"CUDA_HOME={Path(nvcc).resolve().parent.parent}")
    if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        if torch.cuda.is_available():
            caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
            archs = sorted(f"{major}.{minor}" for major, minor in caps)
            print(f"TORCH_CUDA_ARCH_LIST={';'.join(archs)}")
        else:
            print("        note: no GPU visible: mmcv's CUDA ops are compiled for every architecture this torch "
                  "supports (much slower); set TORCH_CUDA_ARCH_LIST (e.g. 7.5 for a T4, 8.0 for an A100, 9.0 for "
                  "an H100) to build for yours only", file=sys.stderr)
    return 0


# The CUDA builds PyTorch publishes for torch 2.13.0 on download.pytorch.org/whl/<tag> (PyPI's plain Linux
# wheel is the newest of them).  Taken from PyTorch's install matrix of its recent releases (cu126, cu128 and
# cu130); not checked against download.pytorch.org from the development machine (no network to it).
TORCH_CUDA_BUILDS = ("12.6", "12.8", "13.0")
# The oldest GPUs each build still has kernels for: CUDA 13 builds leave out Volta (compute capability 7.0)
# and older; the CUDA 12.8 build leaves out Maxwell and Pascal (below 7.0).
MIN_CAPABILITY = {"12.6": (5, 0), "12.8": (7, 0), "13.0": (7, 5)}


def driver_cuda(nvidia_smi: str) -> str | None:
    """The newest CUDA version the driver supports (``12.4``), from ``nvidia-smi``'s header
    (``... Driver Version: 550.54.15  CUDA Version: 12.4 ...``); None when it does not say."""
    m = re.search(r"CUDA Version\s*:\s*(\d+)\.(\d+)", nvidia_smi)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def torch_build(driver: str | None, capabilities: list[tuple[int, int]]) -> tuple[str, str]:
    """(``cuXYZ`` or ``cpu``, the reason in one line) for installing torch 2.13.0 on a machine whose driver
    supports CUDA ``driver`` (None: no GPU or no driver) with GPUs of these compute capabilities: the newest
    build the driver runs and that still has kernels for every GPU."""
    if driver is None:
        return "cpu", "no NVIDIA driver (nvidia-smi) found: the CPU build of torch"
    fits = [b for b in TORCH_CUDA_BUILDS if _key(b) <= _key(driver)
            and all(c >= MIN_CAPABILITY[b] for c in capabilities)]
    if not fits:
        oldest = min(capabilities) if capabilities else None
        why = (f"the driver supports CUDA {driver}, torch 2.13.0's builds need CUDA "
               f"{TORCH_CUDA_BUILDS[0]} or newer" if not any(_key(b) <= _key(driver) for b in TORCH_CUDA_BUILDS)
               else f"no torch 2.13.0 build has kernels for compute capability {oldest[0]}.{oldest[1]}")
        return "cpu", (f"{why}: the CPU build of torch (update the NVIDIA driver, or install a torch that fits "
                       "into the Python you set up with and rerun: the set-up keeps an installed torch)")
    best = fits[-1]
    tag = "cu" + best.replace(".", "")
    return tag, f"the driver supports CUDA {driver}: torch 2.13.0+{tag} (download.pytorch.org/whl/{tag})"


def _torchvision(torch_version: str) -> int:
    pin = torchvision_for(torch_version)
    print(f"torchvision=={pin}")
    local = pin.partition("+")[2]
    if local:  # a PyTorch-index build (cu130, cpu): the same index carries its torchvision
        print(f"https://download.pytorch.org/whl/{local}")
    return 0


def gpu_capabilities(nvidia_smi_query: str) -> list[tuple[int, int]]:
    """``[(7, 5)]`` from ``nvidia-smi --query-gpu=compute_cap --format=csv,noheader`` (one ``7.5`` a line)."""
    out = []
    for line in nvidia_smi_query.splitlines():
        m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", line)
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
    return out


def max_jobs(cores: int, mem_bytes: int) -> int:
    """Parallel compile jobs for mmcv: nvcc takes up to about 2 GiB per job, so min(cores, RAM GiB / 2)."""
    return max(1, min(cores, mem_bytes // (2 * 1024 ** 3)))


def wheel_tag(python: tuple[int, int], torch_version: str, cuda: str, archs: str) -> str:
    """The compiled-mmcv wheel cache key: Python, torch, its CUDA and, for CUDA, the GPU architectures the
    wheel's kernels are compiled for (``TORCH_CUDA_ARCH_LIST``; "all" when unset): a wheel built for a T4
    (7.5) has no kernels for an A100 (8.0), so each list gets its own wheel."""
    tag = f"cp{python[0]}{python[1]}-torch{torch_version.split('+')[0]}-" + (f"cu{cuda}" if cuda else "cpu")
    if cuda:
        arch = ";".join(sorted(a.strip() for a in archs.replace(" ", ";").split(";") if a.strip())) or "all"
        tag += "-arch" + re.sub(r"[^0-9A-Za-z.+]", "_", arch)
    return tag


def half_precision(capabilities: list[tuple[int, int]]) -> str:
    """``--amp`` for these GPUs: bf16 needs compute capability 8.0 (Ampere) or newer, fp16 runs on all;
    bf16 when there is no GPU (the CPU runs it)."""
    return "fp16" if capabilities and min(capabilities) < (8, 0) else "bf16"


def _half() -> int:
    import torch

    caps = ([torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available() else [])
    print(half_precision(caps))
    return 0


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _torch_build() -> int:
    smi = shutil.which("nvidia-smi")
    header = _run([smi]) if smi else ""
    caps = gpu_capabilities(_run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"])) if smi else []
    tag, why = torch_build(driver_cuda(header), caps)
    print(tag)
    print(why, file=sys.stderr)
    return 0


def _max_jobs() -> int:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(max_jobs(os.cpu_count() or 1, mem))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["mmcv"]:
        problem = installed_mmcv_problem()
        if problem:
            print(problem, file=sys.stderr)
        return 1 if problem else 0
    if argv[:1] == ["toolkit"]:
        return _toolkit()
    if argv[:1] == ["torch-build"]:
        return _torch_build()
    if argv[:1] == ["max-jobs"]:
        return _max_jobs()
    if argv[:1] == ["wheel-tag"] and len(argv) == 4:
        print(wheel_tag(sys.version_info[:2], argv[1], argv[2], argv[3]))
        return 0
    if argv[:1] == ["torchvision"] and len(argv) == 2:
        return _torchvision(argv[1])
    if argv[:1] == ["install"] and len(argv) == 3:
        print(install_command(argv[1], argv[2]))
        return 0
    if argv[:1] == ["half"]:
        return _half()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
