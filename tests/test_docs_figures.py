"""scripts/docs_figures.py, which makes docs/reporting.md's images, runs on a results folder: the PQ-vs-FPS
figure is `panbench plot`'s, and without a browser the top of the report is drawn as text."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from PIL import Image

from panbench.cli import main
from panbench.package import REPO_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "fixture_record.json"  # schema 1, invented numbers, a measured speed


def _script():
    spec = importlib.util.spec_from_file_location("docs_figures", REPO_ROOT / "scripts" / "docs_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_docs_figures_are_the_plot_command_s_and_the_report_s_top(tmp_path, capsys) -> None:
    res = tmp_path / "res"
    (res / "runs").mkdir(parents=True)
    shutil.copy(FIXTURE, res / "runs" / FIXTURE.name)
    out = tmp_path / "img"
    assert _script().main(["--results", str(res), "--out", str(out), "--no-browser"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["pq_vs_speed.png", "report-top.png"]
    assert not (res / "plots").exists()  # nothing written under the results folder
    assert main(["plot", "--results", str(res)]) == 0
    drawn = res / "plots" / json.loads(FIXTURE.read_text())["dataset"] / "pq_vs_speed.png"
    assert (out / "pq_vs_speed.png").read_bytes() == drawn.read_bytes()
    top = Image.open(out / "report-top.png")
    assert top.width > 400 and top.height > 100
    capsys.readouterr()
