"""Tables that paste: Markdown and LaTeX from `panbench table` (the writers of panbench/reporting/formats.py).
LaTeX is compiled with pdflatex (tests/reporting/latex.py) and its overfull-box warnings read."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from latex import compile_log

from panbench.cli import main

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # invented numbers


def _write(results: Path, name: str, **changes) -> dict:
    rec = json.loads(GOLDEN.read_text())
    rec.update(changes)
    (results / "runs").mkdir(exist_ok=True)
    (results / "runs" / f"{name}.json").write_text(json.dumps(rec))
    return rec


def _table(results: Path, capsys, *args: str) -> str:
    assert main(["table", "--results", str(results), *args]) == 0
    return capsys.readouterr().out


def _md_rows(text: str) -> list[list[str]]:
    """The comparison table's rows (after the verdict), cells split at unescaped '|'."""
    lines = text[text.index("\n| model"):].strip().split("\n\n")[0].splitlines()
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] for line in lines]


def test_markdown_numbers_have_the_decimals_of_their_column_and_a_pipe_in_a_name_is_escaped(tmp_path, capsys) -> None:
    for name, pq in (("a|b", 100.0), ("c", 58.6), ("d", 41.99)):
        m = {**json.loads(GOLDEN.read_text())["metrics"], "PQ": pq}
        _write(tmp_path, name, model=name, metrics=m)
    rows = _md_rows(_table(tmp_path, capsys))
    head, body = rows[0], rows[2:]
    assert all(len(r) == len(head) for r in body), rows  # the '|' in 'a|b' did not make a column
    assert [r[0] for r in body] == [r"a\|b", "c", "d"]
    assert [r[head.index("PQ")] for r in body] == ["100.000", "58.600", "41.990"]


def test_one_image_is_singular(tmp_path, capsys) -> None:
    _write(tmp_path, "one", n_images=1)
    out = _table(tmp_path, capsys)
    assert "1 image:" in out and "1 images" not in out and "this image" in out


@pytest.fixture
def eight_runs(tmp_path) -> Path:
    """Eight runs on one generated set (the names of the zoo and the demo, one long); the --ci analysis."""
    from analysis_records import add_run, ground_truth

    gt_json, images = ground_truth(tmp_path / "data", n_images=12)
    names = ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn", "hf-mask2former_swin-t",
             "mask2former_swin-l-p4-w12-384-in21k_8xb2-lsj-100e_coco-panoptic", "panoptic-fpn_r50", "maskformer_r50",
             "Mask DINO (detectron2) saved predictions"]
    for k, name in enumerate(names):
        add_run(tmp_path, name, gt_json, images, pred_seed=k, date=f"2001-01-01T00:00:0{k}+00:00")
    return tmp_path


def _overfull(log: str) -> list[str]:
    return re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)


def test_latex_verdict_in_its_own_paragraph_and_the_ci_table_fit_the_page(eight_runs, capsys, tmp_path) -> None:
    """Portrait: the verdict (a long heading, then the ranking, then its reading); landscape: the default table
    and ``--ci``'s.  No line wider than the text (pdflatex's overfull-box warnings)."""
    tex = _table(eight_runs, capsys, "--format", "latex")
    verdict, table = tex.split("\n\n\n")
    assert r"\par" in verdict.split(r"\begin{tabular}")[0].splitlines()[-1]  # the ranking starts a paragraph
    assert _overfull(compile_log(verdict, tmp_path / "portrait")) == [], verdict
    assert _overfull(compile_log(table, tmp_path / "default", landscape=True)) == [], table
    ci = _table(eight_runs, capsys, "--format", "latex", "--ci")
    assert _overfull(compile_log(ci, tmp_path / "landscape", landscape=True)) == [], ci


def test_latex_dashes_minus_and_headers(eight_runs, capsys, tmp_path) -> None:
    """'--reference' stays two hyphens (LaTeX makes '--' an en dash), a negative number has a math minus, headers
    are words, not field names."""
    tex = _table(eight_runs, capsys, "--format", "latex", "--ci")
    assert "--" not in tex and r"-{}-reference" in tex  # the paired differences' note names --reference
    tex = _table(eight_runs, capsys, "--format", "latex", "--ci", "--all-columns")
    assert "$-$" in tex
    cells = [c for line in tex.splitlines() if line.endswith(r"\\") for c in line.split("&")]
    assert not [c for c in cells if re.search(r"(?<![\w$])-\d", c)], "a hyphen as minus"
    tex = _table(eight_runs, capsys, "--format", "latex", "--all-columns")
    for raw in (r"images\_per\_s", r"params\_M", r"n\_images", r"PQ\_th", r"N\_all"):
        assert raw not in tex
    assert "images/s" in tex and "PQ things" in tex
    compile_log(tex, tmp_path)


def test_a_new_format_is_one_entry(tmp_path, capsys, monkeypatch) -> None:
    """The table of writers: an entry is all a format needs (`table --format` and `table --robustness --format`
    offer it, the tables use it, its ``notes_apart`` sends the verdict and footnotes to stderr)."""
    from panbench.reporting import formats

    monkeypatch.setitem(formats.WRITERS, "tsv", formats.Writer(lambda df, digits, notes: df.to_csv(sep="\t"),
                                                               None, notes_apart=True, fields=True))
    _write(tmp_path, "m")
    assert main(["table", "--results", str(tmp_path), "--format", "tsv"]) == 0
    out, err = capsys.readouterr()
    assert "model\tdataset\tn_images\tPQ" in out
    assert "m" in err and "\t" not in err  # notes_apart: the verdict and footnotes on stderr, not in the table
    same_images = {"dataset": {"fingerprint": "fp1"}}
    _write(tmp_path, "m", provenance=same_images)
    _write(tmp_path, "m-fog", dataset="coco+fog-2", record="runs/m-fog.json", provenance=same_images,
           corruption={"name": "fog", "severity": 2, "group": "weather", "implementation": "x"})
    out = _table(tmp_path, capsys, "--robustness", "--format", "tsv")
    assert "\tclean_PQ\tclean_PQ_th\tclean_PQ_st\tmPC_PQ\t" in out  # a writer for machines: the field names


def test_robustness_and_per_class_tables_use_the_writers(tmp_path, capsys) -> None:
    _write(tmp_path, "m")
    out = _table(tmp_path, capsys, "--format", "latex", "--per-class")
    assert r"\toprule" in out and "category\\_id" not in out and "category" in out
    if shutil.which("pdflatex"):
        compile_log(out, tmp_path)


def test_headers_in_words_but_a_run_label_as_it_is(tmp_path, capsys) -> None:
    """Field names read as words; a model's name in a header (the per-class table's columns) keeps its '_'."""
    from panbench.reporting.formats import header

    assert [header(c) for c in ("images_per_s", "N_small", "PQ_diff_vs", "mask_quality_delta_PQ", "mPC PQ_th")] == [
        "images/s", "categories small", "paired difference to", "perfect masks: delta PQ", "mPC PQ things"]
    _write(tmp_path, "m", model="mask2former_swin-t")
    assert " mask2former_swin-t |" in _table(tmp_path, capsys, "--per-class")


def test_table_csv_keeps_every_digit_of_the_record(tmp_path, capsys) -> None:
    import csv
    import io

    m = {**json.loads(GOLDEN.read_text())["metrics"], "PQ": 35.50612345678901, "SQ": 80.1234567}
    _write(tmp_path, "a", metrics=m, timings={"images_per_s": 1.234567891, "timed_images": 12})
    for extra in ((), ("--all-columns",)):
        (row,) = list(csv.DictReader(io.StringIO(_table(tmp_path, capsys, "--format", "csv", *extra))))
        assert float(row["PQ"]) == 35.50612345678901 and float(row["SQ"]) == 80.1234567
        assert float(row["images_per_s"]) == 1.234567891
    md = _md_rows(_table(tmp_path, capsys))  # the tables for readers still round
    assert md[2][md[0].index("PQ")] == "35.506"


def test_every_csv_and_json_output_is_the_data_alone_on_stdout(tmp_path, capsys) -> None:
    """`table --format csv` (with each option), `compare --json` and `score --json` print the data alone on
    stdout (one CSV, one JSON object), whatever notes and verdict they say on stderr; `table --robustness` and
    `robustness`: tests/robustness/test_summary.py."""
    import csv
    import io

    from analysis_records import add_run, ground_truth

    res = tmp_path / "res"
    gt_json, images = ground_truth(tmp_path / "data", n_images=12)
    for k, name in enumerate(("m-a", "m-b")):
        add_run(res, name, gt_json, images, pred_seed=k, date=f"2001-01-01T00:00:0{k}+00:00")
    add_run(res, "m-c", gt_json, images[:2], pred_seed=3, fingerprint="0" * 16)  # too few images: notes
    for opts in ((), ("--ci",), ("--errors",), ("--per-class",), ("--all-columns", "--vs-published")):
        assert main(["table", "--results", str(res), "--format", "csv", *opts]) == 0
        cap = capsys.readouterr()
        rows = list(csv.reader(io.StringIO(cap.out)))
        assert len(rows) > 2 and all(len(r) == len(rows[0]) for r in rows), (opts, cap.out)
        assert cap.out.endswith("\n") and not cap.out.endswith("\n\n"), opts
        if opts != ("--per-class",):
            assert len(rows) == 4 and cap.err.strip(), opts  # the verdict and the notes: on stderr
    import numpy as np
    from analysis_records import CATS

    from panbench.data.synth import perturb, write_panoptic

    pred_json, pred_dir = write_panoptic(tmp_path / "pred", "pred", [(i, perturb(np.random.default_rng(1), g, CATS))
                                                                     for i, g in images], CATS)
    gt = ["--gt-json", str(gt_json), "--gt-dir", str(gt_json.parent / "gt"), "--results", str(res), "--json"]
    for name, (js, folder) in (("gt itself", (gt_json, gt_json.parent / "gt")), ("perturbed", (pred_json, pred_dir))):
        assert main(["score", *gt, "--pred-json", str(js), "--pred-dir", str(folder), "--name", name]) == 0
        cap = capsys.readouterr()
        assert set(json.loads(cap.out)) >= {"PQ", "per_class"} and "record: " in cap.err
    assert main(["compare", "gt itself", "perturbed", "--json", "--results", str(res)]) == 0
    assert json.loads(capsys.readouterr().out)["difference"] == "B - A"
