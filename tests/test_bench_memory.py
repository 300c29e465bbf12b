"""scripts/bench_memory.py: the peaks of score, score --no-analysis and hotcoco measured side by side, printed only
after every row's PQ is checked equal."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "bench_memory.py"


def _module():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("bench_memory", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_memory_prints_each_rows_peak_and_the_ratios_after_checking_the_pq(tmp_path: Path, coco_sample) -> None:
    pytest.importorskip("hotcoco")
    ann = coco_sample / "annotations"
    s = tmp_path / "set"
    s.mkdir()
    for side in ("gt", "pred"):  # the sample scored against itself
        (s / f"{side}.json").symlink_to(ann / "panoptic_val2017.json")
        (s / side).symlink_to(ann / "panoptic_val2017")
    r = subprocess.run([sys.executable, str(SCRIPT), str(s), "--rounds", "1"], capture_output=True, text=True,
                       timeout=300, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "PQ checked: every run of every row gives 100.000000" in out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines() if line.startswith(("panbench", "hotcoco"))}
    for name in ("panbench score (defaults)", "panbench score --no-analysis", "hotcoco PanopticEval"):
        assert float(rows[name][-3]) > 10  # a whole Python process's peak, in MiB
    assert out.index("PQ checked") < out.index("panbench score (defaults) / hotcoco PanopticEval: ")


def test_a_row_that_scores_otherwise_or_prints_no_pq_stops_the_script_before_any_ratio() -> None:
    mod = _module()
    same = {"panbench score (defaults)": [(200.0, 1.0, 47.25)], "hotcoco PanopticEval": [(240.0, 2.0, 47.25)]}
    mod.check_pq(same, "panbench score (defaults)")
    other = {**same, "hotcoco PanopticEval": [(240.0, 2.0, 47.26)]}
    with pytest.raises(SystemExit, match="hotcoco PanopticEval scored PQ 47.26, panbench 47.25: not the same work"):
        mod.check_pq(other, "panbench score (defaults)")
    silent = {**same, "hotcoco PanopticEval": [(240.0, 2.0, None)]}
    with pytest.raises(SystemExit, match="hotcoco PanopticEval printed no PQ; no ratio"):
        mod.check_pq(silent, "panbench score (defaults)")
