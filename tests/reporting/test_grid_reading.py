"""A grid of ``eval --grid`` as the reading commands read it (panbench/reporting/grids.py): ``table`` marks the
model's own setting and the best on these images and says a setting chosen on val is not a test result;
``compare`` picks two settings of one model, the post-processing too, and pairs them as it pairs two models;
``plot`` draws PQ, PQ things and PQ stuff against each varied key with their intervals as bands, the default
marked; ``report`` has a section of the grids.  One grid of the demo model, made once (in-process, 20 images)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_figures_blank
from PIL import Image
from test_figures_read_back import lines_outside, low_contrast

from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting import figure_style, grid_plots, plot_parts
from panbench.reporting.colors import GRID_METRICS
from panbench.reporting.figure_style import WIDTHS, figure_width
from panbench.reporting.grids import grids_of

pytestmark = pytest.mark.slow
MODEL = "demo-mask2former"
THR = "model.test_cfg.object_mask_thr"


@pytest.fixture(scope="module")
def grid(demo_root, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The results folder of one eval of three thresholds of the model's fusion and mask-wise merging (which reads
    no threshold: four records) and its summary."""
    res = tmp_path_factory.mktemp("grid")
    _eval_grid(demo_root, res, "object_mask_thr=0.6,0.8,0.9", "postprocess=default,maskwise")
    (summary,) = (res / "grids").glob("*.json")
    return res, json.loads(summary.read_text())


def _eval_grid(demo_root: Path, res: Path, *grid: str) -> dict[str, Any]:
    """One ``eval --grid`` of the demo model on 20 demo images into ``res`` (no AP, no GFLOPs pass: no reading
    command's grid reads either); its summary."""
    before = set((res / "grids").glob("*.json"))
    assert main(["eval", "--model", MODEL, "--dataset", "demo", "--data-root", str(demo_root), "--results", str(res),
                 "--limit", "20", "--workers", "0", "--cpu-procs", "1", "--no-progress", "--no-ap",
                 "--flops-images", "0", *(w for g in grid for w in ("--grid", g))]) == 0
    (summary,) = set((res / "grids").glob("*.json")) - before
    return json.loads(summary.read_text())


def _record(res: Path, setting: dict[str, Any]) -> dict[str, Any]:
    return json.loads((res / setting["record"]).read_text())


def _where(doc: dict[str, Any], **values: Any) -> dict[str, Any]:
    """The setting of the summary with these values (keys: ``thr``, None where the setting has none, and
    ``postprocess``)."""
    return next(s for s in doc["settings"] if s["values"].get(THR) == values["thr"]
                and s["values"]["postprocess"] == values["postprocess"])


def test_table_marks_the_grids_default_and_best_rows_and_says_a_setting_chosen_on_val_is_no_test_result(
        grid, capsys) -> None:
    import pandas as pd

    res, doc = grid
    assert main(["table", "--results", str(res), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    df = pd.read_csv(io.StringIO(out))
    assert len(df) == 4
    marks = {}
    for k, s in enumerate(doc["settings"]):
        rec = _record(res, s)
        words = f"{THR}={s['values'][THR]}" if THR in s["values"] else None
        (row,) = df[(df["settings"].fillna("").eq(words or "")) & (df["postprocess"] == rec["postprocess"])].index
        marks[k] = "" if pd.isna(df.loc[row, "grid"]) else df.loc[row, "grid"]
    assert doc["default"] != doc["best"] and doc["settings"][doc["default"]]["values"][THR] == 0.8
    assert marks[doc["default"]] == "default" and marks[doc["best"]] == "best"
    assert not [k for k, m in marks.items() if m and k not in (doc["default"], doc["best"])]
    assert "a setting picked on val is not a test result" in err  # CSV: the notes on stderr


def test_compare_picks_two_settings_of_one_model_by_post_processing_default_and_best(grid, capsys) -> None:
    res, doc = grid
    maskwise, own = _where(doc, thr=None, postprocess="maskwise"), doc["settings"][doc["default"]]
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-a", "postprocess=maskwise",
                 "--settings-b", "default", "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    assert (picked["a"]["record"], picked["b"]["record"]) == (maskwise["record"], own["record"])
    assert picked["a"]["postprocess"].startswith("maskwise(") and picked["b"]["postprocess"] == "default"
    # the same paired bootstrap as the two records named by their paths
    assert main(["compare", str(res / maskwise["record"]), str(res / own["record"]), "--results", str(res),
                 "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    assert picked["metrics"] == by_path["metrics"] and picked["n_images"] == 20
    assert picked["metrics"]["PQ"]["a"] == pytest.approx(maskwise["metrics"]["PQ"])
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-a", f"{THR}=0.9 postprocess=default",
                 "--settings-b", "postprocess=maskwise(a=0.25,b=1,conf=0.25,keep=0.6)", "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)  # a post-processing by its name or its whole label
    assert picked["a"]["record"] == _where(doc, thr=0.9, postprocess="default")["record"]
    assert picked["b"]["record"] == maskwise["record"]
    # a key by its short name, as eval --grid takes it
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-a", "object_mask_thr=0.9",
                 "--settings-b", "object_mask_thr=0.6", "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    assert picked["a"]["record"] == _where(doc, thr=0.9, postprocess="default")["record"]
    assert picked["b"]["record"] == _where(doc, thr=0.6, postprocess="default")["record"]
    # without a postprocess word: the model's own post-processing; 'best': the grid's best
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-a", f"{THR}=0.9", "--settings-b",
                 "best", "--json"]) == 0
    out, err = capsys.readouterr()
    picked = json.loads(out)
    assert picked["a"]["record"] == _where(doc, thr=0.9, postprocess="default")["record"]
    assert picked["b"]["record"] == doc["settings"][doc["best"]]["record"]
    assert "best: the setting of highest PQ of its grid" in err and "not a test result" in err


@pytest.fixture(scope="module")
def two_grids(grid, demo_root, tmp_path_factory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The grid's results folder with a second grid of the same model over other keys (post-processing only), and
    both summaries."""
    import shutil

    res = tmp_path_factory.mktemp("two_grids") / "res"
    shutil.copytree(grid[0], res)
    return res, grid[1], _eval_grid(demo_root, res, "postprocess=default,argmax")


def _marks(res: Path, capsys) -> tuple[dict[str, float], str]:
    """``table``'s column grid: each mark -> the PQ of its row; and stderr (the notes)."""
    import pandas as pd

    capsys.readouterr()
    assert main(["table", "--results", str(res), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    df = pd.read_csv(io.StringIO(out))
    marked = df[df["grid"].notna()]
    assert marked["grid"].is_unique, marked
    return dict(zip(marked["grid"], marked["PQ"])), err


def test_table_names_the_grid_of_each_mark_of_a_model_with_two_grids_one_best_per_grid(two_grids, capsys) -> None:
    res, first, second = two_grids
    marks, err = _marks(res, capsys)
    bests = {m: pq for m, pq in marks.items() if "best" in m}
    assert set(bests) == {"best (object_mask_thr+postprocess)", f"{'default, ' * (second['best'] == 0)}best "
                          "(postprocess)"}, marks
    assert bests["best (object_mask_thr+postprocess)"] == pytest.approx(first["settings"][first["best"]]["metrics"]
                                                                        ["PQ"])
    assert "default (object_mask_thr+postprocess)" in marks
    assert "each mark names its grid by its keys" in err and "--settings best:KEYS" in err


def test_compare_best_of_a_model_with_two_grids_is_refused_naming_them_and_takes_the_grid_named(
        two_grids, capsys) -> None:
    res, first, second = two_grids
    for option in ("--settings-b", "--settings"):
        assert main(["compare", MODEL, MODEL, "--results", str(res), option, "best", "--json"]) == 2
        out, err = capsys.readouterr()
        assert not out and "Traceback" not in err, err
        assert err.strip().splitlines()[-1] == (  # A's note on stderr before it
            f"panbench: error: {option} best: {MODEL} has 2 grids (`eval --grid`), of object_mask_thr+postprocess "
            f"and of postprocess; name one: {option} best:object_mask_thr+postprocess or {option} best:postprocess")
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-a", "best:postprocess",
                 "--settings-b", "best:postprocess+object_mask_thr", "--json"]) == 0  # the keys in any order
    out, err = capsys.readouterr()
    picked = json.loads(out)
    assert picked["a"]["record"] == second["settings"][second["best"]]["record"]
    assert picked["b"]["record"] == first["settings"][first["best"]]["record"]
    assert f"{MODEL}: best: the setting of highest PQ of its grid (postprocess)" in err
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-b", "best:pp_keep"]) == 2
    err = capsys.readouterr().err
    assert "--settings-b best:pp_keep: demo-mask2former has no grid of pp_keep; name one of its grids:" in err, err


def test_a_grid_run_again_with_the_same_keys_on_the_same_images_takes_the_marks_of_the_earlier(
        two_grids, demo_root, tmp_path, capsys) -> None:
    """A third grid over the post-processing, which shares one setting with the second (argmax), the second's
    default still shown: the latest grid of these keys has the marks, the earlier one none, in ``table`` and in
    ``compare``."""
    import shutil

    res = tmp_path / "res"
    shutil.copytree(two_grids[0], res)
    third = _eval_grid(demo_root, res, "postprocess=argmax,maskwise")
    assert third["default"] is None
    marks, _ = _marks(res, capsys)
    assert [m for m in marks if m.endswith("(postprocess)")] == ["best (postprocess)"], marks
    assert marks["best (postprocess)"] == pytest.approx(third["settings"][third["best"]]["metrics"]["PQ"])
    assert main(["compare", MODEL, MODEL, "--results", str(res), "--settings-b", "best:postprocess", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["b"]["record"] == third["settings"][third["best"]]["record"]


@pytest.fixture(scope="module")
def figures(grid) -> dict[str, Any]:
    """The grid's figure at the default width (side by side) and at a single column's (stacked), each laid out
    as ``save`` lays it out and drawn, by width; nothing written."""
    res, _ = grid
    records = load_records(res)
    grids = grids_of(res, records)
    figs: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        for width in ("double", "single"):
            def keep(fig: Any, path: Path, *args: Any, width: str = width, **kwargs: Any) -> Path:
                if path.name.startswith("grid_"):
                    fig.canvas.draw()
                    figs[width] = fig
                return path

            mp.setattr(plot_parts, "save", keep)
            with figure_width(width):
                drawn = grid_plots.grid_plots(grids, records)
                assert [name for name, _ in drawn] == [f"grid_{MODEL}_object_mask_thr+postprocess.png"]
                drawn[0][1](records, res, {}, "")
    yield figs
    for fig in figs.values():
        figure_style.plt().close(fig)


def test_the_grid_figure_draws_each_metric_against_each_varied_key_with_its_interval_band_and_the_default(
        grid, figures) -> None:
    res, doc = grid
    fig = figures["double"]
    own = doc["settings"][doc["default"]]
    axes = [ax for ax in fig.axes if ax.lines]
    assert [ax.get_xlabel() for ax in axes] == ["object_mask_thr", "postprocess"]
    assert axes[0].get_title() == "object_mask_thr (postprocess=default)"
    assert axes[1].get_title() == "postprocess (object_mask_thr=0.8)"
    panels = {"object_mask_thr": [_where(doc, thr=t, postprocess="default") for t in (0.6, 0.8, 0.9)],
              "postprocess": [_where(doc, thr=0.8, postprocess="default"),
                              _where(doc, thr=None, postprocess="maskwise")]}  # maskwise reads no threshold
    for ax in axes:
        shown = panels[ax.get_xlabel()]
        lines = {ln.get_label(): ln for ln in ax.lines}
        assert set(GRID_METRICS) <= set(lines)
        for metric, (color, _, _) in GRID_METRICS.items():
            assert np.allclose(lines[metric].get_ydata(), [s["metrics"][metric] for s in shown])
            assert lines[metric].get_color() == color
        bands = ax.collections[:len(GRID_METRICS)]  # one band per metric, drawn before its line
        for band, metric in zip(bands, GRID_METRICS):
            ys = band.get_paths()[0].vertices[:, 1]
            cis = [_record(res, s)["ci"][metric] for s in shown]
            assert np.isclose(ys.min(), min(lo for lo, _ in cis)) and np.isclose(ys.max(), max(hi for _, hi in cis))
        dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
        x_own = own["values"][THR] if ax.get_xlabel() == "object_mask_thr" else 0  # 'default', the first value
        assert len(dotted) == 1 and dotted[0].get_xdata()[0] == x_own
    assert not lines_outside(fig) and not low_contrast(fig)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "the model's own setting" in legend and "95% image-bootstrap interval" in legend


def test_the_grid_figure_stacks_its_panels_in_a_single_column(figures) -> None:
    double, single = ([ax for ax in figures[w].axes if ax.lines] for w in ("double", "single"))
    assert double[0].get_position().y0 == pytest.approx(double[1].get_position().y0)  # side by side
    assert single[0].get_position().x0 == pytest.approx(single[1].get_position().x0)  # one under the other
    assert single[0].get_position().y0 > single[1].get_position().y0
    assert figures["single"].get_figwidth() == WIDTHS["single"]


def test_plot_writes_the_grid_figure_beside_the_others_at_the_width_asked(grid, tmp_path, monkeypatch,
                                                                           capsys) -> None:
    res, _ = grid
    write_figures_blank(monkeypatch, lambda path: path.name.startswith("grid_"))  # the others' files written, blank
    assert main(["plot", "--results", str(res), "--dpi", "80"]) == 0
    written = [Path(p) for p in capsys.readouterr().out.split() if p.endswith(".png")]
    (path,) = [p for p in written if p.name.startswith("grid_")]
    assert path.parent == res / "plots" / "demo" and len(written) > 1
    assert Image.open(path).width / 80 == WIDTHS["double"]


def test_report_has_a_grids_section_with_its_settings_marked_and_the_note(grid, tmp_path, monkeypatch) -> None:
    res, doc = grid
    write_figures_blank(monkeypatch, lambda path: path.name.startswith("grid_"))  # the other figures shown, blank
    assert main(["report", "--results", str(res), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    section = page[page.index("<h3>grids</h3>"):page.index("<h3>details</h3>")]
    rows = section[section.index("<tbody>"):].split("<tr>")[1:]
    assert len(rows) == 4
    cells = [[re.sub("<[^>]+>", "", c) for c in re.findall("<td>(.*?)</td>", row)] for row in rows]
    assert [c[0] for c in cells] == [s["label"] for s in doc["settings"]]
    for k, row in enumerate(cells):  # the column 'grid'
        assert row[1] == ", ".join(m for m in ("default", "best") if doc[m] == k) or "-", (k, row)
    assert cells[doc["best"]][2] == f"{doc['settings'][doc['best']]['metrics']['PQ']:.3f}"
    assert "a setting picked on val is not a test result" in section
    assert f'alt="grid_{MODEL}_object_mask_thr+postprocess.png"' in page


def test_a_grid_without_the_models_own_setting_holds_the_other_keys_at_the_best_and_stars_it(grid, figures,
                                                                                           monkeypatch) -> None:
    """The demo grid's best (the maskwise setting, which reads no threshold) is starred in the default's
    post-processing panel; with the summary's default taken away, each panel goes through the best setting that
    has its key (the threshold's: the best of the model's own fusion), no line marks a default, and the best is
    starred where it is."""
    from matplotlib.text import Text

    from panbench.reporting.grids import Grid

    res, doc = grid
    best = doc["settings"][doc["best"]]
    assert THR not in best["values"] and best["values"]["postprocess"] == "maskwise"
    under = " ".join(t.get_text().replace("\n", " ") for t in figures["double"].findobj(Text))
    assert "lies in no panel" not in under
    (pp_panel,) = [ax for ax in figures["double"].axes if ax.get_xlabel() == "postprocess"]
    (star,) = [ln for ln in pp_panel.lines if ln.get_marker() == "*"]
    assert star.get_ydata()[0] == pytest.approx(best["metrics"]["PQ"])
    (g,) = grids_of(res, load_records(res))
    drawn: list[Any] = []
    monkeypatch.setattr(plot_parts, "save", lambda fig, path, *a, **k: drawn.append(fig) or path)
    grid_plots.grid_lines(Grid({**g.doc, "default": None}, g.records), res)
    (fig,) = drawn
    axes = [ax for ax in fig.axes if ax.lines]
    own_best = max((s for s in doc["settings"] if THR in s["values"]), key=lambda s: s["metrics"]["PQ"])
    assert [ax.get_title() for ax in axes] == ["object_mask_thr (postprocess=default)", "postprocess"]
    for ax in axes:
        assert not [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    (star,) = [ln for ln in axes[1].lines if ln.get_marker() == "*"]
    assert star.get_ydata()[0] == pytest.approx(best["metrics"]["PQ"])
    assert not [ln for ln in axes[0].lines if ln.get_marker() == "*"] and own_best["metrics"]["PQ"] < best[
        "metrics"]["PQ"]
    texts = " ".join(t.get_text().replace("\n", " ") for t in fig.findobj(Text))
    assert "the best setting's values" in texts and "best PQ on these images" in texts
    figure_style.plt().close(fig)
