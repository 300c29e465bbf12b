"""`panbench table --ci/--by-size/--errors/--boundary/--dagger` and the framework column, on records made for
real (tests/reporting/analysis_records.py) beside an old schema-1 record (the invented fixture)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from analysis_records import TABLE, add_run, ground_truth
from latex import assert_compiles

from panbench.analysis import AnalysisSet, RunSums, paired_bootstrap
from panbench.analysis.breakdown import ERROR_TYPES
from panbench.cli import main
from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import load_record
from panbench.records.schema import RunRecord
from panbench.reporting.formats import WRITERS

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # schema 1, invented numbers


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Four runs on one generated set (fingerprint f1a2...): a noisy model (the group's first row), the ground
    truth itself, a copy of the noisy model, and a second noisy model with boundary PQ; one run on another
    set; and the old schema-1 fixture record (coco)."""
    root = tmp_path_factory.mktemp("analysis_results")
    gt_json, images = ground_truth(root / "data")
    add_run(root, "noisy", gt_json, images, pred_seed=1, date="2001-01-01T00:00:01+00:00")
    add_run(root, "perfect", gt_json, images, pred_seed=None, date="2001-01-01T00:00:02+00:00")
    add_run(root, "noisy-copy", gt_json, images, pred_seed=1, date="2001-01-01T00:00:03+00:00")
    add_run(root, "bnd", gt_json, images, pred_seed=2, boundary=True, framework="transformers",
            date="2001-01-01T00:00:04+00:00", selection={"limit": 16, "subset": None, "images": 16})
    gt2, images2 = ground_truth(root / "data2", n_images=8, seed=5)
    add_run(root, "other-set", gt2, images2, pred_seed=3, fingerprint="0000aaaa0000aaaa",
            date="2001-01-01T00:00:05+00:00")
    shutil.copy(FIXTURE, root / "runs" / FIXTURE.name)
    return root


def _csv(results: Path, capsys, *opts: str) -> tuple[pd.DataFrame, str]:
    assert main(["table", "--results", str(results), "--format", "csv", *opts]) == 0
    out = capsys.readouterr()
    return pd.read_csv(io.StringIO(out.out), index_col="model"), out.err


def _record(results: Path, model: str) -> RunRecord:
    return next(r for p in (results / "runs").glob("*.json") if (r := load_record(p)).model == model)


def test_ci_paired_differences_are_to_the_best_pq_by_default(results, capsys) -> None:
    """Without --reference the reference of a group is its best PQ (the ground truth itself), whichever run was
    made first; each other row's difference is its PQ minus the reference's, with the paired interval."""
    df, _ = _csv(results, capsys, "--ci")
    noisy, perfect = _record(results, "noisy"), _record(results, "perfect")
    assert df.loc["perfect", "PQ_diff_vs"] == "reference" and pd.isna(df.loc["perfect", "PQ_diff"])
    sums = [RunSums.from_analysis(AnalysisSet.load(results / r["analysis_file"]), fingerprint="f", name=r["model"])
            for r in (noisy, perfect)]
    want = paired_bootstrap(*sums, TABLE.isthing, per_class=False)
    assert df.loc["noisy", "PQ_diff_vs"] == "perfect" and df.loc["noisy", "PQ_diff_mark"] == "*"
    assert df.loc["noisy", "PQ_diff"] == pytest.approx(noisy["metrics"]["PQ"] - perfect["metrics"]["PQ"], abs=5e-4)
    assert [df.loc["noisy", "PQ_diff_low"], df.loc["noisy", "PQ_diff_high"]] == pytest.approx(
        want["metrics"]["PQ"], abs=5e-4)


def test_ci_intervals_and_paired_differences_with_a_mark(results, capsys) -> None:
    df, err = _csv(results, capsys, "--ci", "--reference", "noisy")
    noisy, perfect = _record(results, "noisy"), _record(results, "perfect")
    for k in ("PQ", "SQ", "RQ", "PQ_th", "PQ_st"):
        assert df.loc["noisy", f"{k}_low"] == pytest.approx(noisy["ci"][k][0], abs=5e-4)
        assert df.loc["noisy", f"{k}_high"] == pytest.approx(noisy["ci"][k][1], abs=5e-4)
    assert df.loc["noisy", "PQ_diff_vs"] == "reference" and pd.isna(df.loc["noisy", "PQ_diff"])
    # the ground truth against the noisy run: the paired bootstrap, recomputed here, excludes 0
    sums = [RunSums.from_analysis(AnalysisSet.load(results / r["analysis_file"]), fingerprint="f", name=r["model"])
            for r in (perfect, noisy)]
    want = paired_bootstrap(*sums, TABLE.isthing, per_class=False)
    assert df.loc["perfect", "PQ_diff_vs"] == "noisy"
    assert df.loc["perfect", "PQ_diff"] == pytest.approx(perfect["metrics"]["PQ"] - noisy["metrics"]["PQ"], abs=5e-4)
    assert df.loc["perfect", "PQ_diff_low"] == pytest.approx(want["metrics"]["PQ"][0], abs=5e-4)
    assert df.loc["perfect", "PQ_diff_high"] == pytest.approx(want["metrics"]["PQ"][1], abs=5e-4)
    assert want["excludes_zero"]["PQ"] and df.loc["perfect", "PQ_diff_mark"] == "*"
    # the same predictions under another name: [0, 0], no mark
    assert df.loc["noisy-copy", ["PQ_diff", "PQ_diff_low", "PQ_diff_high"]].tolist() == [0, 0, 0]
    assert pd.isna(df.loc["noisy-copy", "PQ_diff_mark"])
    # another dataset, one run: alone on its images, nobody's reference; the old record: blank, and said so (CSV:
    # on stderr)
    assert pd.isna(df.loc["other-set", "PQ_diff_vs"])
    assert pd.isna(df.loc["fixture-model", "PQ_low"]) and pd.isna(df.loc["fixture-model", "PQ_diff_vs"])
    assert "'*' marks an interval that excludes 0" in err and "--ci: blank for fixture-model (" in err


def test_ci_in_markdown_shows_intervals_marks_and_the_footnote(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--ci", "--reference", "noisy"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| perfect"))
    noisy, perfect = _record(results, "noisy"), _record(results, "perfect")
    assert f"[{noisy['ci']['PQ'][0]:.3f}, {noisy['ci']['PQ'][1]:.3f}]" in out
    assert f"{perfect['metrics']['PQ'] - noisy['metrics']['PQ']:+.3f}*" in row
    head = next(line for line in out.splitlines() if line.startswith("| model"))  # after the verdict
    assert "PQ 95% CI" in head and "'*' marks an interval that excludes 0" in out


def test_by_size_errors_boundary_dagger_columns_are_the_record_fields(results, capsys) -> None:
    rec = _record(results, "bnd")
    df, err = _csv(results, capsys, "--by-size", "--errors", "--boundary-pq", "--dagger")
    row = df.loc["bnd"]
    for s in ("small", "medium", "large"):
        b = rec["by_size"][s]
        assert row[f"N_{s}"] == b["n"] and row[f"segments_{s}"] == b["segments"]
        for k in ("PQ", "SQ", "RQ"):  # a bucket without any category: blank, not the 0.0 the analysis gives
            assert row[f"{k}_{s}"] == pytest.approx(b[k], abs=5e-4) if b["n"] else pd.isna(row[f"{k}_{s}"])
    assert rec["by_size"]["large"]["n"] == 0 and rec["by_size"]["small"]["n"] > 0  # both cases are checked
    for t in ERROR_TYPES:
        assert row[f"{t}_count"] == rec["errors"][t]["count"]
        assert row[f"{t}_delta_PQ"] == pytest.approx(rec["errors"][t]["delta_PQ"], abs=5e-4)
    assert row["mask_quality_delta_PQ"] == pytest.approx(rec["mask_quality"]["delta_PQ"], abs=5e-4)
    for k in METRIC_KEYS:
        assert row[f"boundary_{k}"] == pytest.approx(rec["boundary"][k], abs=5e-4)
    assert row["PQ_dagger"] == pytest.approx(rec["pq_dagger"], abs=5e-4)
    assert sum(rec["errors"][t]["count"] for t in ERROR_TYPES) > 0
    # a run without --boundary, and the old record: blank, and the note says how to get them
    assert pd.isna(df.loc["noisy", "boundary_PQ"]) and pd.isna(df.loc["fixture-model", "PQ_small"])
    assert "--boundary-pq: blank for" in err and "with --boundary" in err
    assert "--by-size: blank for fixture-model" in err


@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("opt", ["--ci", "--by-size", "--errors", "--boundary-pq", "--dagger"])
def test_every_option_in_every_format(results, capsys, fmt, opt) -> None:
    assert main(["table", "--results", str(results), "--format", fmt, opt]) == 0
    out = capsys.readouterr().out
    assert "perfect" in out and "fixture-model" in out


def test_latex_with_intervals_and_footnotes_compiles(results, capsys, tmp_path) -> None:
    assert main(["table", "--results", str(results), "--format", "latex", "--ci", "--errors"]) == 0
    tex = capsys.readouterr().out
    assert r"PQ\\{}95\% CI" in tex and r"\par" in tex and r"classification\\{}count" in tex  # headers on two lines
    assert_compiles(tex, tmp_path)


def test_framework_and_selection_columns(results, capsys) -> None:
    ext = json.loads(FIXTURE.read_text())
    ext.update(model="ext", architecture="external", date="2001-01-02T00:00:00+00:00")
    (results / "runs" / "ext.json").write_text(json.dumps(ext))
    try:
        df, _ = _csv(results, capsys, "--all-columns")
    finally:
        (results / "runs" / "ext.json").unlink()
    assert df.loc["bnd", "framework"] == "transformers"  # recorded
    assert df.loc["fixture-model", "framework"] == "mmdet" and df.loc["ext", "framework"] == "external"  # schema 1
    assert df.loc["bnd", "selection"] == "limit 16" and df.loc["noisy", "selection"] == "all"


def test_per_class_with_an_analysis_option_is_refused(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--per-class", "--ci"]) == 2
    assert "--per-class: give it alone" in capsys.readouterr().err


def test_eval_summary_names_each_analysis(results) -> None:
    """`panbench eval` prints format_record: the intervals, PQ by size, PQ-dagger, boundary PQ and the error types
    by oracle gain, from the record; an old record prints none of these lines."""
    from panbench.reporting.text import format_record

    rec = _record(results, "bnd")
    text = format_record(rec.with_fields(timings={"images_per_s": None}))
    assert f"95% interval (image bootstrap): PQ [{rec['ci']['PQ'][0]:.2f}, {rec['ci']['PQ'][1]:.2f}]" in text
    assert f"small {rec['by_size']['small']['PQ']:.2f}" in text and "large - (no segments)" in text
    assert f"PQ-dagger {rec['pq_dagger']:.2f}; boundary PQ {rec['boundary']['PQ']:.2f}" in text
    top = max(rec["errors"], key=lambda t: rec["errors"][t]["delta_PQ"])
    assert f"oracle delta PQ by error type (errors): {top} {rec['errors'][top]['delta_PQ']:+.2f}" in text
    old = format_record(load_record(FIXTURE))
    assert "interval" not in old and "PQ-dagger" not in old


def test_no_paired_difference_without_the_thing_flags_says_why(tmp_path, capsys) -> None:
    """An analysis file without the category table and an annotation file that is gone: no difference, a note."""
    gt_json, images = ground_truth(tmp_path / "data", n_images=6)
    add_run(tmp_path, "a", gt_json, images, pred_seed=1, date="2001-01-01T00:00:01+00:00")
    add_run(tmp_path, "b", gt_json, images, pred_seed=2, date="2001-01-01T00:00:02+00:00")
    gt_json.rename(tmp_path / "moved.json")
    df, err = _csv(tmp_path, capsys, "--ci")
    assert df.loc["a", "PQ_diff_vs"] == "reference" and pd.isna(df.loc["b", "PQ_diff"])
    assert f"b: no paired difference (the annotation file {gt_json}" in err


def test_a_missing_analysis_file_is_named_not_silently_left_out(tmp_path, capsys) -> None:
    gt_json, images = ground_truth(tmp_path / "data", n_images=6)
    add_run(tmp_path, "a", gt_json, images, pred_seed=1, date="2001-01-01T00:00:01+00:00")
    b = add_run(tmp_path, "b", gt_json, images, pred_seed=2, date="2001-01-01T00:00:02+00:00")
    (tmp_path / b["analysis_file"]).unlink()
    df, err = _csv(tmp_path, capsys, "--ci")
    assert pd.isna(df.loc["b", "PQ_diff"])
    assert f"b: no paired difference (its analysis file {tmp_path / b['analysis_file']} is missing" in err


def _paired(results: Path, x: str, ref: str) -> tuple[float, list[float], bool]:
    """PQ(x) - PQ(ref), its paired interval and mark, recomputed here from the two analysis files."""
    rx, rr = _record(results, x), _record(results, ref)
    sums = [RunSums.from_analysis(AnalysisSet.load(results / r["analysis_file"]), fingerprint="f", name=r["model"])
            for r in (rx, rr)]
    want = paired_bootstrap(*sums, TABLE.isthing, per_class=False)
    return rx["metrics"]["PQ"] - rr["metrics"]["PQ"], want["metrics"]["PQ"], want["excludes_zero"]["PQ"]


def test_table_opens_with_the_verdict_ranked_on_pq_against_the_best(results, capsys) -> None:
    assert main(["table", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    first_table = out.index("\n| model")  # the comparison table, after the verdicts
    verdict = out[:first_table]
    head = next(line for line in verdict.splitlines() if "f1a2b3c4" in line)
    assert "16 images: ranking on PQ; paired difference to perfect (95% paired image bootstrap" in head
    ranks = [line.split("|")[2].strip() for line in verdict[verdict.index(head):].splitlines()
             if line.startswith("|") and line.split("|")[1].strip().isdigit()][:4]
    pqs = {m: _record(results, m)["metrics"]["PQ"] for m in ("noisy", "perfect", "noisy-copy", "bnd")}
    assert ranks == sorted(pqs, key=lambda m: -pqs[m]) and ranks[0] == "perfect"
    d, (lo, hi), mark = _paired(results, "noisy", "perfect")
    assert mark and f"perfect beats noisy by {-d:.1f} PQ [{-hi:.1f}, {-lo:.1f}]" in verdict
    assert f"| {d:+.2f} [{lo:+.2f}, {hi:+.2f}]* " in verdict  # the ranking's cell, marked
    assert "on these 16 images" in verdict and "other-set: the only run on these 8 images" in verdict


def test_reference_chosen_and_not_distinguishable_said_so(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--reference", "noisy"]) == 0
    out = capsys.readouterr().out
    assert "paired difference to noisy (" in out
    d, (lo, hi), mark = _paired(results, "perfect", "noisy")
    assert mark and f"perfect beats noisy by {d:.1f} PQ [{lo:.1f}, {hi:.1f}]" in out
    assert "noisy-copy vs noisy: not distinguishable (+0.0 PQ [+0.0, +0.0])" in out  # the same predictions
    assert main(["table", "--results", str(results), "--reference", "nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--reference nobody: no such run" in err and "\n" not in err and "Traceback" not in err


def test_csv_keeps_stdout_one_table_and_prints_the_verdict_on_stderr(results, capsys) -> None:
    df, err = _csv(results, capsys)
    assert "perfect" in df.index and "ranking on PQ" in err and "perfect beats noisy by" in err
    assert list(df.columns[:3]) == ["dataset", "n_images", "PQ"] and "framework" not in df.columns


def test_eval_summary_of_several_models_opens_with_the_verdict(results) -> None:
    from panbench.reporting.text import format_comparison

    recs = [_record(results, m) for m in ("noisy", "perfect", "noisy-copy")]
    text = format_comparison(recs, results)
    lines = text.splitlines()
    assert lines[0].startswith("synth f1a2b3c4, 16 images: ranking on PQ; paired difference to perfect")
    assert lines[1].split()[:2] == ["1.", "perfect"] and lines[1].endswith("reference")
    d, (lo, hi), _ = _paired(results, "noisy", "perfect")
    assert f"perfect beats noisy by {-d:.1f} PQ [{-hi:.1f}, {-lo:.1f}]" in lines[4]
    assert text.index("ranking on PQ") < text.index("post-processing")  # before the metrics table


def test_table_ci_and_compare_print_the_same_interval_for_the_same_pair(results, capsys, tmp_path) -> None:
    """`table --ci --reference A` and `compare A B` pair the same two runs by one rule and print one interval for
    B - A (1000 resamples, seed 0)."""
    pair = tmp_path / "pair"
    for name in ("noisy", "perfect"):  # the category table that `compare` needs, as `eval` and `score` write it
        rec = _record(results, name)
        a = AnalysisSet.load(results / rec.analysis_file)
        a.category_ids, a.isthing = list(TABLE.ids), list(TABLE.isthing)
        a.save(pair / rec.analysis_file)
        (pair / rec.record).parent.mkdir(parents=True, exist_ok=True)
        (pair / rec.record).write_text(json.dumps(rec.to_json()))
    df, _ = _csv(pair, capsys, "--ci", "--reference", "noisy")
    assert main(["compare", "noisy", "perfect", "--results", str(pair), "--json"]) == 0
    pq = json.loads(capsys.readouterr().out)["metrics"]["PQ"]
    assert [df.loc["perfect", "PQ_diff_low"], df.loc["perfect", "PQ_diff_high"]] == pytest.approx(pq["interval"],
                                                                                                   abs=5e-4)
    assert df.loc["perfect", "PQ_diff"] == pytest.approx(pq["b"] - pq["a"], abs=5e-4)
    assert main(["compare", "noisy", "perfect", "--results", str(pair)]) == 0
    lo, hi = pq["interval"]
    assert f"[{lo:+8.2f}, {hi:+8.2f}] *" in capsys.readouterr().out


def test_a_size_bucket_of_false_positives_alone_says_so_not_zero_segments() -> None:
    from panbench.reporting.analysis_views import by_size_text

    line = by_size_text({"by_size": {"small": {"PQ": 50.0, "n": 2, "segments": 3},
                                     "medium": {"PQ": 0.0, "n": 0, "segments": 0},
                                     "large": {"PQ": 0.0, "n": 1, "segments": 0}}})[0]
    assert line == ("PQ by size (things): small 50.00 (3 segments), medium - (no segments), "
                    "large 0.00 (no ground-truth segment: false positives only)")


def test_an_evaluator_of_millions_of_fields_gets_its_first_columns_and_the_record_keeps_them_all() -> None:
    from panbench.reporting.tables import EVALUATOR_COLUMNS, evaluator_columns

    fields = {f"k{i}": i for i in range(200_000)} | {"nested": [1, 2]}
    rec = load_record(FIXTURE).with_fields(evaluators={"Big": fields, "Small": {"n": 3, "note": "x"}})
    cols = evaluator_columns(rec)
    assert [k for k in cols if k.startswith("Big.")] == [f"Big.k{i}" for i in range(EVALUATOR_COLUMNS)]
    assert cols["Small.n"] == 3 and cols["Small.note"] == "x"
