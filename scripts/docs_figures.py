#!/usr/bin/env python
"""The images of docs/reporting.md, made from a results folder: the PQ-vs-FPS figure as `panbench plot` draws it
(docs/img/pq_vs_speed.png, of the image set `panbench table` leads with on the first dataset) and the top of the
report, shot in headless Chromium at 1400 and 400 CSS pixels wide (a desktop and a phone:
docs/img/report-1400.png and docs/img/report-400.png, reduced to a 64-colour palette: small files).

Without Chromium (or with ``--no-browser``) the top of the report is not shot: its heading and header table
(the verdict and the PQ / SQ / RQ table, as `panbench table` prints them in Markdown) are drawn as monospaced
text with matplotlib instead, docs/img/report-top.png; docs/reporting.md shows the Chromium shots.

Without ``--results`` the demo set is generated (``panbench data demo``, offline) and its three demo models are
evaluated into a temporary folder first (``panbench eval --model all --dataset demo``, about a minute on 2
cores); with ``--results DIR`` the records in DIR are shown (nothing is written under DIR).  Chromium's window
is at least 500 px wide, so the page is loaded in a frame of the wanted width (the viewport a phone gives) and
the screenshot cropped to it.

    .venv/bin/python scripts/docs_figures.py [--results DIR] [--out docs/img] [--limit N] [--no-browser]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTHS = {1400: 1500, 400: 1900}  # CSS width -> height of the shot, in pixels
MIN_WINDOW = 500  # Chromium's narrowest window


def shoot(chromium: str, report: Path, width: int, height: int, out: Path, colours: int = 64) -> Path:
    """``report`` in a frame ``width`` x ``height`` CSS pixels, captured by headless Chromium, cropped to the
    frame and saved as a ``colours``-colour PNG at ``out``."""
    from PIL import Image

    frame = report.parent / f"frame-{width}.html"
    frame.write_text(f"<!doctype html><html><body style='margin:0'><iframe src='{report.name}' "
                     f"style='width:{width}px;height:{height}px;border:0;display:block'></iframe></body></html>")
    raw = report.parent / f"shot-{width}.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", "--allow-file-access-from-files",
                    f"--user-data-dir={report.parent / 'chromium'}", "--virtual-time-budget=10000",
                    f"--window-size={max(width, MIN_WINDOW)},{height}", f"--screenshot={raw}", frame.as_uri()],
                   check=True, capture_output=True, timeout=180)
    image = Image.open(raw).convert("RGB").crop((0, 0, width, height))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colours, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


def demo_results(folder: Path, limit: int | None) -> Path:
    """The demo set's three models evaluated into ``folder`` (the demo set generated first when missing)."""
    from panbench.cli import main
    from panbench.package import REPO_ROOT

    if not (REPO_ROOT / "data" / "demo" / "annotations").is_dir() and main(["data", "demo"]) != 0:
        sys.exit("panbench data demo failed")
    extra = ["--limit", str(limit)] if limit else []
    if main(["eval", "--model", "all", "--dataset", "demo", "--results", str(folder), "--no-progress", *extra]):
        sys.exit("panbench eval --model all --dataset demo failed")
    return folder


def pq_vs_speed(results: Path, folder: Path, out: Path) -> Path:
    """The PQ-vs-FPS figure of the image set the table leads with on the first dataset (the figure of
    ``RESULTS/plots/<dataset>/``), drawn under ``folder`` as `panbench plot` draws it, copied to ``out``."""
    from panbench.records.io import load_records
    from panbench.reporting.colors import model_colors
    from panbench.reporting.plots import make_plots, plot_groups
    from panbench.reporting.tables import latest_runs

    records = [r for r in latest_runs(load_records(results)) if not r.corruption]
    if not records:
        sys.exit(f"{results}/runs: no clean run to draw; pass a results folder of `panbench eval` runs")
    name, group = plot_groups(records)[0]
    paths, _ = make_plots(group, folder / name, model_colors(results, records, keep=False))
    drawn = [p for p in paths if p.stem == "pq_vs_speed"]
    if not drawn:
        sys.exit(f"{results}: no run of {name} has a measured speed (`panbench eval` runs have one); no PQ-vs-FPS "
                 "figure to draw")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(drawn[0], out)
    return out


def report_top(results: Path, out: Path) -> Path:
    """The report's heading and header table (the verdict and the PQ / SQ / RQ table, in `panbench table`'s
    Markdown) as monospaced text in a PNG: the top of the report where no browser can shoot it."""
    from panbench.reporting.figure_style import plt
    from panbench.reporting.tables import table_with_notes

    text, _ = table_with_notes(results, None, "md", False, False)
    lines = ["panbench report", "", *text.splitlines()[:40]]
    width = max(len(line) for line in lines)
    fig = plt().figure(figsize=(0.075 * width + 0.4, 0.17 * len(lines) + 0.4))
    fig.text(0.02, 0.98, "\n".join(lines), family="monospace", fontsize=8, va="top")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight", pad_inches=0.1)
    plt().close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, help="records to show (default: the demo models, evaluated now)")
    p.add_argument("--out", type=Path, default=Path("docs/img"), help="folder of the PNGs (default docs/img)")
    p.add_argument("--limit", type=int, help="images per demo model (default: all 60)")
    p.add_argument("--no-browser", action="store_true",
                   help="draw the report's header table with matplotlib (report-top.png) instead of Chromium's shots")
    args = p.parse_args(argv)
    chromium = None if args.no_browser else (
        shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome"))
    from panbench.reporting.report import write_report

    with tempfile.TemporaryDirectory(prefix="panbench-docs-") as tmp:
        results = args.results or demo_results(Path(tmp) / "results", args.limit)
        written = [pq_vs_speed(results, Path(tmp) / "plots", args.out / "pq_vs_speed.png")]
        if chromium is None:
            written.append(report_top(results, args.out / "report-top.png"))
        else:
            report = write_report(results, out=Path(tmp) / "page" / "report.html")
            written += [shoot(chromium, report, width, height, args.out / f"report-{width}.png")
                        for width, height in WIDTHS.items()]
        for out in written:
            print(f"{out}: {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
