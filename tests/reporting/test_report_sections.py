"""What the HTML report shows (no browser: tests/reporting/test_report.py renders it in Chromium): the analyses,
the per-class table, the comparison with published numbers, and provenance titles with model, post-processing
and dataset. Records made for real (analysis_records.py) beside the invented schema-1 fixture (coco)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from analysis_records import add_run, ground_truth

from panbench.cli import main

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # schema 1, invented numbers


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("report_results")
    gt_json, images = ground_truth(root / "data", n_images=10)
    add_run(root, "noisy", gt_json, images, pred_seed=1, date="2001-01-01T00:00:01+00:00")
    add_run(root, "perfect", gt_json, images, pred_seed=None, boundary=True, postprocess="maskwise",
            date="2001-01-01T00:00:02+00:00")
    coco = json.loads(FIXTURE.read_text())
    coco["timings"] = {"images_per_s": None}  # no PQ-against-speed figure to draw: no test here reads the figures
    (root / "runs" / FIXTURE.name).write_text(json.dumps(coco))
    assert main(["report", "--results", str(root)]) == 0
    return root, (root / "report.html").read_text()


def _section(html: str, start: str, end: str) -> str:
    return html[html.index(start):html.index(end, html.index(start) + len(start))]


def test_analysis_tables_in_the_report(report) -> None:
    root, html = report
    synth = _section(html, "<h2>synth", "<h2>")
    for title in ("confidence intervals", "PQ by object size", "error breakdown", "boundary PQ", "PQ-dagger"):
        assert f"<h4>{title}" in synth, title
    perfect = json.loads(next((root / "runs").glob("*perfect_synth.json")).read_text())
    noisy = json.loads(next((root / "runs").glob("*noisy_synth.json")).read_text())
    assert f"[{noisy['ci']['PQ'][0]:.3f}, {noisy['ci']['PQ'][1]:.3f}]" in synth
    # the paired difference to the best PQ (the ground truth itself), marked
    assert f"{noisy['metrics']['PQ'] - perfect['metrics']['PQ']:+.3f}*" in synth
    assert "excludes 0" in synth
    assert f"{perfect['boundary']['PQ']:.3f}" in synth
    coco = _section(html, "<h2>coco", "<h2>synth")
    assert "Not in these records" in coco and "<h4>" not in coco  # the old record: no analysis tables


def test_per_class_table_and_published_numbers(report) -> None:
    _, html = report
    coco = _section(html, "<h2>coco", "<h2>synth")
    assert "<h3>per-class PQ</h3>" in coco and "<span class='t'>person</span></td>" in coco  # the fixture's category 1
    pub = _section(coco, "comparison with published numbers", "<h3>analyses").replace("<wbr>", "")  # break points
    assert "PQ published" in pub and "12.500" in pub and "-2.500" in pub  # the fixture's published PQ and delta
    assert "SQ published" not in pub  # no published SQ: no empty column
    synth = _section(html, "<h2>synth", "<h2>")
    assert "No published numbers for these models on this dataset" in synth
    assert "<h3>per-class PQ</h3>" in synth and "thing0" in synth


def test_provenance_titles_name_model_postprocessing_and_dataset(report) -> None:
    _, html = report
    titles = re.findall(r"<details><summary>([^<]*)</summary><table>", _section(html, "<h2>provenance", "</body>"))
    assert "perfect · post-processing maskwise · synth f1a2b3c4 (10 images)" in titles
    assert "noisy · post-processing default · synth f1a2b3c4 (10 images)" in titles
    assert any(t.startswith("fixture-model · post-processing default · coco") for t in titles)


def test_report_out_in_a_new_folder_and_an_unknown_dataset(report, tmp_path, capsys) -> None:
    root, _ = report
    out = tmp_path / "new" / "folder" / "r.html"
    assert main(["report", "--results", str(root), "--only-dataset", "coco", "--out", str(out)]) == 0
    assert out.is_file() and "<h2>coco" in out.read_text()
    capsys.readouterr()
    assert main(["report", "--results", str(root), "--only-dataset", "nope"]) == 2
    assert "no result records for dataset 'nope'" in capsys.readouterr().err


def test_report_opens_each_dataset_with_the_verdict_then_the_compared_columns(report) -> None:
    root, html = report
    synth = _section(html, "<h2>synth", "<h2>")
    assert synth.index("<h3>verdict</h3>") < synth.index("<h3>PQ / SQ / RQ</h3>") < synth.index("<h3>details</h3>")
    verdict = _section(synth, "<h3>verdict</h3>", "<h3>PQ / SQ / RQ</h3>")
    assert "10 images: ranking on PQ; paired difference to perfect [maskwise]" in verdict
    reading = re.search(r"<p class='verdict'>(.*?)</p>", verdict).group(1)
    assert reading.startswith("perfect [maskwise] beats noisy by ") and "on these 10 images" in reading
    main_table = _section(synth, "<h3>PQ / SQ / RQ</h3>", "<h3>details</h3>").replace("<wbr>", "")
    heads = re.findall(r"<th>(.*?)</th>", main_table)
    assert heads == ["model", "post-processing", "PQ", "PQ 95% CI", "PQ things", "PQ stuff", "SQ", "RQ", "mIoU",
                     "images/s", "params (M)"]
    assert "In every row: dataset synth f1a2b3c4; images 10; mIoU from panoptic." in main_table
    details = _section(synth, "<h3>details</h3>", "<h3>comparison with published").replace("<wbr>", "")
    assert "<details><summary>every column" in details and "In every row: framework mmdet" in details


def test_report_reference_chooses_the_run_the_verdict_compares_with(report, tmp_path) -> None:
    root, _ = report
    out = tmp_path / "r.html"
    args = ["--only-dataset", "synth", "--reference", "noisy", "--out", str(out)]
    assert main(["report", "--results", str(root), *args]) == 0
    verdict = _section(out.read_text(), "<h3>verdict</h3>", "<h3>PQ / SQ / RQ</h3>")
    assert "paired difference to noisy (" in verdict
    assert re.search(r"<p class='verdict'>perfect \[maskwise\] beats noisy by [0-9.]+ PQ", verdict)


def test_report_headers_are_words_not_field_names(report) -> None:
    _, html = report
    heads = {h.replace("<wbr>", "") for h in re.findall(r"<th>(.*?)</th>", html)}
    fields = {"PQ_diff_vs", "mask_quality_delta_PQ", "N_small", "PQ_small", "images_per_s", "params_M", "n_images",
              "PQ_th", "boundary_PQ", "PQ_dagger", "classification_count", "PQ_pub", "postprocess"}
    assert not heads & fields, heads & fields
    assert {"paired difference to", "categories small", "perfect masks: delta PQ", "boundary PQ"} <= heads, heads


def test_the_page_is_its_parts_and_drawing_it_prints_and_writes_nothing_but_its_plots(report, tmp_path, monkeypatch,
                                                                                     capsys) -> None:
    from panbench.records.io import load_records
    from panbench.reporting import plots
    from panbench.reporting.colors import model_colors
    from panbench.reporting.report import Page, _page
    from panbench.reporting.tables import latest_runs

    def broken(records, out, colors=None, note=""):
        raise ValueError("a plotting bug")

    monkeypatch.setattr(plots, "pq_bars", broken)
    root, written = report
    records = latest_runs(load_records(root))
    text, failed = _page(Page(root, tmp_path, None, model_colors(None, records)), records, records)
    out, err = capsys.readouterr()  # the failed plot is told to the caller, which prints it
    assert out == "" and all(line.startswith("panbench: ") and "error" not in line for line in err.splitlines())
    assert len(failed) == 2 and all("pq_bars.png: not drawn (ValueError: a plotting bug)" in n for n in failed)
    assert {p.parent.name for p in tmp_path.rglob("*.png")} >= {"coco", "synth"}  # under the folder it is given
    assert text.replace(str(tmp_path), str(root)).count("<h2>") == written.count("<h2>")
