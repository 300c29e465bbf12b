"""One reading of the results: after a robustness sweep, `table` (md, LaTeX, CSV), `report` and `plot` rank and draw
the same clean runs, in the same order, under the same names; the sweep's corrupted run is left out of each alike,
and each says in one line where it is.  Records made for real (tests/reporting/analysis_records.py); the corrupted
run is a copy of a clean record with its corruption fields set, as `eval --corruption` writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from analysis_records import TABLE, add_run, ground_truth

from panbench.analysis import AnalysisSet
from panbench.cli import main
from panbench.records.io import load_records
from panbench.reporting import plot_parts
from panbench.reporting.labels import corrupted_note, short_label
from panbench.reporting.tables import latest_runs, ranked_records

MODELS = (("beta-net", 3), ("alpha-net", None), ("gamma-net", 1))  # written in this order; alpha-net is perfect
NAMES = [m for m, _ in MODELS]
NOTE = "corrupted run(s) of a robustness sweep not ranked nor drawn here"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Three clean runs, written in an order other than their rank (PQ), and beta-net's gaussian_noise-3 run."""
    root = tmp_path_factory.mktemp("one_reading")
    gt_json, images = ground_truth(root / "data", n_images=6)
    for k, (model, seed) in enumerate(MODELS, 1):
        add_run(root, model, gt_json, images, pred_seed=seed, date=f"2001-01-01T00:00:0{k}+00:00")
    clean = json.loads(next((root / "runs").glob("*_beta-net_synth.json")).read_text())
    corrupted = {**clean, "dataset": "synth+gaussian_noise-3", "date": "2001-01-01T00:00:09+00:00",
                 "record": "runs/x_beta-net_synth+gaussian_noise-3.json",
                 "corruption": {"name": "gaussian_noise", "severity": 3, "group": "noise", "implementation": "test"},
                 "metrics": {**clean["metrics"], "PQ": clean["metrics"]["PQ"] - 5}}
    (root / "runs" / "x_beta-net_synth+gaussian_noise-3.json").write_text(json.dumps(corrupted))
    return root


def _ranked(results: Path) -> list[str]:
    """The clean runs' names as the verdict gives them, best PQ first."""
    recs = [r for r in latest_runs(load_records(results)) if not r.corruption]
    return [short_label(r, recs) for r in ranked_records(recs)]


def _rows(text: str, names: list[str]) -> list[str]:
    """The names of ``names`` in the order ``text`` first gives each."""
    found = {n: m.start() for n in names if (m := re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text))}
    return sorted(found, key=found.get)


def test_the_runs_rank_otherwise_than_they_were_written(results) -> None:
    """Else a figure in the records' order would pass the tests of the order below."""
    assert _ranked(results)[0] == "alpha-net" and _ranked(results) != NAMES


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
def test_table_ranks_the_clean_runs_alone_and_says_where_the_corrupted_one_is(results, fmt, capsys) -> None:
    assert main(["table", "--results", str(results), "--format", fmt]) == 0
    out, err = capsys.readouterr()
    assert "gaussian_noise" not in out and "noise" not in out.replace(NOTE, "")
    assert _rows(out, NAMES) == _ranked(results)
    said = out if fmt != "csv" else err  # CSV: stdout the table alone, the notes on stderr
    assert sum(NOTE in line for line in said.splitlines()) == 1


def _legends(monkeypatch) -> dict[str, list[str]]:
    """The legend entries of each figure `save` writes (written as ever), by file name."""
    seen: dict[str, list[str]] = {}
    real = plot_parts.save

    def save(fig: Any, path: Path, *args: Any, **kwargs: Any) -> Path:
        seen[path.name] = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        return real(fig, path, *args, **kwargs)

    monkeypatch.setattr(plot_parts, "save", save)
    return seen


def test_the_report_ranks_and_draws_the_runs_the_table_ranks_in_its_order(results, capsys, monkeypatch) -> None:
    legends = _legends(monkeypatch)
    assert main(["report", "--results", str(results)]) == 0
    capsys.readouterr()
    page = (results / "report.html").read_text()
    verdict = page[page.index("<h3>verdict</h3>"):page.index("<h3>PQ / SQ / RQ</h3>")]
    assert "gaussian_noise" not in verdict and _rows(verdict, NAMES) == _ranked(results)
    assert legends["pq_bars.png"] == _ranked(results)
    assert page.count(NOTE) == 1
    assert "<h2>robustness (common corruptions)</h2>" in page  # where the corrupted run is


def test_plot_draws_the_runs_in_the_table_s_order_and_says_where_the_corrupted_one_is(results, figures,
                                                                                     capsys) -> None:
    assert main(["plot", "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert sum(NOTE in line for line in err.splitlines()) == 1
    legend = [t.get_text() for t in figures["pq_bars.png"].legends[0].get_texts()]
    assert legend == _ranked(results)


def test_the_note_counts_the_corrupted_runs_and_is_empty_without_them(results) -> None:
    recs = latest_runs(load_records(results))
    assert corrupted_note(recs).startswith("1 " + NOTE)
    assert corrupted_note([r for r in recs if not r.corruption]) == ""


def test_a_table_of_corrupted_runs_alone_is_refused_in_one_line_that_names_table_robustness(results, capsys) -> None:
    assert main(["table", "--results", str(results), "--only-dataset", "synth+gaussian_noise-3"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.endswith("...")]
    assert len(err) == 1 and "only corrupted runs of synth+gaussian_noise-3" in err[0], err
    assert "`panbench table --robustness`" in err[0] and "Traceback" not in err[0]


@pytest.fixture(scope="module")
def paired(tmp_path_factory) -> Path:
    """The three clean runs on 10 images (enough for a paired interval), and alpha-net's maskwise run."""
    root = tmp_path_factory.mktemp("one_name")
    gt_json, images = ground_truth(root / "data", n_images=10)
    add_run(root, "alpha-net", gt_json, images, pred_seed=2, date="2001-01-01T00:00:00+00:00", postprocess="maskwise")
    (root / "analysis" / "alpha-net.npz").rename(root / "analysis" / "alpha-net-maskwise.npz")
    rec = next((root / "runs").glob("*.json"))
    rec.write_text(json.dumps({**json.loads(rec.read_text()), "analysis_file": "analysis/alpha-net-maskwise.npz"}))
    for k, (model, seed) in enumerate(MODELS, 1):
        add_run(root, model, gt_json, images, pred_seed=seed, date=f"2001-01-01T00:00:0{k}+00:00")
    for npz in (root / "analysis").glob("*.npz"):  # with the category table, as eval writes it: compare reads it
        a = AnalysisSet.load(npz)
        AnalysisSet(a.n_categories, a.image_ids, a.cols, TABLE.ids, TABLE.isthing).save(npz)
    return root


@pytest.fixture(scope="module")
def paired_page(paired) -> str:
    """The report of ``paired`` (drawn once: the per-class test and the reference test read it)."""
    assert main(["report", "--results", str(paired)]) == 0
    return (paired / "report.html").read_text()


def _header(csv_text: str) -> list[str]:
    return csv_text.splitlines()[0].split(",")


def test_the_runs_are_named_by_post_processing_where_a_model_has_two(paired) -> None:
    """Else the names below would pass with the post-processing left out of every label."""
    assert _ranked(paired)[0] == "alpha-net" and "alpha-net [maskwise]" in _ranked(paired)


def test_the_per_class_columns_name_the_runs_as_the_verdict_does_in_its_order(paired, paired_page, capsys) -> None:
    assert main(["table", "--results", str(paired), "--per-class", "--format", "csv"]) == 0
    assert _header(capsys.readouterr().out)[2:] == _ranked(paired)  # category_id, name, then the runs
    page = paired_page
    per_class = page[page.index("per-class PQ"):]
    per_class = per_class[:per_class.index("</thead>")]
    assert re.findall(r"<th>([^<]*-net[^<]*)</th>", per_class) == _ranked(paired)


def test_the_reference_of_the_paired_differences_is_named_as_the_verdict_names_it(paired, paired_page,
                                                                                    capsys) -> None:
    assert main(["table", "--results", str(paired), "--ci", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    vs = _header("\n".join(out)).index("PQ_diff_vs")
    assert {line.split(",")[vs] for line in out[1:] if line} == {"reference", _ranked(paired)[0]}
    page = paired_page
    assert "[default]" not in page and f"<td><span class='t'>{_ranked(paired)[0]}</span></td>" in page


def test_compare_names_a_and_b_as_the_verdict_does(paired, capsys) -> None:
    assert main(["compare", "gamma-net", "beta-net", "--results", str(paired), "--resamples", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("A: gamma-net (runs/") and lines[1].startswith("B: beta-net (runs/")
    maskwise, default = (str(p) for p in sorted((paired / "runs").glob("*_alpha-net_*.json")))  # by date
    assert main(["compare", maskwise, default, "--results", str(paired), "--resamples", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("A: alpha-net [maskwise] (runs/") and lines[1].startswith("B: alpha-net (runs/")
    assert {"gamma-net", "beta-net", "alpha-net", "alpha-net [maskwise]"} == set(_ranked(paired))
