"""``panbench report``: one self-contained HTML page (images embedded as data URIs)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.reporting.plots import make_plots
from panbench.reporting.records import load_records
from panbench.reporting.tables import comparison, latest_runs, render

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
details { margin: 0.5em 0; } pre { font-size: 11px; background: #f8f8f8; padding: 0.5em; overflow-x: auto; }
"""

# After loading, the page records how many tables and decoded images it has (read by the browser test).
CHECK_SCRIPT = """
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  document.body.dataset.tables = document.querySelectorAll('table').length;
  document.body.dataset.images = imgs.length;
  document.body.dataset.imagesRendered = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
});
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _provenance(r: dict[str, Any]) -> str:
    p = r.get("provenance", {})
    ck = p.get("checkpoint", {})
    ds = p.get("dataset", {})
    rows = {
        "date": r.get("date"), "dataset": f"{r.get('dataset')} ({r.get('n_images')} images, "
                                          f"fingerprint {ds.get('fingerprint')})",
        "device": r.get("device"), "batch / amp": f"{r.get('batch_size')} / {r.get('amp', 'fp32')}",
        "post-processing": r.get("postprocess"),
        "config": f"{p.get('config_path')} (sha256 {p.get('config_sha256_16')})",
        "checkpoint": f"{ck.get('url') or ck.get('path')} (sha256 {ck.get('sha256')})",
        "versions": json.dumps(p.get("versions", {})), "git commit": p.get("git_commit"),
        "command": p.get("command"), "record": r.get("record"),
    }
    body = "".join(f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                   for k, v in rows.items())
    cfg = html.escape(p.get("config", ""))
    return (f"<details><summary>{html.escape(r['model'])}</summary><table>{body}</table>"
            f"<details><summary>resolved config</summary><pre>{cfg}</pre></details></details>")


def write_report(results: Path, dataset: str | None = None, out: Path | None = None) -> Path:
    """Tables, plots, visualizations under ``results/viz`` and provenance, in one HTML file."""
    records = latest_runs(load_records(results), dataset)
    if not records:
        raise PanbenchError(f"{results}/runs: no result records; run `panbench eval` first")
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>panbench report</title>",
             f"<style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head><body>",
             "<h1>panbench report</h1>"]
    for ds in sorted({r["dataset"] for r in records}):
        recs = [r for r in records if r["dataset"] == ds]
        parts.append(f"<h2>{html.escape(ds)}: PQ / SQ / RQ</h2>")
        parts.append(render(comparison(recs, vs_published=any(r.get("published") for r in recs)), "html"))
        plot_dir = results / "plots" / ds
        parts.append("<h3>plots</h3>" + "".join(_img(p) for p in make_plots(recs, plot_dir)))
    viz = sorted((results / "viz").glob("*.png")) if (results / "viz").is_dir() else []
    if viz:
        parts.append("<h2>visualizations</h2>" + "".join(_img(p) for p in viz))
    parts.append("<h2>provenance</h2>" + "".join(_provenance(r) for r in records))
    parts.append("</body></html>")
    out = out or results / "report.html"
    out.write_text("\n".join(parts))
    return out
