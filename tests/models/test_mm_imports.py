"""Start-up: panbench skips mmengine/mmdet's training-only imports while registering mmdet, and
leaves nothing behind (the real modules import afterwards; PANBENCH_FULL_IMPORTS=1 turns it off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from panbench import REPO_ROOT

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


def probe(**env: str) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO_ROOT,
                       env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_training_only_modules_are_skipped_then_real() -> None:
    out = probe(PANBENCH_FULL_IMPORTS="0")
    assert out["left"] == [] and out["heavy"] == []  # no stand-in remains; nothing heavy was imported
    assert out["lsa"] == [0, 1]  # the forwarder reaches scipy's real linear_sum_assignment
    assert out["zero"].startswith("torch.distributed.optim")
    assert out["m2f"]


def test_full_imports_switch() -> None:
    out = probe(PANBENCH_FULL_IMPORTS="1")
    assert "sympy" in out["heavy"] or "scipy.optimize" in out["heavy"]
    assert out["m2f"]
