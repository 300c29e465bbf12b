"""The scripts under scripts/ import what they name: each one's --help runs (a moved module or a renamed
function fails here instead of on the day someone reruns a benchmark)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from panbench import REPO_ROOT

SCRIPTS = ["ablation_postprocess", "bench_analysis", "bench_ap", "bench_eval", "bench_mmdet_metric", "bench_ops",
           "bench_pq", "profile_pq", "bench_eval_ap", "record_mmcv_ops", "train_demo_models", "bench_compile",
           "bench_torchmetrics", "bench_detectron2", "ab_score"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help_runs(name: str) -> None:
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), "--help"], capture_output=True,
                       text=True, timeout=120, cwd=REPO_ROOT)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]
