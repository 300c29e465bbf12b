"""mPC, rPC and the group means on hand-made records equal their definitions (Michaelis et al. 2019:
mPC = mean over corruptions and severities, rPC = mPC / clean), and a summary pairs a model's corrupted
runs with its clean run on the same images only."""

from __future__ import annotations

import csv
import io
import json

import pytest

from panbench.records.schema import RunRecord
from panbench.robustness.corruptions import GROUP_OF
from panbench.robustness.summary import robustness_summaries


def record(model: str, pq: float, th: float, st: float, corruption: tuple[str, int] | None = None,
           fingerprint: str = "fp1", date: str = "2026-01-01T00:00:00+0000", amp: str = "fp32") -> RunRecord:
    r = {"model": model, "postprocess": "default", "dataset": "demo", "n_images": 10, "date": date,
         "batch_size": 1, "amp": amp, "metrics": {"PQ": pq, "PQ_th": th, "PQ_st": st},
         "provenance": {"dataset": {"fingerprint": fingerprint}}, "record": f"runs/{model}-{corruption}.json"}
    if corruption:
        name, sev = corruption
        r["dataset"] = f"demo+{name}-{sev}"
        r["corruption"] = {"name": name, "severity": sev, "group": GROUP_OF[name], "implementation": "x"}
        r["timings"] = {"corrupt_s": 0.5, "corrupt_images": 10}
    return RunRecord.from_json(r)


def test_mpc_rpc_and_group_means_equal_their_definitions() -> None:
    runs = {("gaussian_noise", 1): (40.0, 30.0, 50.0), ("gaussian_noise", 3): (20.0, 10.0, 30.0),
            ("fog", 1): (35.0, 33.0, 37.0), ("fog", 3): (25.0, 21.0, 29.0), ("contrast", 2): (10.0, 12.0, 8.0)}
    recs = [record("m", 50.0, 40.0, 60.0)] + [record("m", *v, corruption=k) for k, v in runs.items()]
    (s,) = robustness_summaries(recs)
    pq = [v[0] for v in runs.values()]
    mpc = sum(pq) / 5
    assert s["clean"]["PQ"] == 50.0 and s["n_runs"] == 5
    assert s["mPC"]["PQ"] == pytest.approx(mpc) and s["mPC"]["PQ"] == pytest.approx(26.0)
    assert s["mPC"]["PQ_th"] == pytest.approx((30 + 10 + 33 + 21 + 12) / 5)
    assert s["mPC"]["PQ_st"] == pytest.approx((50 + 30 + 37 + 29 + 8) / 5)
    assert s["rPC"]["PQ"] == pytest.approx(100 * 26.0 / 50.0)
    assert s["rPC"]["PQ_th"] == pytest.approx(100 * s["mPC"]["PQ_th"] / 40.0)
    assert s["groups"]["noise"]["PQ"] == pytest.approx(30.0)
    assert s["groups"]["weather"]["PQ"] == pytest.approx(30.0)
    assert s["groups"]["digital"]["PQ_st"] == pytest.approx(8.0)
    assert "blur" not in s["groups"]
    assert s["corruptions"] == ["gaussian_noise", "fog", "contrast"] and s["severities"] == [1, 2, 3]
    assert s["runs"][0]["corrupt_ms_per_image"] == pytest.approx(50.0)


def test_a_summary_takes_the_newest_run_of_each_corruption_and_only_runs_on_the_same_images() -> None:
    recs = [record("m", 50.0, 40.0, 60.0),
            record("m", 10.0, 10.0, 10.0, ("fog", 2)),
            record("m", 30.0, 30.0, 30.0, ("fog", 2), date="2026-01-02T00:00:00+0000"),  # the newer fog-2
            record("m", 1.0, 1.0, 1.0, ("fog", 3), fingerprint="fp2"),  # other images: no clean partner
            record("n", 60.0, 60.0, 60.0)]  # no corrupted run: no summary
    (s,) = robustness_summaries(recs)
    assert s["model"] == "m" and s["n_runs"] == 1
    assert s["mPC"]["PQ"] == 30.0 and s["rPC"]["PQ"] == pytest.approx(60.0)


def test_models_are_summarized_apart() -> None:
    recs = [record("a", 50.0, 50.0, 50.0), record("b", 80.0, 80.0, 80.0),
            record("a", 25.0, 25.0, 25.0, ("snow", 1)), record("b", 20.0, 20.0, 20.0, ("snow", 1))]
    by = {s["model"]: s for s in robustness_summaries(recs)}
    assert by["a"]["rPC"]["PQ"] == pytest.approx(50.0) and by["b"]["rPC"]["PQ"] == pytest.approx(25.0)


def test_table_robustness_shows_clean_mpc_rpc_and_the_groups_and_the_plots_are_written(tmp_path, capsys) -> None:
    import json

    from panbench.cli import main
    from panbench.reporting.robustness import plots

    recs = [record("a", 50.0, 40.0, 60.0), record("a", 20.0, 10.0, 30.0, ("gaussian_noise", 1)),
            record("a", 30.0, 20.0, 40.0, ("fog", 2))]
    (tmp_path / "runs").mkdir()
    for k, r in enumerate(recs):
        (tmp_path / "runs" / f"{k}.json").write_text(json.dumps(r.to_json()))
    assert main(["table", "--robustness", "--results", str(tmp_path), "--format", "csv"]) == 0
    cap = capsys.readouterr()
    (row,) = list(csv.DictReader(io.StringIO(cap.out)))  # stdout: the CSV alone, its note on stderr
    assert float(row["clean_PQ"]) == 50.0 and float(row["mPC_PQ"]) == 25.0 and float(row["rPC_PQ"]) == 50.0
    assert float(row["mPC_PQ_th"]) == 15.0 and float(row["noise_PQ"]) == 20.0 and float(row["weather_PQ_st"]) == 40.0
    assert row["n_corruptions"] == "2" and row["severities"] == "1,2" and "mPC: mean PQ" in cap.err
    assert "blur_PQ" not in row  # no blur run
    assert main(["table", "--robustness", "--results", str(tmp_path)]) == 0  # Markdown: headers in words
    md = capsys.readouterr().out
    assert "clean PQ things" in md and "2 x sev 1-2" in md and "mPC: mean PQ" in md
    paths = plots(robustness_summaries(recs), tmp_path / "plots")
    assert [p.name for p in paths] == ["robustness_severity.png", "robustness_drop.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_robustness_csv_is_the_table_alone_with_field_names_and_every_digit(tmp_path, capsys) -> None:
    """`panbench robustness --format csv > f.csv`: stdout is one CSV (field names, the summary's full precision);
    the summary and plot paths and the table's note go to stderr."""
    from panbench.cli.robustness import report

    recs = [record("a", 50.123456789, 40.0, 60.0), record("a", 20.0, 10.0, 30.0, ("gaussian_noise", 1)),
            record("a", 30.0, 20.0, 40.0, ("fog", 2))]
    report(robustness_summaries(recs), tmp_path, "csv", with_plots=True)
    cap = capsys.readouterr()
    (row,) = list(csv.DictReader(io.StringIO(cap.out)))
    assert float(row["clean_PQ"]) == 50.123456789 and float(row["rPC_PQ"]) == 100 * 25.0 / 50.123456789
    assert all(" " not in k for k in row), list(row)
    assert "summary: " in cap.err and "plot: " in cap.err and "mPC: mean PQ" in cap.err


def test_table_robustness_without_corrupted_runs_says_what_to_run(tmp_path, capsys) -> None:
    from panbench.cli import main

    (tmp_path / "runs").mkdir()
    assert main(["table", "--robustness", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "panbench robustness --model" in err


@pytest.mark.parametrize("argv, message", [
    (["eval", "--model", "panoptic-fpn", "--dataset", "demo", "--corruption", "glas_blur", "--severity", "3"],
     "did you mean glass_blur?"),
    (["eval", "--model", "panoptic-fpn", "--dataset", "demo", "--corruption", "fog", "--severity", "0"],
     "argument --severity: must be an integer in 1..5, got 0"),  # as the command line is read
    (["robustness", "--model", "panoptic-fpn", "--dataset", "demo", "--severities", "2-6"],
     "severity is 1, 2, 3, 4 or 5"),
    (["robustness", "--model", "panoptic-fpn", "--dataset", "demo", "--corruptions", "weathr"],
     "did you mean weather?"),
])
def test_bad_corruption_arguments_stop_in_one_line_with_exit_2(argv, message, capsys) -> None:
    from panbench.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # a usage error of the parser
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_table_robustness_with_corrupted_runs_but_no_matching_clean_run_says_so(tmp_path, capsys) -> None:
    import json

    from panbench.cli import main

    recs = [record("a", 50.0, 40.0, 60.0, fingerprint="other images"), record("a", 20.0, 10.0, 30.0, ("fog", 1))]
    (tmp_path / "runs").mkdir()
    for k, r in enumerate(recs):
        (tmp_path / "runs" / f"{k}.json").write_text(json.dumps(r.to_json()))
    assert main(["table", "--robustness", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the corrupted runs of a have no clean run on the same images" in err


def test_a_model_with_settings_has_one_colour_in_plot_s_figures_and_the_robustness_figures(tmp_path) -> None:
    """A sweep run in bf16: the robustness figures key the model's colour as `plot` keys its clean run's,
    `a (amp bf16)`, not by its bare name (which took a colour of its own)."""
    from panbench.cli.robustness import report
    from panbench.reporting.colors import COLORS_FILE, model_colors

    clean = record("a", 50.0, 40.0, 60.0, amp="bf16")
    (summary,) = robustness_summaries([clean, record("a", 20.0, 10.0, 30.0, ("fog", 2), amp="bf16")])
    report([summary], tmp_path, "md", with_plots=True)
    kept = json.loads((tmp_path / COLORS_FILE).read_text())["models"]
    assert kept == {"a (amp bf16)": model_colors(tmp_path, [clean])["a (amp bf16)"]}


def test_a_summary_names_the_settings_as_the_record_read_back_does() -> None:
    """A sweep's summary is built from records in memory, where a `--cfg-options` value may be a tuple; `plot`
    reads the record back from JSON (a list): both name the model alike, so it has one colour."""
    from panbench.reporting.labels import model_label, summary_model

    runs = [record("a", 50.0, 40.0, 60.0), record("a", 20.0, 10.0, 30.0, ("fog", 2))]
    for r in runs:
        r.provenance["cfg_options"] = {"model.test_cfg.x": (1, 2)}
    (summary,) = robustness_summaries(runs)
    read_back = RunRecord.from_json(json.loads(json.dumps(runs[0].to_json())))
    assert summary_model(summary) == model_label(read_back, [read_back]) == "a (model.test_cfg.x=[1, 2])"
