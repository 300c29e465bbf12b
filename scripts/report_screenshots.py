#!/usr/bin/env python
"""Screenshots of the demo report in headless Chromium at 1400 and 400 CSS pixels wide (a desktop and a phone),
for docs/reporting.md: docs/img/report-1400.png and docs/img/report-400.png, the top of the page, reduced to a
64-colour palette (small files).

Without ``--results`` the demo set is generated (``panbench data demo``, offline) and its three demo models are
evaluated into a temporary folder first (``panbench eval --model all --dataset demo``, about a minute on 2
cores); with ``--results DIR`` the report of the records in DIR is shown.  Chromium's window is at least
500 px wide, so the page is loaded in a frame of the wanted width (the viewport a phone gives) and the
screenshot cropped to it.

    .venv/bin/python scripts/report_screenshots.py [--results DIR] [--out docs/img] [--limit N]
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
    from panbench import REPO_ROOT
    from panbench.cli import main

    if not (REPO_ROOT / "data" / "demo" / "annotations").is_dir() and main(["data", "demo"]) != 0:
        sys.exit("panbench data demo failed")
    extra = ["--limit", str(limit)] if limit else []
    if main(["eval", "--model", "all", "--dataset", "demo", "--results", str(folder), "--no-progress", *extra]):
        sys.exit("panbench eval --model all --dataset demo failed")
    return folder


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, help="records to report (default: the demo models, evaluated now)")
    p.add_argument("--out", type=Path, default=Path("docs/img"), help="folder of the PNGs (default docs/img)")
    p.add_argument("--limit", type=int, help="images per demo model (default: all 60)")
    args = p.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    from panbench.reporting.report import write_report

    with tempfile.TemporaryDirectory(prefix="panbench-shots-") as tmp:
        results = args.results or demo_results(Path(tmp) / "results", args.limit)
        report = write_report(results, out=Path(tmp) / "page" / "report.html")
        for width, height in WIDTHS.items():
            out = shoot(chromium, report, width, height, args.out / f"report-{width}.png")
            print(f"{out}: {width} x {height} px, {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
