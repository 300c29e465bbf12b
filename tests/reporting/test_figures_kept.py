"""Nothing a user made is removed by another command: a command removes only the figures it wrote itself, in the
same format, and no longer writes; `plot` and `report` run at once on one results folder both end with all their
files, and every link of report.html names a file that is there (docs/reporting.md, "Figures: format and folders")."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from panbench.cli import main
from panbench.errors import PanbenchError
from panbench.package import REPO_ROOT
from panbench.reporting.figure_files import (
    FIGURES_MANIFEST,
    REPORT_FILES,
    figure_output,
    listed,
    replace_figures,
    writing_figures,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "fixture_record.json"  # schema 1, invented numbers
FIGURES = ("pq_bars", "per_class_pq", "pq_vs_speed")  # what `plot` draws of the fixture record


def _results(tmp_path: Path) -> Path:
    """A results folder with the fixture record as two models' runs on the dataset ``demo``."""
    res = tmp_path / "res"
    (res / "runs").mkdir(parents=True)
    for k, model in enumerate(("a", "b")):
        rec = json.loads(FIXTURE.read_text())
        rec.update({"model": model, "dataset": "demo", "date": f"2001-01-01T00:00:0{k}+00:00"})
        rec["metrics"]["PQ"] += k
        rec.setdefault("provenance", {})["dataset"] = {"name": "demo", "fingerprint": "f" * 16}
        (res / "runs" / f"{model}.json").write_text(json.dumps(rec))
    return res


def _links(page: Path) -> list[str]:
    """The files report.html links or shows (every href and src but data: URIs)."""
    found = re.findall(r'(?:href|src)="([^"]+)"', page.read_text())
    return [unquote(x) for x in found if not x.startswith(("data:", "#", "http:", "https:"))]


def _hashes(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (its path in it) and the sha256 of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_plot_s_and_robustness_s_figures_of_every_format_stay_byte_identical_when_report_draws_its_own(
        tmp_path, capsys) -> None:
    """`plot --dpi 300 --figure-width single`, the robustness figures (as `robustness --dpi 300` writes them),
    `plot --figure-format svg --dpi 300` and `plot --figure-format pdf`, then `report`: every file under
    RESULTS/plots/ (every SVG and every PDF too) is byte-identical after the report, which draws its PNGs in
    RESULTS/report_files/ (per dataset and robustness/) and removes nothing, each link of its page naming a file
    that is there."""
    from panbench.records.io import load_records
    from panbench.reporting.colors import model_colors
    from panbench.reporting.robustness import plots as robustness_plots
    from panbench.robustness.summary import robustness_summaries

    res = _results(tmp_path)
    folder = res / "plots" / "demo"
    rec = json.loads((res / "runs" / "a.json").read_text())
    rec.update({"dataset": "demo+fog-2", "date": "2001-01-01T00:00:05+00:00",
                "corruption": {"name": "fog", "severity": 2, "group": "weather", "implementation": "x"}})
    (res / "runs" / "a-fog.json").write_text(json.dumps(rec))
    assert main(["plot", "--results", str(res), "--dpi", "300", "--figure-width", "single"]) == 0
    records = load_records(res)
    with figure_output("png", 300, command="robustness"):
        written = robustness_plots(robustness_summaries(records), res / "plots" / "robustness",
                                   model_colors(res, records))
        replace_figures(res / "plots" / "robustness", written)
    for fmt in ("svg", "pdf"):
        assert main(["plot", "--results", str(res), "--figure-format", fmt, "--dpi", "300"]) == 0
    plotted = {f"{n}.{fmt}" for n in FIGURES for fmt in ("svg", "pdf")}
    assert plotted <= {p.name for p in folder.iterdir()}
    before = _hashes(res / "plots")
    assert {"demo/pq_bars.png", "robustness/robustness_drop.png"} <= set(before), before
    capsys.readouterr()
    assert main(["report", "--results", str(res)]) == 0
    out, err = capsys.readouterr()
    assert "removed" not in out + err
    assert _hashes(res / "plots") == before
    names = {p.name for p in folder.iterdir()}
    assert plotted <= names, names
    assert listed(folder)["by"] == {f"plot {fmt}": sorted(f"{n}.{fmt}" for n in FIGURES) for fmt in ("pdf", "png",
                                                                                                     "svg")}
    assert listed(res / REPORT_FILES / "demo")["by"] == {"report png": sorted(f"{n}.png" for n in FIGURES)}
    drawn = _hashes(res / REPORT_FILES)
    assert {"demo/pq_bars.png", "robustness/robustness_drop.png"} <= set(drawn), drawn
    links = _links(res / "report.html")
    assert f"{REPORT_FILES}/demo/pq_bars.png" in links and f"{REPORT_FILES}/robustness/robustness_drop.png" in links
    assert all((res / link).is_file() for link in links), links


def test_a_command_removes_only_its_own_figures_of_its_format(tmp_path) -> None:
    """Of a manifest's entries, `plot png` removes the PNG it wrote and no longer writes; the same name listed by
    `report png`, `plot svg`'s file and the user's file stay, and a figure written since the command began (by
    another command at work beside it) too."""
    folder = tmp_path / "plots"
    folder.mkdir()
    for name in ("old.png", "shared.png", "old.svg", "mine.png", "new.png"):
        (folder / name).write_bytes(b"x")
    (folder / FIGURES_MANIFEST).write_text(json.dumps({"files": [], "by": {
        "plot png": ["old.png", "shared.png", "new.png"], "report png": ["shared.png"], "plot svg": ["old.svg"]}}))
    with figure_output("png", command="plot"):
        os.utime(folder / "new.png", (2e9, 2e9))  # written after this command began
        assert replace_figures(folder, []) == [folder / "old.png"]
    assert sorted(p.name for p in folder.iterdir()) == [FIGURES_MANIFEST, "mine.png", "new.png", "old.svg",
                                                        "shared.png"]
    assert listed(folder)["by"] == {"plot svg": ["old.svg"], "report png": ["shared.png"]}


def test_plot_and_report_run_at_once_both_keep_all_their_files_and_every_link_resolves(tmp_path) -> None:
    """`plot --figure-format pdf` and `report` started together on one results folder (two processes): every PDF
    of plot and every PNG of the report is there at the end, and every link of report.html names a file."""
    res = _results(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "panbench", *cmd, "--results", str(res)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in (["plot", "--figure-format", "pdf"], ["report"])]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "Traceback" not in err and "removed" not in out + err
    assert {f"{n}.pdf" for n in FIGURES} <= {p.name for p in (res / "plots" / "demo").iterdir()}
    assert {f"{n}.png" for n in FIGURES} <= {p.name for p in (res / REPORT_FILES / "demo").iterdir()}
    links = _links(res / "report.html")
    assert links and all((res / link).is_file() for link in links), links


def test_a_command_waits_for_another_writing_the_plots_folder_then_refuses_in_one_line(tmp_path) -> None:
    """While one command writes under RESULTS/plots, another waits for it; past its timeout it is refused in one
    line, and it goes on at once when the first has ended."""
    plots = tmp_path / "plots"
    with writing_figures(plots):
        with pytest.raises(PanbenchError, match=r"held by another panbench process \(writing the figures in .*plots\)"):
            with writing_figures(plots, timeout=0.3):
                pass
    with writing_figures(plots, timeout=0.3):
        pass
