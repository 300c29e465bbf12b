"""Start-up: panbench skips mmengine/mmdet's training-only imports while registering mmdet, and
leaves nothing behind (the real modules import afterwards; PANBENCH_FULL_IMPORTS=1 turns it off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from panbench.package import REPO_ROOT

PROBE = """
import json, sys
from panbench.models.mmdet import mm
mm.init_mmdet()
skipped = [m for m in mm._TRAINING_ONLY if m in sys.modules]
heavy = [m for m in ("sympy", "matplotlib.pyplot", "scipy.optimize", "transformers") if m in sys.modules]
from mmdet.models.task_modules.assigners import hungarian_assigner
import numpy as np
rows, cols = hungarian_assigner.linear_sum_assignment(np.array([[0.0, 1.0], [1.0, 0.0]]))
import torch.distributed.optim as optim  # the real module, imported on demand
from mmdet.registry import MODELS
print(json.dumps({"left": skipped, "heavy": heavy, "lsa": cols.tolist(),
                  "zero": optim.ZeroRedundancyOptimizer.__module__, "m2f": MODELS.get("Mask2Former") is not None}))
"""


@pytest.fixture(scope="module")
def probes() -> dict[str, dict]:
    """The probe's answer with PANBENCH_FULL_IMPORTS=0 and =1: two processes started together (each imports mmdet
    on its own), for the module's two tests."""
    procs = {full: subprocess.Popen([sys.executable, "-c", PROBE], cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env={**os.environ, "PANBENCH_FULL_IMPORTS": full})
             for full in ("0", "1")}
    out = {}
    for full, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-2000:]
        out[full] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_training_only_modules_are_skipped_then_real(probes) -> None:
    out = probes["0"]
    assert out["left"] == [] and out["heavy"] == []  # no stand-in remains; nothing heavy was imported
    assert out["lsa"] == [0, 1]  # the forwarder reaches scipy's real linear_sum_assignment
    assert out["zero"].startswith("torch.distributed.optim")
    assert out["m2f"]


def test_full_imports_switch(probes) -> None:
    out = probes["1"]
    assert "sympy" in out["heavy"] or "scipy.optimize" in out["heavy"]
    assert out["m2f"]
