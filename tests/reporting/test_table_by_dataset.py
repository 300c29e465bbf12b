"""`panbench table --by dataset` (and `report --by dataset`, `plot --by dataset`): one table across datasets, a row per
architecture and backbone, a column group per dataset, each published number beside the measured one, nothing ranked
across datasets (docs/reporting.md, "One table across datasets").

The records are the table tests' fixture (tests/fixtures/fixture_record.json) with fields changed: every number in them
is a test input, invented, not a measurement."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from latex import assert_compiles

from panbench.cli import main

GOLDEN = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # invented numbers
FORMATS = ("md", "csv", "latex", "html")
M2F, ONEFORMER, FPN = ("hf-mask2former_swin-l: Mask2Former | Swin-L (IN-21k)",
                       "hf-oneformer_swin-l: OneFormer | Swin-L (IN-21k)", "panoptic-fpn_r50: PanopticFPN | R-50")
READER = {"PQ": "PQ", "PQ_th": "PQ things", "PQ_st": "PQ stuff", "AP": "AP", "mIoU": "mIoU"}  # the header words


def _write(results: Path, name: str, **changes) -> dict:
    rec = json.loads(GOLDEN.read_text())
    rec.update(changes)
    (results / "runs").mkdir(parents=True, exist_ok=True)
    (results / "runs" / f"{name}.json").write_text(json.dumps(rec))
    return rec


def _metrics(pq: float, th: float, st: float) -> dict:
    return {**json.loads(GOLDEN.read_text())["metrics"], "PQ": pq, "PQ_th": th, "PQ_st": st}


@pytest.fixture
def results(tmp_path) -> Path:
    """One model family under a registered name per dataset (coco, cityscapes), another on coco only, a third on
    cityscapes only; AP computed on coco only; a corrupted run of coco."""
    r = tmp_path / "results"
    _write(r, "m2f-coco", model="hf-mask2former_swin-l", backbone="Swin-L (IN-21k)", dataset="coco",
           metrics=_metrics(57.8, 64.2, 47.9), published={"PQ": 57.8, "PQ_th": None}, ap={"AP": 48.6},
           date="2001-01-01T00:00:00+00:00", n_images=5000)
    _write(r, "m2f-cs", model="hf-mask2former_swin-l-cityscapes", backbone="Swin-L (IN-21k)", dataset="cityscapes",
           metrics=_metrics(66.6, 59.0, 72.1), published={"PQ": 66.6, "AP": 43.6, "mIoU": 82.9}, miou=83.1,
           miou_source="semantic", date="2001-01-02T00:00:00+00:00", n_images=500)
    _write(r, "oneformer", model="hf-oneformer_swin-l", architecture="OneFormer", backbone="Swin-L (IN-21k)",
           dataset="coco", metrics=_metrics(57.9, 64.4, 48.0), published={"PQ": 57.9, "PQ_th": 64.4, "PQ_st": 48.0},
           ap={"AP": 49.0}, date="2001-01-03T00:00:00+00:00", n_images=5000)
    _write(r, "fpn", model="panoptic-fpn_r50-cityscapes", architecture="PanopticFPN", backbone="R-50",
           dataset="cityscapes", metrics=_metrics(80.0, 70.0, 90.0), published={}, miou=75.0, miou_source="semantic",
           date="2001-01-04T00:00:00+00:00", n_images=500)
    _write(r, "fog", model="hf-oneformer_swin-l", architecture="OneFormer", backbone="Swin-L (IN-21k)",
           dataset="coco+fog-3", metrics=_metrics(30.0, 30.0, 30.0), corruption={"name": "fog", "severity": 3},
           date="2001-01-05T00:00:00+00:00")
    return r


def _run(results: Path, capsys, *args: str, code: int = 0) -> tuple[str, str]:
    assert main(["table", "--results", str(results), "--by", "dataset", *args]) == code
    got = capsys.readouterr()
    return got.out, got.err


def _unlatex(cell: str) -> str:
    """A LaTeX cell or header of the writer as plain text."""
    wrappers = r"\\begin\{tabular\}\[[bt]\]\{@\{\}[lr]@\{\}\}|\\end\{tabular\}|\\parbox\[t\]\{10em\}\{\\raggedright "
    cell = re.sub(wrappers, "", cell)
    cell = cell.replace(r"\\{}", " ").replace(r"\allowbreak{}", "").replace(r"\textbar{}", "|").replace(r"\_", "_")
    return cell.removesuffix("}") if cell.count("}") > cell.count("{") else cell


def _table(fmt: str, out: str) -> pd.DataFrame:
    """The printed table as text cells, index the row, columns the headers as printed (CSV: its field names)."""
    if fmt == "csv":
        return pd.read_csv(io.StringIO(out), index_col="model", dtype=str, keep_default_na=False)
    if fmt == "md":
        lines = [ln for ln in out.splitlines() if ln.startswith("|")]
        rows = [[c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
        head, body = rows[0], rows[2:]
    elif fmt == "html":
        head = [re.sub("<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", out)]
        body = [[re.sub("<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
                for row in re.findall(r"<tr>(.*?)</tr>", out, re.S)]
    else:
        tab = out[out.index(r"\toprule"):out.index(r"\bottomrule")]
        lines = [ln.removesuffix(r" \\") for ln in tab.splitlines()[1:] if ln.strip() not in (r"\midrule", "")]
        rows = [[_unlatex(c.strip()).replace("$-$", "-") for c in ln.split(" & ")] for ln in lines]
        head, body = rows[0], rows[1:]
    return pd.DataFrame([r[1:] for r in body], index=[r[0] for r in body], columns=head[1:])


def _col(fmt: str, dataset: str, key: str, pub: bool = False) -> str:
    """A column's name as ``fmt`` prints it."""
    if fmt == "csv":
        return f"{dataset}.{key}{'_pub' * pub}"
    return f"{dataset} {READER[key]}{' pub.' * pub}"


def _num(fmt: str, value: float) -> str:
    return repr(value) if fmt == "csv" else f"{value:.2f}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_are_architecture_and_backbone_across_the_names_of_each_dataset(results, capsys, fmt) -> None:
    """hf-mask2former_swin-l (coco) and hf-mask2former_swin-l-cityscapes are one row: Mask2Former | Swin-L."""
    df = _table(fmt, _run(results, capsys, "--format", fmt)[0])
    assert df.index.tolist() == [M2F, ONEFORMER, FPN]
    assert df.loc[M2F, _col(fmt, "coco", "PQ")] == _num(fmt, 57.8)
    assert df.loc[M2F, _col(fmt, "cityscapes", "PQ")] == _num(fmt, 66.6)
    if fmt == "csv":  # the run each cell is, for machines
        assert df.loc[M2F, "coco.run"] == "hf-mask2former_swin-l"
        assert df.loc[M2F, "cityscapes.run"] == "hf-mask2former_swin-l-cityscapes"


@pytest.mark.parametrize("fmt", FORMATS)
def test_column_groups_per_dataset_each_published_number_beside_its_measured_one(results, capsys, fmt) -> None:
    df = _table(fmt, _run(results, capsys, "--format", fmt)[0])
    metrics = [c for c in df.columns if not c.endswith((".run", ".n_images"))]
    assert metrics == [_col(fmt, *c) for c in (
        ("cityscapes", "PQ"), ("cityscapes", "PQ", True), ("cityscapes", "PQ_th"), ("cityscapes", "PQ_st"),
        ("cityscapes", "mIoU"), ("cityscapes", "mIoU", True),
        ("coco", "PQ"), ("coco", "PQ", True), ("coco", "PQ_th"), ("coco", "PQ_th", True), ("coco", "PQ_st"),
        ("coco", "PQ_st", True), ("coco", "AP"))]
    assert df.loc[M2F, _col(fmt, "cityscapes", "mIoU")] == _num(fmt, 83.1)
    assert df.loc[M2F, _col(fmt, "cityscapes", "mIoU", True)] == _num(fmt, 82.9)
    assert df.loc[ONEFORMER, _col(fmt, "coco", "PQ_st", True)] == _num(fmt, 48.0)
    blank = "" if fmt == "csv" else "-"
    assert df.loc[M2F, _col(fmt, "coco", "PQ_th", True)] == blank  # published as null
    assert df.loc[ONEFORMER, _col(fmt, "cityscapes", "PQ")] == blank  # no run there


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_metric_no_run_of_a_dataset_has_is_left_out_of_its_group(results, capsys, fmt) -> None:
    """AP: computed on coco, on no cityscapes run (its published AP 43.6 goes with it); mIoU the other way round."""
    out = _run(results, capsys, "--format", fmt)[0]
    df = _table(fmt, out)
    assert _col(fmt, "coco", "AP") in df.columns and _col(fmt, "cityscapes", "AP") not in df.columns
    assert _col(fmt, "cityscapes", "AP", True) not in df.columns and "43.6" not in out
    assert _col(fmt, "cityscapes", "mIoU") in df.columns and _col(fmt, "coco", "mIoU") not in df.columns


@pytest.mark.parametrize("fmt", FORMATS)
def test_nothing_is_ranked_across_datasets(results, capsys, fmt) -> None:
    """The rows keep the order of their names whatever the PQ of any group (PanopticFPN, the best on cityscapes, is
    last), no rank column, no mark of a best value; the notes say why."""
    out, err = _run(results, capsys, "--format", fmt)
    df = _table(fmt, out)
    assert df.index.tolist() == sorted(df.index, key=str.casefold)
    pq = pd.to_numeric(df[_col(fmt, "cityscapes", "PQ")].replace({"-": None, "": None}))
    assert pq.idxmax() == FPN and df.index[-1] == FPN and "rank" not in df.columns
    assert not re.search(r"\\textbf|<b>|<strong>|\*\*\d|\d\*", out.split("Rows in the order")[0])
    assert "never ranked against each other" in (err if fmt == "csv" else out)


def test_the_latest_run_of_a_row_on_a_dataset_is_shown_and_another_model_is_its_own_row(results, capsys) -> None:
    """A rerun replaces the run as `table` does; another model of the same architecture and backbone on the same
    dataset (mmdet's Swin-L beside transformers', EoMT-L at 640 beside 1280) is a row of its own, never folded."""
    _write(results, "m2f-coco-rerun", model="hf-mask2former_swin-l", backbone="Swin-L (IN-21k)", dataset="coco",
           metrics=_metrics(57.5, 64.0, 47.0), published={"PQ": 57.8}, date="2002-01-01T00:00:00+00:00")
    _write(results, "m2f-coco-other", model="mask2former_swin-l_mmdet", backbone="Swin-L (IN-21k)", dataset="coco",
           metrics=_metrics(50.0, 50.0, 50.0), published={}, date="2000-06-01T00:00:00+00:00")
    out, err = _run(results, capsys, "--format", "csv")
    df = _table("csv", out)
    assert df.loc[M2F, "coco.PQ"] == "57.5" and df.loc[M2F, "coco.run"] == "hf-mask2former_swin-l"
    other = "mask2former_swin-l_mmdet: Mask2Former | Swin-L (IN-21k)"
    assert df.loc[other, "coco.PQ"] == "50.0"
    assert not any(n.startswith("Left out") for n in err.splitlines())  # its own older run: replaced, as in `table`


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_dataset_is_one_group_and_the_table_says_so(tmp_path, capsys, fmt) -> None:
    _write(tmp_path, "a", model="m-a", backbone="R-50", metrics=_metrics(40.0, 41.0, 39.0), published={"PQ": 41.0})
    _write(tmp_path, "b", model="m-b", architecture="MaskFormer", metrics=_metrics(45.0, 46.0, 44.0), published={})
    out, err = _run(tmp_path, capsys, "--format", fmt)
    df = _table(fmt, out)
    assert df.index.tolist() == ["m-a: Mask2Former | R-50", "m-b: MaskFormer | R-50"]
    assert {c.split(".")[0].split(" ")[0] for c in df.columns} == {"coco"}
    assert "One dataset here (coco): one column group" in (err if fmt == "csv" else out)


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_dataset_keeps_one_group(results, capsys, fmt) -> None:
    out, err = _run(results, capsys, "--format", fmt, "--only-dataset", "cityscapes")
    df = _table(fmt, out)
    assert df.index.tolist() == [M2F, FPN]
    assert all(c.startswith("cityscapes") for c in df.columns)
    assert "One dataset here (cityscapes)" in (err if fmt == "csv" else out)
    _, err = _run(results, capsys, "--only-dataset", "nowhere", code=2)  # the error of the table without --by
    assert "no result records for dataset 'nowhere'; records exist for" in err


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_runs_are_left_out_and_said_in_one_line(results, capsys, fmt) -> None:
    out, err = _run(results, capsys, "--format", fmt)
    assert "coco+fog-3" not in out and "30.0" not in out
    assert "1 corrupted run(s) of a robustness sweep not ranked nor drawn here" in (err if fmt == "csv" else out)


@pytest.mark.parametrize("fmt", ("md", "latex", "html"))
def test_the_images_of_a_group_are_one_note_where_its_runs_share_the_count(results, capsys, fmt) -> None:
    _write(results, "fpn-limit", model="panoptic-fpn_r50-cityscapes", architecture="PanopticFPN", backbone="R-50",
           dataset="cityscapes", metrics=_metrics(80.0, 70.0, 90.0), date="2001-02-01T00:00:00+00:00", n_images=50,
           provenance={"dataset": {"fingerprint": "abcdef0123456789"}})
    out, _ = _run(results, capsys, "--format", fmt)
    df = _table(fmt, out)
    assert "Images: coco 5000." in out and "coco images" not in df.columns
    assert df.loc[FPN, "cityscapes images"] == "50" and df.loc[M2F, "cityscapes images"] == "500"


def test_csv_is_the_data_alone_and_latex_compiles(results, capsys, tmp_path) -> None:
    out, err = _run(results, capsys, "--format", "csv")
    assert not out.endswith("\n\n") and "Rows in the order" not in out and "Rows in the order" in err
    tex, _ = _run(results, capsys, "--format", "latex")
    assert r"Mask2Former \textbar{} Swin-" in tex and "Mask2Former | " not in tex  # OT1 prints | as a dash
    assert_compiles(tex, tmp_path / "tex")


@pytest.mark.parametrize("other", ["--ci", "--per-class", "--vs-published", "--all-columns", "--robustness"])
def test_options_of_the_other_tables_are_refused_in_one_line(results, capsys, other) -> None:
    _, err = _run(results, capsys, other, code=2)
    line = err.strip().splitlines()[-1]
    assert f"--by dataset: leave out {other}" in line and f"`panbench table {other}` without --by" in line


def test_without_by_the_table_is_unchanged(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["model"].tolist()[:2] == ["hf-oneformer_swin-l", "hf-mask2former_swin-l"]  # ranked on coco, as before
    assert not [c for c in df.columns if "." in c]


def test_report_by_dataset_has_the_table_as_a_section_and_its_figure(results, capsys) -> None:
    assert main(["report", "--results", str(results), "--by", "dataset"]) == 0
    page = (results / "report.html").read_text()
    start = page.index("<h2>across datasets</h2>")
    section = page[start:page.index("<h2>", start + 1)]
    assert "cityscapes PQ pub." in section and "Mask2Former | Swin-L (IN-21k)" in section
    assert "never ranked against each other" in section and "pq_across_datasets.png" in section
    assert (results / "report_files" / "across-datasets" / "pq_across_datasets.png").is_file()
    assert page.index("<h2>across datasets</h2>") < page.index("<h2>cityscapes</h2>")
    assert main(["report", "--results", str(results)]) == 0  # without --by: no section, its figure removed
    assert "across datasets" not in (results / "report.html").read_text()
    assert not (results / "report_files" / "across-datasets" / "pq_across_datasets.png").exists()


def test_plot_by_dataset_draws_a_panel_per_dataset_with_the_published_pq_marked(results, capsys, monkeypatch) -> None:
    from panbench.reporting import plot_parts

    drawn = []
    real = plot_parts.save
    monkeypatch.setattr(plot_parts, "save", lambda fig, path, dpi=100: (drawn.append(fig), real(fig, path, dpi))[1])
    assert main(["plot", "--results", str(results), "--by", "dataset"]) == 0
    got = capsys.readouterr()
    path = results / "plots" / "across-datasets" / "pq_across_datasets.png"
    assert got.out.strip() == str(path) and path.is_file() and "1 corrupted run(s)" in got.err
    assert sorted(p.name for p in (results / "plots").iterdir()) == ["across-datasets"]  # nothing else drawn
    (fig,) = drawn
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["cityscapes", "coco"]
    # the rows named on the first panel (the others share its axis), top down in the table's order
    row = {round(t.get_position()[1]): t.get_text().replace("\n", " ") for t in panels[0].get_yticklabels()}
    assert [row[y] for y in sorted(row, reverse=True)] == [M2F, ONEFORMER, FPN]
    for ax, pq, published in zip(panels, ({M2F: 66.6, FPN: 80.0}, {M2F: 57.8, ONEFORMER: 57.9}),
                                 ({M2F: 66.6}, {M2F: 57.8, ONEFORMER: 57.9})):
        assert sorted(ax.get_yticks()) == sorted(row)
        bars = {row[round(b.get_y() + b.get_height() / 2)]: b.get_width() for b in ax.patches}
        assert {n: w for n, w in bars.items() if w == w} == pq  # no bar (nan) where no run
        marks = {row[round(float(y))]: float(x) for x, y in ax.collections[0].get_offsets() if x == x}
        assert marks == published
