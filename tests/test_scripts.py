"""The scripts under scripts/ import what they name: each one's --help runs (a moved module or a renamed
function fails here instead of on the day someone reruns a benchmark)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from panbench.package import REPO_ROOT

SCRIPTS = ["ablation_postprocess", "bench_analysis", "bench_ap", "bench_eval", "bench_mmdet_metric", "bench_ops",
           "bench_pq", "profile_pq", "bench_eval_ap", "record_mmcv_ops", "train_demo_models", "bench_compile",
           "bench_torchmetrics", "bench_detectron2", "ab_score", "ab_eval", "test_times", "bench_gpu_eval",
           "bench_memory", "record_ade20k_prepare_fixture", "ab_fusion"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help_runs(name: str) -> None:
    r = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), "--help"], capture_output=True,
                       text=True, timeout=120, cwd=REPO_ROOT)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]


def test_test_times_adds_each_tests_phases_and_sums_them_by_folder(tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("test_times", REPO_ROOT / "scripts" / "test_times.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    log = tmp_path / "log"
    log.write_text("=== slowest durations ===\n"
                   "10.50s setup    tests/evaluation/test_a.py::test_x\n"
                   "2.00s call     tests/evaluation/test_a.py::test_x\n"
                   "3.00s call     tests/evaluation/test_b.py::test_y[p-1]\n"
                   "1.00s call     tests/test_top.py::test_z\n"
                   "0.50s teardown tests/test_top.py::test_z\n")
    assert mod.read(log.read_text()) == {"tests/evaluation/test_a.py::test_x": 12.5,
                                         "tests/evaluation/test_b.py::test_y[p-1]": 3.0,
                                         "tests/test_top.py::test_z": 1.5}
    text = mod.tables(mod.read(log.read_text()), top=2)
    assert "| `tests/evaluation` | 2 | 16 | 91% |" in text and "| `tests` | 1 | 2 | 9% |" in text
    assert "| all | 3 | 17 | 100% |" in text and "| `tests/evaluation/test_a.py::test_x` | 12.5 |" in text
    assert "test_top.py::test_z` |" not in text  # the 2 slowest only
    assert mod.main([str(tmp_path / "log")]) == 0
    (tmp_path / "empty").write_text("no report\n")
    assert mod.main([str(tmp_path / "empty")]) == 2
