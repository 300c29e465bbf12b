"""Golden tests of `panbench table` against a fixed results record (cells compared with a tolerance).

The record is a fixture (tests/fixtures/README.md): its numbers are invented, not measured."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from latex import assert_compiles

from panbench.cli import main

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"


@pytest.fixture
def results(tmp_path) -> Path:
    (tmp_path / "runs").mkdir()
    shutil.copy(GOLDEN, tmp_path / "runs" / GOLDEN.name)
    older = json.loads(GOLDEN.read_text())
    older["date"], older["metrics"]["PQ"] = "1999-01-01T00:00:00+00:00", 1.0  # an older run: not shown
    (tmp_path / "runs" / "older.json").write_text(json.dumps(older))
    return tmp_path


def test_csv_cells_match_the_record(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "csv", "--vs-published", "--all-columns"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="model")
    row = df.loc["fixture-model"]
    expected = {"PQ": 10.0, "SQ": 20.0, "RQ": 30.0, "PQ_th": 11.0, "SQ_th": 21.0, "RQ_th": 31.0,
                "PQ_st": 12.0, "SQ_st": 22.0, "RQ_st": 32.0, "N_all": 133, "N_th": 80, "N_st": 53,
                "images_per_s": 1.5, "PQ_pub": 12.5, "PQ_delta": -2.5, "params_M": 1.0}
    for k, v in expected.items():
        assert row[k] == pytest.approx(v, abs=1e-3), k
    assert len(df) == 1 and row["device"] == "fixture (no device: not a measurement)"


@pytest.mark.parametrize("fmt,marker", [("md", "| fixture-model"), ("latex", "\\begin{tabular}"),
                                        ("html", "<table")])
def test_formats(results, capsys, fmt, marker) -> None:
    assert main(["table", "--results", str(results), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert marker in out and "10" in out and "fixture-model" in out


def test_per_class(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--per-class", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="category_id")
    assert df.loc[1, "name"] == "person" and df.loc[92, "fixture-model"] == pytest.approx(40.0)


def test_no_records_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["table", "--results", str(tmp_path)]) == 2
    assert "run `panbench eval` first" in capsys.readouterr().err


def _write(results: Path, name: str, **changes) -> dict:
    rec = json.loads(GOLDEN.read_text())
    for k, v in changes.items():
        rec[k] = v
    (results / "runs" / f"{name}.json").write_text(json.dumps(rec))
    return rec


def _csv(results: Path, capsys, *extra: str) -> pd.DataFrame:
    assert main(["table", "--results", str(results), "--format", "csv", *extra]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)


def test_dataset_column_and_runs_grouped_by_fingerprint(results, capsys) -> None:
    """Two demo sets (different seeds, so different fingerprints) are two datasets, each with its image
    count; a COCO row is told apart from demo rows by the dataset column."""
    base = json.loads(GOLDEN.read_text())
    for name, fp, n in (("seed0", "aaaaaaaa11111111", 60), ("seed4", "bbbbbbbb22222222", 40)):
        prov = {**base["provenance"], "dataset": {"fingerprint": fp}}
        _write(results, name, dataset="demo", model="demo-m", n_images=n, provenance=prov,
               date=f"2001-01-0{n // 20}T00:00:00+00:00")
    df = _csv(results, capsys)
    demo = df[df["model"] == "demo-m"].set_index("dataset")
    assert sorted(demo.index) == ["demo aaaaaaaa", "demo bbbbbbbb"]
    assert demo.loc["demo aaaaaaaa", "n_images"] == 60 and demo.loc["demo bbbbbbbb", "n_images"] == 40
    assert df[df["model"] == "fixture-model"]["dataset"].tolist() == ["coco"]


def test_limit_subset_batch_and_amp_columns(results, capsys) -> None:
    base = json.loads(GOLDEN.read_text())
    prov = {**base["provenance"], "command": "panbench eval --model m2 --limit 12 --batch-size 2 --amp bf16"}
    _write(results, "limited", model="m2", batch_size=2, amp="bf16", provenance=prov)
    prov = {**base["provenance"], "command": "panbench eval --model m3 --subset ids.txt"}
    _write(results, "subset", model="m3", provenance=prov)
    df = _csv(results, capsys, "--all-columns").set_index("model")
    assert df.loc["m2", "selection"] == "limit 12" and df.loc["m2", "batch"] == 2 and df.loc["m2", "amp"] == "bf16"
    assert df.loc["m3", "selection"] == "subset ids.txt"
    assert df.loc["fixture-model", "selection"] == "all" and df.loc["fixture-model", "amp"] == "fp32"


def test_external_rows_are_blank_not_zero(results, capsys) -> None:
    """`score --name` records have no speed and no parameter count: blank, never 0."""
    _write(results, "ext", model="ext", architecture="external", params=None, batch_size=None,
           timings={"images_per_s": None}, device="external", published={}, delta_to_published={})
    df = _csv(results, capsys, "--all-columns").set_index("model")
    assert df.loc["ext", "images_per_s"] == "" and df.loc["ext", "params_M"] == ""
    assert df.loc["ext", "selection"] == "external"
    assert main(["table", "--results", str(results)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| ext"))
    cells = [c.strip().rstrip("~") for c in row.split("|")]
    assert not [c for c in cells if c[:1].isdigit() and float(c) == 0], row


def test_vs_published_says_which_rows_have_none(results, capsys) -> None:
    _write(results, "demo", model="demo-m", dataset="demo", published={}, delta_to_published={})
    df = _csv(results, capsys, "--vs-published").set_index("model")
    assert df.loc["demo-m", "published"] == "none for this model and dataset"
    assert df.loc["fixture-model", "published"] == "MMDetection model zoo"  # a record without published_source
    assert float(df.loc["fixture-model", "PQ_pub"]) == 12.5
    # with no row published, no empty number columns, only the note
    df = _csv(results, capsys, "--vs-published", "--only-dataset", "demo")
    assert df["published"].tolist() == ["none for this model and dataset"]
    assert not [c for c in df.columns if c.endswith("_pub") or c.endswith("_delta")]


def test_vs_published_names_the_source_of_each_row(results, capsys) -> None:
    """An hf: model's published PQ is the original release's, not the MMDetection zoo's: the column says so."""
    from panbench.evaluation.record_fields import published_source
    from panbench.models.registry import all_models

    m2f = next(s for s in all_models(framework="transformers") if s.name == "hf-mask2former_swin-t")
    _write(results, "hf", model=m2f.name, framework="transformers", published=m2f.published,
           published_source=published_source(m2f))
    _write(results, "hf-old", model="hf-old", framework="transformers", published={"PQ": 50.0})  # no source kept
    df = _csv(results, capsys, "--vs-published").set_index("model")
    assert df.loc[m2f.name, "published"] == "facebookresearch/Mask2Former MODEL_ZOO.md, COCO panoptic table"
    assert df.loc["hf-old", "published"] == "original release (docs/huggingface.md)"
    hf = all_models(framework="transformers")
    swin_b = next(s for s in hf if s.name == "hf-mask2former_swin-b")  # no published number
    assert published_source(swin_b) is None
    from panbench.models.registry import resolve

    zoo = resolve("mask2former")[0]  # a config's published numbers: the zoo's
    assert zoo.published and published_source(zoo) == "MMDetection model zoo"


def test_latex_escapes_and_compiles(results, capsys, tmp_path) -> None:
    """Underscores (and the like) escaped, no empty index row; compiled with pdflatex when installed."""
    _write(results, "under", model="my_model_50%&#")
    assert main(["table", "--results", str(results), "--format", "latex", "--vs-published"]) == 0
    tex = capsys.readouterr().out
    assert r"my\_model\_50\%\&\#" in tex and "PQ things" in tex
    head = tex.split(r"\begin{tabular}{")[-1].split(r"\midrule")[0].strip().splitlines()  # the table after the verdict
    assert head[-1].startswith("model &"), head  # one header row: no row of the index's name
    assert_compiles(tex, tmp_path)


def test_html_has_no_empty_index_row(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "html"]) == 0
    html = capsys.readouterr().out
    table = html.split("</table>")[-2]  # the comparison, after the verdict's ranking
    assert table.count("<tr") == 2  # the header and the one run
    assert "<th>model</th>" in html


def test_per_class_absent_categories_blank_and_columns_name_the_postprocessing(results, capsys) -> None:
    base = json.loads(GOLDEN.read_text())
    pc = {**base["per_class"], "5": {"PQ": 0.0, "SQ": 0.0, "RQ": 0.0, "TP": 0, "FP": 0, "FN": 0}}
    _write(results, "maskwise", postprocess="maskwise", per_class=pc, date="2001-01-01T00:00:00+00:00")
    df = _csv(results, capsys, "--per-class").set_index("category_id")
    assert sorted(df.columns) == ["fixture-model", "fixture-model [maskwise]", "name"]  # named as the verdict does
    assert df.loc[5, "fixture-model [maskwise]"] == ""  # absent from GT and predictions: blank, not 0
    assert float(df.loc[92, "fixture-model [maskwise]"]) == pytest.approx(40.0)


def test_runs_that_differ_in_cfg_options_amp_or_batch_stay_apart_and_labelled(results, capsys) -> None:
    """Two runs of one model on one dataset that differ only by --cfg-options (or AMP, or batch size) are
    separate rows, told apart by their columns and labels; a re-run with the same settings replaces the older."""
    base = json.loads(GOLDEN.read_text())
    cfg = {"model.test_cfg.object_mask_thr": 0.9}
    _write(results, "strict", provenance={**base["provenance"], "cfg_options": cfg},
           date="2001-01-01T00:00:00+00:00", metrics={**base["metrics"], "PQ": 7.0})
    _write(results, "amp", amp="bf16", date="2001-01-01T00:00:00+00:00", metrics={**base["metrics"], "PQ": 8.0})
    df = _csv(results, capsys, "--all-columns")
    rows = df[df["model"] == "fixture-model"].set_index("cfg_options")
    assert len(rows) == 3  # the older run of the same settings is still replaced by the newest
    assert rows.loc["model.test_cfg.object_mask_thr=0.9", "PQ"] == 7.0
    assert sorted(rows.loc["", "PQ"].tolist()) == [8.0, 10.0] and "bf16" in rows.loc["", "amp"].tolist()
    # an analysis table keeps the settings columns that tell its rows apart, and drops the uniform ones
    dagger = _csv(results, capsys, "--dagger")
    assert {"cfg_options", "amp"} <= set(dagger.columns) and len(dagger) == 3
    assert "selection" not in dagger.columns and "batch" not in dagger.columns  # all "all", all 1
    # the per-class table (and every label: plots, notes, paired differences) names each run apart
    assert main(["table", "--results", str(results), "--per-class", "--format", "csv"]) == 0
    cols = pd.read_csv(io.StringIO(capsys.readouterr().out)).columns.tolist()
    assert cols[2:] == ["fixture-model", "fixture-model (amp bf16)",  # the best PQ first, as the verdict
                        "fixture-model (model.test_cfg.object_mask_thr=0.9)"]


NOT_RECORDS = ['{"note": "not a record"}', "[1, 2]", '{"model": "m", ',
               '{"model": "x", "dataset": "demo", "metrics": {}}', '{"model": "x"}']


@pytest.mark.parametrize("command", ["table", "plot", "report"])
def test_a_json_in_runs_that_is_not_a_record_is_skipped_in_one_line(results, capsys, command) -> None:
    """Each kind of JSON that is no record in one runs/ folder, read by one command: one line for each file."""
    for record in (results / "runs").glob("*.json"):  # no measured speed: no PQ-against-speed figure to draw
        record.write_text(json.dumps({**json.loads(record.read_text()), "timings": {"images_per_s": None}}))
    for k, text in enumerate(NOT_RECORDS):
        (results / "runs" / f"notes-{k}.json").write_text(text)
    assert main([command, "--results", str(results)]) == 0  # the other records read
    said = "".join(f"{line}\n" for line in capsys.readouterr().err.splitlines() if not line.endswith("..."))  # phases
    assert "Traceback" not in said
    for k, text in enumerate(NOT_RECORDS):
        path = results / "runs" / f"notes-{k}.json"
        err = "".join(f"{line}\n" for line in said.splitlines() if path.name in line)
        assert f"skipped {path}: not a panbench result record" in err and "move it out of" in err, (text, err)
        assert len(err.strip().splitlines()) == 1, (text, err)
        if text == '{"model": "x"}':
            assert "(no 'metrics')" in err  # what is missing, not what is there


def test_per_class_keeps_the_categories_of_each_dataset_apart(results, capsys) -> None:
    """Category 1 is `person` in COCO and `disk` in the demo set: one block of rows per dataset, each run's PQ in
    its own dataset's rows, never a COCO row named after a demo category."""
    base = json.loads(GOLDEN.read_text())
    _write(results, "demo", model="demo-m", dataset="demo", per_class={"1": {**base["per_class"]["1"], "PQ": 77.0}},
           provenance={"category_names": {"1": "disk"}})
    assert main(["table", "--results", str(results), "--per-class", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index(["dataset", "category_id"])
    assert df.loc[("coco", 1), "name"] == "person" and df.loc[("demo", 1), "name"] == "disk"
    assert df.loc[("demo", 1), "demo-m"] == 77.0 and pd.isna(df.loc[("coco", 1), "demo-m"])
    assert pd.isna(df.loc[("demo", 1), "fixture-model"])


def _cells(text: str, fmt: str) -> list[list[str]]:
    """The rows of the last table in ``text`` (the comparison, after the verdict's ranking), as cell texts."""
    import re

    if fmt == "md":
        lines = text[text.index("\n| model"):].strip().splitlines()
        return [[c.strip() for c in line.strip("|").split("|")] for line in lines if not line.startswith("|:")]
    if fmt == "html":
        table = text.split("<table")[-1]
        return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
                for row in re.findall(r"<tr.*?</tr>", table, re.S)]
    table = text.split(r"\begin{tabular}{")[-1]  # a header on two lines is a tabular in the header: "A B"
    table = re.sub(r"\\begin\{tabular\}\[b\]\{@\{\}[lr]@\{\}\}(.*?)\\\\\{\}(.*?)\\end\{tabular\}", r"\1 \2", table)
    return [[c.strip().replace(r"\_", "_") for c in line.rstrip("\\ ").split("&")] for line in table.splitlines()
            if "&" in line]


@pytest.mark.parametrize("fmt", ["md", "html", "latex"])
def test_batch_size_is_an_integer_beside_an_external_row(results, capsys, fmt) -> None:
    """An external (`score --name`) row has no batch size: the others still show `1`, never `1.000`."""
    _write(results, "ext", model="ext", architecture="external", batch_size=None, amp=None)
    assert main(["table", "--results", str(results), "--all-columns", "--format", fmt]) == 0
    out = capsys.readouterr().out
    rows = _cells(out, fmt)
    head, body = rows[0], {r[0]: r for r in rows[1:]}
    assert body["fixture-model"][head.index("batch")] == "1" and body["ext"][head.index("batch")] == "-"
    assert "In every row: " in out and "images 10;" in out  # the same in both rows: said once, an integer


def test_default_table_holds_the_compared_columns_and_all_columns_the_rest(results, capsys) -> None:
    df = _csv(results, capsys)
    assert list(df.columns) == ["model", "dataset", "n_images", "PQ", "PQ_low", "PQ_high", "PQ_th", "PQ_st", "SQ",
                                "RQ", "mIoU", "mIoU_from", "images_per_s", "params_M"]
    every = _csv(results, capsys, "--all-columns")
    assert {"framework", "selection", "batch", "amp", "SQ_th", "RQ_st", "N_all", "device"} <= set(every)


def test_a_speed_measured_beside_another_run_is_marked_in_the_table_and_the_plot(results, capsys, tmp_path) -> None:
    from panbench.records.io import record_from_json
    from panbench.reporting.plots import pq_vs_speed

    rec = _write(results, "shared", model="shared-model", speed_context={"overlapped": True})
    assert main(["table", "--results", str(results), "--format", "md"]) == 0
    rows = _cells(capsys.readouterr().out, "md")
    head, body = rows[0], {r[0]: r for r in rows[1:]}
    col = head.index("images/s")
    assert body["shared-model"][col] == "1.500~" and body["fixture-model"][col] == "1.500"
    assert main(["table", "--results", str(results)]) == 0
    assert ("~ after images/s: measured beside another panbench run or while other work loaded the cores it used"
            in capsys.readouterr().out)
    df = _csv(results, capsys, "--all-columns")
    assert df.set_index("model").loc["shared-model", "images_per_s_shared"] in (True, "True")
    fig_text = []
    import matplotlib.figure

    save = matplotlib.figure.Figure.savefig

    def keep_text(fig, *a, **k):  # the legend and note texts of the figure as drawn
        fig_text.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        return save(fig, *a, **k)

    matplotlib.figure.Figure.savefig = keep_text
    try:
        pq_vs_speed([record_from_json(json.loads(GOLDEN.read_text())), record_from_json(rec)], tmp_path)
    finally:
        matplotlib.figure.Figure.savefig = save
    assert any(t.endswith("~") and "shared-model" in t for t in fig_text)
    assert any("~: speed measured beside another panbench run or while other work loaded the cores it used" in t
               for t in fig_text)


def test_a_column_is_shown_by_its_declared_kind_not_by_its_name(monkeypatch) -> None:
    from panbench.reporting import columns as kinds
    from panbench.reporting.tables import counts_with_deltas, format_table

    monkeypatch.setattr(kinds, "BUILT_IN", (
        kinds.Column("fast_bottom", "interval_low", ("fast",)), kinds.Column("fast_top", "interval_high", ("fast",)),
        kinds.Column("fast_beside", "shared", ("fast",)), kinds.Column("gap_star", "mark", ("gap",)),
        kinds.Column("holes", "count", ("holes",)), kinds.Column("holes_gain", "delta", ("holes",)),
        kinds.Column("fix_all_gain", "delta", ("fix_all",))))
    df = pd.DataFrame({"model": ["a", "b"], "fix_all_gain": [3.0, 4.0], "fast": [2.5, 3.0], "fast_bottom": [2.0, 2.5],
                       "fast_top": [3.0, 3.5], "fast_beside": [True, False], "gap": [1.5, -0.25],
                       "gap_star": ["*", ""], "holes": [2, 5], "holes_gain": [0.5, 1.25], "PQ_low": [1.0, 2.0]})
    df = df.set_index("model")
    out = pd.read_csv(io.StringIO(format_table(df, "csv")))
    assert list(out.columns) == ["model", *df.columns]  # CSV: the fields as they are
    md = format_table(df, "md")
    assert "[2.000, 3.000]" in md and "2.500~" in md and "+1.500*" in md and "-0.250 " in md  # by kind
    assert "PQ_low" in md.replace("PQ low", "PQ_low")  # a name's suffix alone says nothing
    assert "holes: delta PQ" in md and "fix_all: delta PQ" in md  # a delta's header names what it belongs to
    compact = counts_with_deltas(df.copy())
    assert list(compact.columns)[-2:] == ["holes: count, delta PQ", "fix_all_gain"]
    assert list(compact["holes: count, delta PQ"]) == ["2, +0.50", "5, +1.25"]
