"""Which torch the set-up installs, and that it keeps one that is there already.

- The torch build for a GPU machine is chosen from the driver's CUDA version (``nvidia-smi``) and the GPUs'
  compute capabilities (scripts/cuda_setup.py, plain functions); the compile jobs of the compiled-mmcv
  opt-in are bounded by memory.
- ``scripts/setup.sh`` run for real with a Python whose torch was installed beforehand (as on Colab, a CUDA
  image or conda, where torch is in the system's site-packages): after the set-up, ``.venv``'s torch is that
  same torch (same file, same version), and nothing was installed over it.  That Python is a stand-in for a
  system Python: the running interpreter's base binary with its standard library linked in and a
  site-packages of its own holding (links to) this venv's torch.  A venv made from a venv does not do: its
  ``--system-site-packages`` are those of the base interpreter, not of the venv it was made from.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT


def _cuda_setup():
    spec = importlib.util.spec_from_file_location("cuda_setup", REPO_ROOT / "scripts" / "cuda_setup.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SMI = """+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15              Driver Version: 550.54.15      CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
"""


def test_driver_cuda_version_is_read_from_nvidia_smi() -> None:
    cs = _cuda_setup()
    assert cs.driver_cuda(SMI) == "12.4"
    assert cs.driver_cuda(SMI.replace("12.4", "13.0")) == "13.0"
    assert cs.driver_cuda("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver") is None
    assert cs.gpu_capabilities("7.5\n8.0\n") == [(7, 5), (8, 0)]
    assert cs.gpu_capabilities("[N/A]\n") == []


@pytest.mark.parametrize("driver,caps,tag", [
    ("13.0", [(9, 0)], "cu130"),       # a new driver: the newest build (PyPI's plain wheel is that one)
    ("13.1", [(8, 0)], "cu130"),
    ("12.9", [(8, 0)], "cu128"),       # CUDA 12.9 driver: the newest build it runs
    ("12.8", [(7, 5)], "cu128"),       # Colab's T4 with a 570 driver
    ("12.6", [(8, 6)], "cu126"),
    ("13.0", [(7, 0)], "cu128"),       # Volta: the CUDA 13 build has no kernels for it
    ("13.0", [(6, 1)], "cu126"),       # Pascal: only the CUDA 12.6 build has them
    ("12.4", [(8, 0)], "cpu"),         # a driver too old for every torch 2.13.0 build
    (None, [], "cpu"),                 # no driver
])
def test_torch_build_is_the_newest_the_driver_and_gpus_run(driver, caps, tag) -> None:
    got, why = _cuda_setup().torch_build(driver, caps)
    assert got == tag, why
    assert "\n" not in why and (tag in why if tag != "cpu" else "CPU build" in why)


def test_too_old_driver_says_what_to_do() -> None:
    _, why = _cuda_setup().torch_build("12.2", [(8, 0)])
    assert "driver supports CUDA 12.2" in why and "12.6 or newer" in why and "update the NVIDIA driver" in why
    _, why = _cuda_setup().torch_build("13.0", [(3, 7)])
    assert "compute capability 3.7" in why


def test_compile_jobs_are_bounded_by_memory() -> None:
    cs = _cuda_setup()
    gib = 1024 ** 3
    assert cs.max_jobs(64, 32 * gib) == 16
    assert cs.max_jobs(2, 128 * gib) == 2
    assert cs.max_jobs(16, 1 * gib) == 1


def _system_python_with_torch(root: Path) -> tuple[Path, Path]:
    """A stand-in for a system Python whose site-packages holds torch: (its python, its torch folder)."""
    import torch

    base_exe = Path(sys._base_executable).resolve()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (root / "bin").mkdir(parents=True)
    lib = root / "lib" / ver
    site = lib / "site-packages"
    site.mkdir(parents=True)
    shutil.copy2(base_exe, root / "bin" / ver)  # a copy: Python looks for its library next to the binary
    for entry in stdlib.iterdir():
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    torch_dir = Path(torch.__file__).parent
    dist = md.distribution("torch")
    for name in {"torch", "torchgen", "functorch", Path(str(dist._path)).name}:  # the files torch's wheel installs
        src = torch_dir.parent / name
        if src.exists():
            (site / name).symlink_to(src)
    return root / "bin" / ver, site / "torch"


@pytest.mark.slow
@pytest.mark.system
def test_setup_keeps_a_torch_installed_beforehand(tmp_path: Path) -> None:
    import torch

    python, torch_dir = _system_python_with_torch(tmp_path / "system")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "Makefile"):
        shutil.copy2(REPO_ROOT / name, repo / name)
    for name in ("scripts", "panbench"):
        shutil.copytree(REPO_ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    # as on the machines it stands for (Colab, a CUDA image, conda), Python writes bytecode: the step compiling it
    # where PYTHONDONTWRITEBYTECODE is set (every command's imports, then their compile) is test_setup_stack.py's
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHON=str(python), PANBENCH_CACHE=str(tmp_path / "cache"))
    r = subprocess.run(["bash", str(repo / "scripts" / "setup.sh")], capture_output=True, text=True, env=env,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"keeping {torch_dir} (torch {torch.__version__}" in r.stdout
    venv_py = repo / ".venv" / "bin" / "python"
    after = subprocess.run([str(venv_py), "-c", "import torch; print(torch.__version__, torch.__file__)"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert after == [torch.__version__, str(torch_dir / "__init__.py")]
    assert not list((repo / ".venv").glob("lib/python3*/site-packages/torch"))  # nothing shadows it
    constraints = (repo / ".venv" / "panbench-constraints.txt").read_text().splitlines()
    assert f"torch=={torch.__version__}" in constraints
    from panbench.models.families import tested_versions

    assert {f"{n}=={v}" for n, v in tested_versions().items() if n != "mmcv"} <= set(constraints)  # transformers too
    assert "mmcv ops: panbench" in r.stdout and "torch kept from" in r.stdout
    dists = subprocess.run([str(venv_py), "-c", "import importlib.metadata as md\nfor d in ('mmcv-lite', 'mmcv'):\n"
                            "    try: print(d, md.version(d))\n    except md.PackageNotFoundError: print(d, None)"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert dists == ["mmcv-lite 2.1.0", "mmcv None"]  # the default: mmcv-lite, no compiled mmcv


def test_bench_gpu_runs_fp16_below_compute_capability_8() -> None:
    cs = _cuda_setup()
    assert cs.half_precision([(7, 5)]) == "fp16"          # T4
    assert cs.half_precision([(7, 0), (8, 0)]) == "fp16"  # one V100 among the GPUs
    assert cs.half_precision([(8, 0)]) == "bf16" and cs.half_precision([(9, 0), (8, 9)]) == "bf16"
    assert cs.half_precision([]) == "bf16"                # no GPU: the CPU runs bf16
    text = (REPO_ROOT / "scripts" / "bench_gpu.sh").read_text()
    assert 'HALF="$($PY scripts/cuda_setup.py half)"' in text and 'AMPS="fp32 $HALF"' in text


def test_compiled_mmcv_wheel_cache_key_holds_the_gpu_architectures() -> None:
    cs = _cuda_setup()
    assert cs.wheel_tag((3, 11), "2.13.0+cpu", "", "") == "cp311-torch2.13.0-cpu"  # the CPU wheel: no GPU code
    t4 = cs.wheel_tag((3, 12), "2.11.0+cu128", "12.8", "7.5")
    a100 = cs.wheel_tag((3, 12), "2.11.0+cu128", "12.8", "8.0")
    assert t4 == "cp312-torch2.11.0-cu12.8-arch7.5" and a100 != t4
    assert cs.wheel_tag((3, 12), "2.11.0", "12.8", "8.0;7.5") == cs.wheel_tag((3, 12), "2.11.0", "12.8", "7.5 8.0")
    assert cs.wheel_tag((3, 13), "2.11.0", "12.8", "").endswith("-archall")  # every architecture torch supports
