"""PyPI's CUDA torch and torchvision (they run on the CPU) in a venv of their own: the pair the set-up installs
with a CUDA torch passes panbench's pairing check and ``panbench doctor``'s torchvision check, and torchvision's
nms and RoIAlign (panbench's CUDA ops) load and run.

A download of some 4.8 GB: opt-in with ``PANBENCH_CUDA_PAIR_TEST=1``; the venv is kept in
``$PANBENCH_CACHE/cuda-pair-venv`` (default ``~/.cache/panbench``), and the test runs whenever it is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.system]

PAIR = ("torch==2.13.0", "torchvision==0.28.0")  # what scripts/setup.sh step 2 falls back to from PyPI
VENV = Path(os.environ.get("PANBENCH_CACHE", Path.home() / ".cache" / "panbench")) / "cuda-pair-venv"

CHECK = """
import torch, torchvision.ops
from panbench.cli.doctor import torchvision_check
from panbench.ops.pairing import pairing_problem
import importlib.metadata as md
assert torch.version.cuda, "not a CUDA build of torch"
assert pairing_problem(torch.__version__, md.version("torchvision")) is None
ok, detail = (check := torchvision_check()).ok, check.detail
assert ok, detail
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]])
print(torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist(),
      tuple(torchvision.ops.roi_align(torch.ones(1, 1, 8, 8), [boxes], 2).shape), detail)
"""


@pytest.fixture(scope="module")
def pair_python() -> Path:
    py = VENV / "bin" / "python"
    ready = VENV / ".installed"
    if not ready.is_file():
        if os.environ.get("PANBENCH_CUDA_PAIR_TEST") != "1":
            pytest.skip(f"opt-in (a 4.8 GB download): PANBENCH_CUDA_PAIR_TEST=1; the venv is then kept in {VENV}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        # PyPI's own wheels, not a local CPU build of torch that the machine's pip configuration may offer
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--index-url",
                        "https://pypi.org/simple", *PAIR], check=True, timeout=3600, env=env)
        ready.write_text(" ".join(PAIR) + "\n")
    return py


def test_pypi_cuda_torch_and_its_torchvision_pair_and_their_ops_run_on_the_cpu(pair_python) -> None:
    out = subprocess.run([str(pair_python), "-W", "ignore", "-c", CHECK], capture_output=True, text=True,
                         timeout=600, env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split(" ", 4)[:4] == ["[0]", "(2,", "1,", "2,"], out.stdout
    assert "0.28.0 (for torch 2.13.0" in out.stdout, out.stdout
