"""How and where figures are written: `--figure-format` (PDF and SVG keep their text as text) and `--dpi` for the
commands that draw; `RESULTS/plots/<dataset>/` holding the image set the table leads with; the figures panbench
wrote earlier and no longer writes removed, and nothing else (docs/reporting.md, "Figures: format and folders")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from panbench.cli import build_parser, main
from panbench.errors import PanbenchError
from panbench.records.io import load_records
from panbench.reporting.figure_files import FIGURES_MANIFEST, listed
from panbench.reporting.labels import dataset_key
from panbench.reporting.tables import latest_runs, ranked_records

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # schema 1, invented numbers


def _record(results: Path, name: str, fingerprint: str, date: str, **fields) -> None:
    """The fixture record as a run on the dataset ``demo`` with image set ``fingerprint``."""
    rec = json.loads(FIXTURE.read_text())
    rec.update({"dataset": "demo", "date": date, **fields})
    rec.setdefault("provenance", {})["dataset"] = {"name": "demo", "fingerprint": fingerprint}
    (results / "runs").mkdir(parents=True, exist_ok=True)
    (results / "runs" / f"{name}.json").write_text(json.dumps(rec))


NO_SPEED = {"timings": {"images_per_s": None}}  # no PQ-against-speed figure: for tests of folders, not of figures


def _clean_and_fog_runs(results: Path) -> None:
    """A robustness sweep's records: model m's clean run and its fog-2 run on the same images (no measured speed)."""
    _record(results, "m", "f" * 16, "2001-01-01T00:00:00+00:00", **NO_SPEED)
    _record(results, "m-fog", "f" * 16, "2001-01-01T00:00:01+00:00", dataset="demo+fog-2", **NO_SPEED,
            corruption={"name": "fog", "severity": 2, "group": "weather", "implementation": "x"})


@pytest.mark.parametrize("command", ["plot", "robustness --model m", "report", "viz --model m --image 1"])
def test_the_commands_that_draw_take_the_figure_format_and_dpi(command) -> None:
    args = build_parser().parse_args([*command.split(), "--figure-format", "svg", "--dpi", "300"])
    assert (args.figure_format, args.dpi) == ("svg", 300)
    assert getattr(args, "format", "md") == "md"  # robustness's --format: still its table's


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "100000"])
def test_a_dpi_that_is_no_positive_integer_is_a_one_line_usage_error(value, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["plot", "--dpi", value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"argument --dpi: must be an integer in 1..1200 (dots per inch), got {value}" in err


def test_each_format_keeps_its_text_and_its_files_and_the_report_links_its_pdf(tmp_path, capsys) -> None:
    """`plot --dpi 40`, then `plot --figure-format svg`, then `report --figure-format pdf` in one folder: the PNG is
    the SVG's size at 40 dpi, the SVG's and the PDF's text is text, no command removes another format's figures
    (nor the user's own file), and the page shows each PDF as its PNG, linked to the PDF."""
    from PIL import Image

    res = tmp_path / "res"
    _record(res, "a", "a" * 16, "2001-01-01T00:00:00+00:00")
    folder = res / "plots" / "demo"
    folder.mkdir(parents=True)
    (folder / "mine.png").write_bytes(b"not panbench's")
    assert main(["plot", "--results", str(res), "--dpi", "40"]) == 0
    png_width = Image.open(folder / "pq_bars.png").width
    assert main(["plot", "--results", str(res), "--figure-format", "svg"]) == 0
    svg = (folder / "pq_bars.svg").read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "PQ" in texts and any("demo" in t for t in texts), texts  # the text is text, the title names the data
    svg_width_pt = float(re.search(r'<svg [^>]*width="([0-9.]+)pt"', svg).group(1))
    assert png_width == pytest.approx(svg_width_pt / 72 * 40, abs=2)  # the same figure, in inches times 40 dpi
    figures = [f"{n}.{s}" for n in ("per_class_pq", "pq_bars", "pq_vs_speed") for s in ("png", "svg")]
    assert sorted(p.name for p in folder.iterdir()) == sorted([FIGURES_MANIFEST, "mine.png", *figures])
    assert "removed" not in capsys.readouterr().out
    assert main(["report", "--results", str(res), "--figure-format", "pdf"]) == 0
    assert "removed" not in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == sorted([FIGURES_MANIFEST, "mine.png", *figures])  # plot's
    folder = res / "report_files" / "demo"  # the report's own
    pdf = (folder / "pq_bars.pdf").read_bytes()
    assert b"/Type3" not in pdf and b"/CIDFontType2" in pdf and b"/ToUnicode" in pdf  # TrueType: text stays text
    page = (res / "report.html").read_text()
    assert "removed" not in page
    assert page.count('<a href="report_files/demo/pq_bars.pdf"><img alt="pq_bars.pdf" src="data:image/png;base64,') \
        == 1
    assert listed(folder)["by"] == {"report pdf": sorted(f"{n}.{s}" for n in ("pq_bars", "pq_vs_speed", "per_class_pq")
                                                         for s in ("pdf", "png"))}  # the PNGs the page shows too


def test_the_table_s_leading_image_set_keeps_the_dataset_folder_and_stale_figures_go(
        blank_figures, tmp_path, capsys) -> None:
    """The issue's case: `plot` of the full set, then a `--limit` run (another image set) appears: plots/demo/ keeps
    the set the table leads with, the other goes to demo-<fingerprint>/, and a figure panbench wrote in demo/ and no
    longer draws (here: the latest run of the model has no measured speed) is removed; the user's own file stays.
    When the other set's runs are gone, its folder goes with panbench's files, the user's file kept."""
    res = tmp_path / "res"
    _record(res, "full", "e767dc51" * 2, "2001-01-01T00:00:00+00:00")
    assert main(["plot", "--results", str(res)]) == 0
    demo = res / "plots" / "demo"
    assert (demo / "pq_vs_speed.png").is_file()
    (demo / "paper.pdf").write_bytes(b"the user's")
    _record(res, "full-again", "e767dc51" * 2, "2001-01-02T00:00:00+00:00", timings={"images_per_s": None})
    _record(res, "limit5", "09f0867c" * 2, "2001-01-03T00:00:00+00:00", model="other")
    assert main(["plot", "--results", str(res)]) == 0
    out = capsys.readouterr().out
    leading = dataset_key(ranked_records(latest_runs(load_records(res)))[0])
    assert leading == "demo e767dc51" and listed(demo)["image_set"] == leading
    assert sorted(p.name for p in (res / "plots").iterdir()) == ["demo", "demo-09f0867c"]
    assert listed(res / "plots" / "demo-09f0867c")["image_set"] == "demo 09f0867c"
    assert not (demo / "pq_vs_speed.png").exists() and (demo / "paper.pdf").is_file()
    assert f"{demo}: removed pq_vs_speed.png" in out
    (res / "runs" / "limit5.json").unlink()
    (res / "plots" / "demo-09f0867c" / "notes.txt").write_text("the user's")
    assert main(["plot", "--results", str(res)]) == 0
    assert sorted(p.name for p in (res / "plots" / "demo-09f0867c").iterdir()) == ["notes.txt"]
    assert "demo-09f0867c: removed the 3 figure(s) panbench wrote there" in capsys.readouterr().out


def test_a_manifest_removes_only_plain_names_in_its_own_folder(tmp_path) -> None:
    from panbench.reporting.figure_files import replace_figures

    outside = tmp_path / "keep.png"
    outside.write_bytes(b"x")
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "old.png").write_bytes(b"x")
    (folder / FIGURES_MANIFEST).write_text(json.dumps({"files": ["old.png", "../keep.png", str(outside), ".hidden"]}))
    assert replace_figures(folder, []) == [folder / "old.png"]
    assert outside.is_file() and listed(folder)["files"] == []


@pytest.mark.parametrize("out,fmt,want", [(None, None, None), ("a.pdf", None, "pdf"), ("a.SVG", None, "svg"),
                                          ("a.png", "png", "png"), (None, "svg", "svg")])
def test_viz_writes_the_format_its_out_file_names(out, fmt, want) -> None:
    from panbench.cli.viz import out_format

    assert out_format(out, fmt) == want


@pytest.mark.parametrize("out,fmt", [("a.pdf", "svg"), ("a.jpg", None)])
def test_viz_refuses_an_out_file_of_another_format(out, fmt) -> None:
    from panbench.cli.viz import out_format

    with pytest.raises(PanbenchError, match=r"--out a\.(pdf|jpg): .*nothing was run"):
        out_format(out, fmt)


def test_runs_without_a_fingerprint_beside_a_leading_image_set_get_a_folder_of_their_own(
        blank_figures, tmp_path) -> None:
    """A record from before the fingerprint (its image set is the dataset's name alone) beside a run on a
    fingerprinted set that the table leads with: each set its own folder, neither drawn over the other."""
    res = tmp_path / "res"
    _record(res, "full", "a" * 16, "2001-01-01T00:00:00+00:00", **NO_SPEED)
    rec = json.loads(FIXTURE.read_text())
    rec.update({"dataset": "demo", "date": "2001-01-02T00:00:00+00:00", "model": "old", **NO_SPEED})
    (res / "runs" / "old.json").write_text(json.dumps(rec))
    assert main(["plot", "--results", str(res)]) == 0
    folders = {p.name: listed(p)["image_set"] for p in (res / "plots").iterdir()}
    assert len(folders) == 2 and folders["demo"] == "demo aaaaaaaa" and "demo" in folders.values(), folders


def test_a_figure_gone_before_its_removal_is_no_error(tmp_path) -> None:
    """A manifest that names a file twice (or a file another panbench run removed a moment before): removed once,
    quietly."""
    from panbench.reporting.figure_files import replace_figures, retire_folder

    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        (folder / "old.png").write_bytes(b"x")
        (folder / FIGURES_MANIFEST).write_text(json.dumps({"files": ["old.png", "old.png"]}))
    assert replace_figures(tmp_path / "a", []) == [tmp_path / "a" / "old.png"]
    assert retire_folder(tmp_path / "b") == [tmp_path / "b" / "old.png"] and not (tmp_path / "b").exists()


def test_the_report_says_which_robustness_figures_of_its_own_it_replaced(tmp_path, capsys) -> None:
    """`robustness --figure-format svg` wrote its figures in plots/robustness/: the report leaves them and draws its
    own in report_files/robustness/; a figure an earlier report wrote there in PNG and this one does not draw is
    removed, said on stderr as for a dataset's plots."""
    res = tmp_path / "res"
    _clean_and_fog_runs(res)
    theirs, folder = res / "plots" / "robustness", res / "report_files" / "robustness"
    for f in (theirs, folder):
        f.mkdir(parents=True)
    (theirs / "robustness_drop.svg").write_text("<svg/>")
    (theirs / FIGURES_MANIFEST).write_text(json.dumps({"files": [], "by": {"robustness svg": ["robustness_drop.svg"]}}))
    (folder / "old_figure.png").write_bytes(b"x")
    (folder / FIGURES_MANIFEST).write_text(json.dumps({"files": [], "by": {"report png": ["old_figure.png"]}}))
    assert main(["report", "--results", str(res)]) == 0
    assert sorted(p.name for p in theirs.iterdir()) == [FIGURES_MANIFEST, "robustness_drop.svg"]
    assert (folder / "robustness_drop.png").is_file() and not (folder / "old_figure.png").exists()
    assert f"{folder}: removed old_figure.png (written there by an earlier run" in capsys.readouterr().err


def test_a_figure_keeps_the_name_it_was_given_when_its_suffix_is_the_format_s(tmp_path) -> None:
    """`viz --out A.SVG` writes A.SVG (the format its suffix names, in any case), not a.svg beside it."""
    from panbench.reporting.figure_files import figure_output, write_figure
    from panbench.reporting.figure_style import plt

    fig = plt().figure(figsize=(1, 1))
    with figure_output("svg"):
        assert write_figure(fig, tmp_path / "A.SVG", 10) == tmp_path / "A.SVG"
    plt().close(fig)
    assert [p.name for p in tmp_path.iterdir()] == ["A.SVG"]


def test_the_folder_of_a_dataset_whose_runs_are_all_gone_goes_with_panbench_s_files(
        blank_figures, tmp_path, capsys) -> None:
    """Every run of a dataset removed: its folder is an image set without runs, as a `--limit` set's is; the
    robustness folder (no dataset in its manifest) stays."""
    res = tmp_path / "res"
    _record(res, "a", "a" * 16, "2001-01-01T00:00:00+00:00", **NO_SPEED)  # other's 3 figures are counted
    _record(res, "b", "b" * 16, "2001-01-01T00:00:01+00:00", dataset="other")
    (res / "plots" / "robustness").mkdir(parents=True)
    (res / "plots" / "robustness" / FIGURES_MANIFEST).write_text(json.dumps({"files": []}))
    assert main(["plot", "--results", str(res)]) == 0
    assert sorted(p.name for p in (res / "plots").iterdir()) == ["demo", "other", "robustness"]
    (res / "runs" / "b.json").unlink()
    assert main(["plot", "--results", str(res), "--only-dataset", "demo"]) == 0
    assert sorted(p.name for p in (res / "plots").iterdir()) == ["demo", "robustness"]
    assert "other: removed the 3 figure(s) panbench wrote there" in capsys.readouterr().out


def test_plot_draws_the_clean_runs_and_leaves_a_sweep_s_corrupted_runs_to_the_robustness_figures(
        blank_figures, tmp_path, capsys) -> None:
    """A corrupted run is no dataset of its own: `plot` draws no folder per corruption cell, says in one line where
    those runs are drawn, and empties the folder an earlier panbench drew for one."""
    res = tmp_path / "res"
    _clean_and_fog_runs(res)
    cell = res / "plots" / "demo+fog-2"
    cell.mkdir(parents=True)
    (cell / "pq_bars.png").write_bytes(b"x")
    (cell / FIGURES_MANIFEST).write_text(json.dumps({"files": ["pq_bars.png"], "dataset": "demo+fog-2"}))
    assert main(["plot", "--results", str(res)]) == 0
    out, err = capsys.readouterr()
    assert sorted(p.name for p in (res / "plots").iterdir()) == ["demo"]
    assert "1 corrupted run(s) of a robustness sweep not ranked nor drawn here" in err
    assert f"{cell}: removed the 1 figure(s) panbench wrote there (its runs are corrupted ones" in out
    assert main(["plot", "--results", str(res), "--only-dataset", "demo+fog-2"]) == 2  # nothing to draw: refused
    err = [line for line in capsys.readouterr().err.splitlines() if not line.endswith("...")]
    assert len(err) == 1 and "corrupted run(s) of a robustness sweep not ranked nor drawn here" in err[0], err


@pytest.mark.parametrize("out", [None, "elsewhere/page.html"])
def test_the_report_links_a_viz_pdf_it_cannot_show(blank_figures, tmp_path, out) -> None:
    """`viz --figure-format pdf` wrote `a #1.pdf`: the report links it (beside the results, by a relative link; written
    elsewhere, by the file's address); b's PNG is shown and b.pdf, its twin, not linked again."""
    res = tmp_path / "res"
    _record(res, "m", "f" * 16, "2001-01-01T00:00:00+00:00", **NO_SPEED)
    (res / "viz").mkdir()
    (res / "viz" / "a #1.pdf").write_bytes(b"%PDF-1.4\n")  # a name a link must quote
    (res / "viz" / "b.pdf").write_bytes(b"%PDF-1.4\n")
    (res / "viz" / "b.png").write_bytes(b"\x89PNG\r\n")
    page = tmp_path / out if out else res / "report.html"
    assert main(["report", "--results", str(res), *(["--out", str(page)] if out else [])]) == 0
    text = page.read_text()
    href = (res / "viz" / "a #1.pdf").resolve().as_uri() if out else "viz/a%20%231.pdf"
    assert f'<a href="{href}">a #1.pdf</a>' in text and 'alt="b.png"' in text and ">b.pdf<" not in text


def test_a_folder_where_the_figures_manifest_goes_is_named_with_move_it_away_and_nothing_promised(
        tmp_path, capsys) -> None:
    from panbench.reporting.figure_files import _write_manifest

    (tmp_path / FIGURES_MANIFEST).mkdir()
    assert listed(tmp_path) == {}
    note = capsys.readouterr().err
    assert f"{tmp_path / FIGURES_MANIFEST}: a folder" in note and "move it away" in note
    assert "written anew" not in note
    with pytest.raises(PanbenchError) as e:
        _write_manifest(tmp_path, {}, {"plot png": ["a.png"]})
    assert str(e.value) == (f"{tmp_path / FIGURES_MANIFEST}: a folder where panbench writes a file; move it away "
                            "and run this command again")
    assert sorted(p.name for p in tmp_path.iterdir()) == [FIGURES_MANIFEST]  # no temporary file left


def test_colors_and_runs_csv_in_a_folders_place_are_refused_naming_the_file_not_a_temporary_one(tmp_path) -> None:
    from panbench.records.io import append_csv
    from panbench.records.rows import CSV_FIELDS
    from panbench.reporting.colors import _write

    for path, write in [(tmp_path / "colors.json", lambda p: _write(p, {"m": "#000000"})),
                        (tmp_path / "runs.csv", lambda p: append_csv(p, {k: "" for k in CSV_FIELDS}))]:
        path.mkdir()
        with pytest.raises(PanbenchError, match=re.escape(f"{path}: a folder where panbench writes a file; move it "
                                                          "away")):
            write(path)


def test_a_failed_atomic_write_names_the_file_not_its_temporary_one(tmp_path, monkeypatch) -> None:
    import os

    from panbench.records import io as records_io

    def refused(src, dst) -> None:  # noqa: ANN001 - what a rename refused by the file system raises
        raise PermissionError(13, "Permission denied", os.fspath(src))

    monkeypatch.setattr(records_io.os, "replace", refused)
    with pytest.raises(PermissionError) as e:
        records_io.atomic_write_text(tmp_path / "report.html", "x")
    assert e.value.filename == str(tmp_path / "report.html") and e.value.errno == 13
    assert list(tmp_path.iterdir()) == []


def test_a_figure_the_user_overwrote_is_kept_when_panbench_no_longer_draws_it(blank_figures, tmp_path, capsys) -> None:
    """The manifest keeps what each figure held when panbench wrote it: a file of that name holding something else
    now (the user's own image saved over it) is the user's, and stays when its plot is no longer drawn."""
    res = tmp_path / "res"
    _record(res, "full", "e767dc51" * 2, "2001-01-01T00:00:00+00:00")
    assert main(["plot", "--results", str(res)]) == 0
    demo = res / "plots" / "demo"
    (demo / "pq_vs_speed.png").write_bytes(b"the user's own figure")
    _record(res, "full-again", "e767dc51" * 2, "2001-01-02T00:00:00+00:00", timings={"images_per_s": None})
    capsys.readouterr()
    assert main(["plot", "--results", str(res)]) == 0
    assert (demo / "pq_vs_speed.png").read_bytes() == b"the user's own figure"
    assert "removed pq_vs_speed.png" not in capsys.readouterr().out
