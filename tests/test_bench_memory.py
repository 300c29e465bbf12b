"""scripts/bench_memory.py: the peaks of score, score --no-analysis and hotcoco measured side by side, printed only
after every row's PQ is checked equal; with --reports, those of table, report and compare over records of one set
against one score of it, each ratio beside its target."""

from __future__ import annotations

import importlib.util
import json
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


def test_the_report_rows_are_measured_against_one_score_over_records_of_distinct_predictions(
        tmp_path: Path, coco_sample) -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--reports", "--images", "12", "--runs", "2", "--only", "compare",
                        "--rounds", "1", "--work", str(tmp_path)], capture_output=True, text=True, timeout=300,
                       cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {line.split("  ")[0]: line.split() for line in r.stdout.splitlines()
            if line.startswith("panbench ") and " / " not in line}
    assert set(rows) == {"panbench score --name", "panbench compare"}  # --only compare: no table, no report
    assert all(float(row[-3]) > 10 for row in rows.values())  # whole Python processes' peaks, in MiB
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("panbench compare / panbench score --name: ")]
    assert "x (target 1.5x)" in line and "x (target 2.0x)" in line
    s = tmp_path / "real12"
    assert len(list((s / "results-2" / "runs").glob("*.json"))) == 2  # kept for the next run
    # run-1's predictions: run-0's PNGs, some segments relabelled within their kind to another of the ground truth's
    # categories, every score moved, written once
    gt = json.loads((s / "gt.json").read_text())
    kinds = {c["id"]: c["isthing"] for c in gt["categories"]}
    seen = {seg["category_id"] for ann in gt["annotations"] for seg in ann["segments_info"]}
    old, new = (json.loads(p.read_text())["annotations"] for p in (s / "pred.json", s / "pred-1.json"))
    pairs = [(a, b) for x, y in zip(old, new) for a, b in zip(x["segments_info"], y["segments_info"])]
    assert [x["file_name"] for x in old] == [y["file_name"] for y in new] and all(a["id"] == b["id"] for a, b in pairs)
    moved = [(a, b) for a, b in pairs if a["category_id"] != b["category_id"]]
    assert 0 < len(moved) < 0.15 * len(pairs) and all(b["category_id"] in seen for _, b in moved)
    assert all(kinds[a["category_id"]] == kinds[b["category_id"]] for a, b in pairs)
    assert sum(a["score"] != b["score"] for a, b in pairs) > 0.8 * len(pairs)
    stamp = (s / "pred-1.json").stat().st_mtime_ns
    assert _module().variant_predictions(s, 1) == s / "pred-1.json" and (s / "pred-1.json").stat().st_mtime_ns == stamp


def test_the_ratios_are_marked_where_a_row_passes_its_target() -> None:
    mod = _module()
    got = {mod.SCORE_ROW: [(200.0, 10.0, None)], "panbench table": [(290.0, 25.0, None)],
           "panbench report": [(310.0, 19.0, None)]}
    assert mod.target_lines(got) == [
        "panbench table / panbench score --name: peak 1.45x (target 1.5x), time 2.50x (target 2.0x) OVER",
        "panbench report / panbench score --name: peak 1.55x (target 1.5x) OVER, time 1.90x (target 2.0x)"]
