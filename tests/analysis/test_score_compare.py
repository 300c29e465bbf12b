"""`panbench compare` at each run's best segment score threshold: B - A in PQ there beside B - A at the defaults,
whether the sign holds, and the paired interval from the per-image sums with the low-scoring segments removed
(panbench/reporting/pairing.py's sums_at_threshold, score_threshold's rule).  Two `score --name` runs of 12 small
generated images whose segments carry scores, made once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import scored_runs

from panbench.analysis import AnalysisSet, ScoreSums, paired_bootstrap
from panbench.analysis.scores import threshold_sums
from panbench.cli import main
from panbench.cli.compare import threshold_lines
from panbench.records.io import load_records
from panbench.reporting.pairing import sums_at_threshold


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Path:
    """The results folder of two `score --name` runs (sys-a, sys-b) of predictions whose segments carry scores."""
    return scored_runs(tmp_path_factory.mktemp("score_compare"))


def _runs(results: Path) -> dict[str, tuple[dict, AnalysisSet]]:
    return {r["model"]: (r, AnalysisSet.load(results / r["analysis_file"])) for r in load_records(results)}


def test_per_image_sums_at_a_threshold_add_up_to_the_runs_and_give_its_pq_there(scored) -> None:
    """Summed over the images, the per-image sums at a threshold are score_threshold's sums there (counts exact),
    and a segment scoring below it is gone from its image: a TP's ground truth an FN, an FP not counted."""
    rec, a = _runs(scored)["sys-a"]
    c, t = a.n_categories, 0.5
    s = sums_at_threshold(a, t)
    tp, iou, fp, fn = (v[0] for v in threshold_sums(ScoreSums.of(a), np.array([t])))
    assert np.array_equal(s.tp.sum(0), tp) and np.array_equal(s.fp.sum(0), fp) and np.array_equal(s.fn.sum(0), fn)
    np.testing.assert_allclose(s.iou.sum(0), iou, rtol=1e-12)
    low_tp = a.tp_score < t
    low_fp = a.fp_score < t
    assert low_tp.any() and low_fp.any()  # some segments of each kind removed
    per_image = np.zeros((a.n_images, c))
    np.add.at(per_image, (a.tp_img[low_tp], a.tp_cats[low_tp]), 1)
    whole = sums_at_threshold(a, 0.0)  # nothing scores below 0: the run's own sums
    assert np.array_equal(whole.tp - s.tp, per_image) and np.array_equal(s.fn - whole.fn, per_image)
    np.add.at(per_image, (a.fp_img[low_fp], a.fp_cats[low_fp]), -1)
    assert np.array_equal((whole.tp - s.tp) - (whole.fp - s.fp), per_image)
    best = rec["score_threshold"]["best"]
    at = sums_at_threshold(a, best["threshold"])
    present = (at.tp + at.fp + at.fn).sum(0) > 0
    class_pq = at.iou.sum(0)[present] / (at.tp + 0.5 * at.fp + 0.5 * at.fn).sum(0)[present]
    assert 100 * class_pq.mean() == pytest.approx(best["PQ"], abs=1e-9)


def test_compare_gives_pq_at_each_runs_best_threshold_its_paired_interval_and_whether_the_sign_holds(
        scored, capsys) -> None:
    runs = _runs(scored)
    (ra, a), (rb, b) = runs["sys-a"], runs["sys-b"]
    assert main(["compare", "sys-a", "sys-b", "--results", str(scored), "--resamples", "200", "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["at_best_threshold"]
    ba, bb = ra["score_threshold"]["best"], rb["score_threshold"]["best"]
    at_default = rb["metrics"]["PQ"] - ra["metrics"]["PQ"]
    assert (t["threshold_a"], t["threshold_b"], t["a"], t["b"]) == (ba["threshold"], bb["threshold"], ba["PQ"],
                                                                    bb["PQ"])
    assert t["difference"] == bb["PQ"] - ba["PQ"] and t["at_default"] == at_default
    assert t["sign_holds"] == (np.sign(t["difference"]) == np.sign(at_default))
    want = paired_bootstrap(sums_at_threshold(b, bb["threshold"]), sums_at_threshold(a, ba["threshold"]),
                            a.isthing, n_resamples=200, per_class=False)
    assert t["interval"] == want["metrics"]["PQ"] and t["excludes_zero"] == want["excludes_zero"]["PQ"]
    assert main(["compare", "sys-a", "sys-b", "--results", str(scored), "--resamples", "200", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith("PQ at each run's best score threshold"))
    assert lines[at - 1].startswith("PQ_st") and lines[at + 2].startswith("per class (")  # after the metrics
    held = "the sign holds" if t["sign_holds"] else "the sign flips"
    assert lines[at] == (f"PQ at each run's best score threshold (A {ba['threshold']:.2f}, B {bb['threshold']:.2f}): "
                         f"A {ba['PQ']:.2f}, B {bb['PQ']:.2f}, B - A {t['difference']:+.2f} "
                         f"[{t['interval'][0]:+.2f}, {t['interval'][1]:+.2f}]{' *' if t['excludes_zero'] else ''}; "
                         f"at the defaults {at_default:+.2f}: {held}")
    assert "threshold picked on val is not a test result" in lines[at + 1]


def test_the_line_says_when_the_sign_flips_and_why_a_run_has_none(scored, tmp_path, capsys) -> None:
    flipped = {"threshold_a": 0.3, "threshold_b": 0.55, "a": 40.0, "b": 39.0, "difference": -1.0, "at_default": 0.5,
               "sign_holds": False, "interval": [-2.0, 0.25], "excludes_zero": False, "note": "chosen on these images"}
    assert threshold_lines({"at_best_threshold": flipped})[0].endswith(
        "(A 0.30, B 0.55): A 40.00, B 39.00, B - A -1.00 [-2.00, +0.25]; at the defaults +0.50: the sign flips")
    assert threshold_lines({"at_best_threshold": None}) == []
    res = tmp_path / "res"
    shutil.copytree(scored, res)
    (path,) = (res / "runs").glob("*_sys-a_*.json")
    rec = json.loads(path.read_text())
    rec["score_threshold"] = None  # a run whose segments have no score
    path.write_text(json.dumps(rec))
    assert main(["compare", "sys-a", "sys-b", "--results", str(res), "--resamples", "200"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "best score threshold" in x]
    assert line.startswith("PQ at each run's best score threshold: none (A has no PQ against the segment score "
                           "threshold")
