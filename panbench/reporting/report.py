"""``panbench report``: one self-contained HTML page (images embedded as data URIs), docs/reporting.md."""

from __future__ import annotations

import base64
import html
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from panbench.analyses import ANALYSES
from panbench.analysis.collect import AnalysisSet
from panbench.analysis.paired import PAIRED_COLUMNS
from panbench.analysis.per_image import file_names_of, per_image_columns, ranked
from panbench.announce import announce
from panbench.errors import PanbenchError
from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import atomic_write_text, load_records, note_skipped
from panbench.records.schema import RunRecord
from panbench.reporting.across_datasets import (
    ACROSS_DIGITS,
    ACROSS_FIGURE,
    ACROSS_FOLDER,
    across_datasets,
    pq_across_datasets,
    shown_across,
)
from panbench.reporting.analysis_plots import PLOTS
from panbench.reporting.colors import model_colors
from panbench.reporting.columns import RULE_NOTE, rule_of_column
from panbench.reporting.figure_files import REPORT_FILES, replace_figures, viewable_in_a_browser, writing_figures
from panbench.reporting.grids import (
    GRID_NOTE,
    NAMED_NOTE,
    Grid,
    grid_frame,
    grid_marks,
    grids_of,
    several_names,
)
from panbench.reporting.labels import (
    absent_notes,
    cfg_words,
    corrupted_note,
    dataset_key,
    fingerprint,
    has_published,
    images,
    ops_backend,
    settings,
    short_label,
    shown_rules,
)
from panbench.reporting.plot_parts import image_set_note
from panbench.reporting.plots import FAILED, REMOVED, make_plots, plot_groups, retire_plot_folders
from panbench.reporting.robustness import format_robustness_table, runs_frame, summary_frame
from panbench.reporting.robustness import plots as robustness_plots
from panbench.reporting.tables import (
    comparison,
    format_table,
    latest_runs,
    no_records,
    per_class,
    ranked_records,
    verdict_text,
    verdicts,
)
from panbench.robustness.summary import robustness_summaries

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
@media (max-width: 600px) { body { margin: 0.6em; } }
p, summary, h2, h3, h4 { overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
td:has(> span.t) { text-align: left; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
p.note { font-size: 12px; color: #555; max-width: 60em; }
p.verdict { font-size: 15px; font-weight: 600; max-width: 70em; }
div.wide { overflow-x: auto; max-width: 100%; }
div.wide > table { margin: 0.3em 0; }
div.wide.overflows { box-shadow: inset -14px 0 10px -10px rgba(0, 0, 0, 0.45); }
div.wide.overflows::before { content: "wide table: scroll sideways \\2192"; display: block; position: sticky;
  left: 0; width: max-content; font-size: 12px; color: #a05a00; margin-top: 0.5em; }
details { margin: 0.5em 0; } pre { font-size: 11px; background: #f8f8f8; padding: 0.5em; overflow-x: auto; }
"""

# After loading, the page records its tables, decoded images, width and wide tables (read by the browser tests).
CHECK_SCRIPT = """
window.addEventListener('load', () => {
  markWide();
  const imgs = Array.from(document.images);
  document.body.dataset.tables = document.querySelectorAll('table').length;
  document.body.dataset.images = imgs.length;
  document.body.dataset.imagesRendered = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  // the right edge of the widest table that shows without opening a <details>, in CSS pixels
  const shown = Array.from(document.querySelectorAll('table')).filter(t => !t.closest('details:not([open])'));
  document.body.dataset.widestTable = Math.ceil(Math.max(0, ...shown.map(t => t.getBoundingClientRect().right)));
  document.body.dataset.shownTables = shown.length;
  document.body.dataset.pageWidth = document.documentElement.scrollWidth;
  const wide = Array.from(document.querySelectorAll('div.wide')).filter(w => !w.closest('details:not([open])'));
  const over = wide.filter(w => w.classList.contains('overflows'));
  document.body.dataset.overflowing = over.length;
  document.body.dataset.cued = over.filter(w => getComputedStyle(w, '::before').content.includes('scroll')).length;
});
// a table wider than the page scrolls in its box, which says so (the CSS cue of div.wide.overflows)
function markWide() {
  document.querySelectorAll('div.wide').forEach(w =>
    w.classList.toggle('overflows', w.scrollWidth > w.clientWidth + 1));
}
window.addEventListener('resize', markWide);
document.addEventListener('toggle', markWide, true);
"""


def _img(path: Path, href: str | None = None) -> str:
    """A figure embedded in the page (a PDF as the PNG beside it), linked to ``href`` where given."""
    shown = path.with_suffix(".png") if path.suffix == ".pdf" else path
    mime = "image/svg+xml" if shown.suffix == ".svg" else "image/png"
    data = base64.b64encode(shown.read_bytes()).decode()
    tag = f'<img alt="{html.escape(path.name)}" src="data:{mime};base64,{data}">'
    return f'<a href="{html.escape(href)}">{tag}</a>' if href else tag


def _published(recs: list[RunRecord]) -> str:
    """Measured against published numbers, for the metrics some run has a published number of."""
    if not any(has_published(r) for r in recs):
        return "<p class='note'>No published numbers for these models on this dataset.</p>"
    df = comparison(recs, vs_published=True, all_columns=True)
    keep = [k for k in METRIC_KEYS if f"{k}_pub" in df.columns]  # comparison drops the all-empty ones
    cols = [c for c in ("postprocess", "framework", "dataset", "n_images", "cfg_options", "published")
            if c in df.columns]
    df = df[cols + [c for k in keep for c in (k, f"{k}_pub", f"{k}_delta")]]
    note = ("<p class='note'>published: the published number; minus published: measured minus published. On a "
            "subset of the images a gap is expected.</p>")
    return format_table(df, "html") + note


def _analyses(recs: list[RunRecord], results: Path, reference: str | None = None) -> str:
    """One table per analysis that some run has; a line for those none has."""
    parts = []
    absent = [a for a in ANALYSES if not any(getattr(r, a.fields[0]) is not None for r in recs)]
    figures = {key: name for key, name, _ in PLOTS}
    for a in (a for a in ANALYSES if a not in absent):
        notes: list[str] = []
        df = comparison(recs, analyses=[a.key], results_dir=results, notes=notes, reference=reference, compact=True)
        name = figures.get(a.fields[0], "")
        said = [f"its figure, {Path(name).stem}, is with the plots below" if name else ""]
        parts.append(f"<h4>{html.escape(a.title)}</h4>" + format_table(df, "html", notes=notes)
                     + "".join(f"<p class='note'>{html.escape(n[0].upper() + n[1:])}.</p>" for n in said if n))
    if absent:
        hows = "; ".join(dict.fromkeys(a.how for a in absent))
        parts.append(f"<p class='note'>Not in these records ({html.escape(hows)}): "
                     + html.escape("; ".join(a.title for a in absent)) + ".</p>")
    return "<h3>analyses</h3>" + "".join(parts) + "<p class='note'>How to read them: docs/reporting.md.</p>"


def _plots(page: Page, groups: list[tuple[str, list[RunRecord]]]) -> tuple[str, list[str]]:
    """The plots and galleries of a dataset's groups of runs, and the notes for stderr."""
    parts, galleries, failed = ["<h3>plots</h3>"], [], []
    for name, group in groups:
        where = f"{dataset_key(group[0])} ({images(group[0].n_images)})" if len(groups) > 1 else ""
        folder = page.plots / name
        paths, notes = make_plots(group, folder, page.colors, image_set_note(group, [r for _, g in groups for r in g]),
                                  **({"grids": page.grids} if page.grids else {}))
        failed += [n for n in notes if n.startswith(FAILED) or n.endswith(REMOVED)]  # to stderr
        # the plot's name: its folder may be a temporary one
        notes = [n.replace(f"{folder}/", "") for n in notes if not n.endswith(REMOVED)]
        parts.append((f"<h4>{html.escape(where)}</h4>" if where else "") + "".join(page.img(p) for p in paths) +
                     "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes))
        shown: list[Path] = []  # the gallery's overlays, replacing those of an earlier report
        galleries.append(gallery_section(group, page.results, folder / "gallery", page.img_kept(shown), where=where))
        replace_figures(folder / "gallery", shown)
    return "".join(parts + galleries), failed


def _provenance(r: RunRecord) -> str:
    p, ck = r.provenance, r.provenance.get("checkpoint", {})
    rows = {
        "date": r.date, "dataset": f"{r.dataset} ({images(r.n_images)}, fingerprint {fingerprint(r)})",
        "device": r.device, "batch / amp": f"{r.batch_size} / {r.amp or 'fp32'}",
        "post-processing": r.postprocess, "--cfg-options": " ".join(cfg_words(r)) or "none",
        "config": f"{p.get('config_path')} (sha256 {p.get('config_sha256_16')})",
        "checkpoint": f"{ck.get('url') or ck.get('path')} (sha256 {ck.get('sha256')})",
        "mmcv ops": ops_backend(r) or "none reached",
        "versions": json.dumps(p.get("versions", {})), "git commit": p.get("git_commit"),
        "command": p.get("command"), "record": r.record,
    }
    body = "".join(f"<tr><th>{html.escape(k)}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                   for k, v in rows.items())
    more = f" · {s}" if (s := settings(r)) else ""
    title = f"{r.model} · post-processing {r.postprocess}{more} · {dataset_key(r)} ({images(r.n_images)})"
    return (f"<details><summary>{html.escape(title)}</summary><table>{body}</table><details><summary>resolved "
            f"config</summary><pre>{html.escape(p.get('config', ''))}</pre></details></details>")


@dataclass(frozen=True)
class Page:
    """What the parts of a report page read: the results, the figures' folder, the reference run, the colours."""

    results: Path
    plots: Path
    reference: str | None
    colors: Any
    grids: tuple[Grid, ...] = ()  # the grids of `eval --grid` with a setting among the page's runs
    across: bool = False  # `report --by dataset`: the table across datasets, a section of its own

    @property
    def linked(self) -> bool:
        """Whether the page is ``RESULTS/report.html``, its figures kept beside it."""
        return self.plots == self.results / REPORT_FILES

    def img(self, path: Path) -> str:
        """A figure embedded in the page, linked to its file where it stays beside the page."""
        kept = self.linked and path.is_relative_to(self.plots)
        return _img(path, quote(path.relative_to(self.results).as_posix()) if kept else None)

    def img_kept(self, shown: list[Path]) -> Callable[[Path], str]:
        """:meth:`img`, each figure it embeds added to ``shown``."""
        def img(path: Path) -> str:
            shown.append(path)
            return self.img(path)
        return img


def write_report(results: Path, dataset: str | None = None, out: Path | None = None,
                 reference: str | None = None, by: str | None = None) -> Path:
    """Write the report of the runs in ``results`` (of ``dataset``) at ``out`` (``RESULTS/report.html``); its path;
    ``by`` "dataset": with the table across datasets."""
    import tempfile

    announce(f"reading the records in {results}")
    every = load_records(results)
    records = latest_runs(every, dataset)
    if not records:
        raise no_records(results, dataset, every)
    robust = [r for r in latest_runs(every) if dataset is None or r.dataset.split("+")[0] == dataset]
    # the plots are embedded: a report written elsewhere (--out) leaves nothing under results/
    folder = (tempfile.TemporaryDirectory(prefix="panbench-plots-") if out is not None
              else nullcontext(str(results / REPORT_FILES)))
    colors = model_colors(results, records, keep=out is None)  # kept under results/ unless the page goes elsewhere
    # one report at a time writes under results/report_files: the page's links name files that are there
    lock = writing_figures(results / REPORT_FILES) if out is None else nullcontext()
    out = out or results / "report.html"
    with folder as plots, lock, viewable_in_a_browser():
        page = Page(results, Path(plots), reference, colors, tuple(grids_of(results, records, every)),
                    across=by == "dataset")
        text, failed = _page(page, records, robust)
        retired = retire_plot_folders(results, plot_groups(records), every, under=REPORT_FILES) if page.linked else []
        for note in retired + failed:
            print(note, file=sys.stderr)
        atomic_write_text(out, text)
    return out


def _page(page: Page, records: list[RunRecord], robust: list[RunRecord]) -> tuple[str, list[str]]:
    """The page, part after part, and the notes for stderr; ``robust``: every latest run, clean and corrupted."""
    groups = plot_groups(records)
    sections, failed = [], []
    for ds in sorted({r.dataset for r in records if not r.corruption}):  # corrupted: the robustness part
        announce(f"the {ds} section: verdict, tables, figures, gallery")
        text, more = _dataset_section(page, [r for r in records if r.dataset == ds],
                                      [(n, g) for n, g in groups if g[0].dataset == ds])
        sections.append(text)
        failed += more
    announce("the robustness, visualizations and provenance sections")
    robustness, removed = _robustness(page, robust)
    across, gone = _across(page, records)
    sections[:0] = [across] if across else []
    if corrupted := corrupted_note(records):  # the line table and plot say it in too
        sections.insert(0, f"<p class='note'>{html.escape(corrupted)}</p>")
    parts = [_head(), *sections, robustness, *_visualizations(page), _provenances(records), "</body></html>"]
    return "\n".join(parts), failed + removed + gone


def _across(page: Page, records: list[RunRecord]) -> tuple[str, list[str]]:
    """With ``--by dataset`` the section of the table across datasets with its figure ('' without); and the notes for
    stderr: the figure failed, or an earlier report's removed (where this one draws none)."""
    folder, clean = page.plots / ACROSS_FOLDER, [r for r in records if not r.corruption]
    paths, notes = [], []
    try:
        paths = [pq_across_datasets(clean, folder)] if page.across and clean else []
    except Exception as e:  # a broken figure must not cost the page its table
        notes.append(f"{FAILED} {folder / ACROSS_FIGURE}: not drawn ({type(e).__name__}: {e}); please report it")
    if removed := replace_figures(folder, paths):
        notes.append(f"{folder}: removed {', '.join(p.name for p in removed)} {REMOVED}")
    if not page.across or not clean:
        return "<h2>across datasets</h2><p class='note'>No clean run in these records.</p>" * page.across, notes
    df, more = across_datasets(clean)
    shown, counts = shown_across(df)
    return ("<h2>across datasets</h2>" + format_table(shown, "html", ACROSS_DIGITS, notes=counts + more)
            + "".join(page.img(p) for p in paths)
            + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes if n.startswith(FAILED)), notes)


def _head() -> str:
    return "\n".join(["<!doctype html><html><head><meta charset='utf-8'>",
                      "<meta name='viewport' content='width=device-width, initial-scale=1'><title>panbench report"
                      "</title>", f"<style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head><body>",
                      "<h1>panbench report</h1>"])


def _dataset_section(page: Page, recs: list[RunRecord], groups: list[tuple[str, list[RunRecord]]]
                     ) -> tuple[str, list[str]]:
    """A dataset's section: verdict, tables, details, plots and galleries; and the notes for stderr."""
    plots, failed = _plots(page, groups)
    found, verdict_notes = verdicts(ranked_records(recs), page.results, page.reference)
    notes: list[str] = []
    paths = {r.record for r in recs}
    grids = [g for g in page.grids if any(s.get("record") in paths for s in g.settings)]
    marks = grid_marks(grids)
    grid_notes = ([GRID_NOTE] if marks else []) + ([NAMED_NOTE] if several_names(grids) else [])
    compared = format_table(comparison(recs, notes=notes, marks=marks), "html", notes=notes + grid_notes)
    parts = [f"<h2>{html.escape(recs[0].dataset)}</h2>",
             "<h3>verdict</h3>" + verdict_text(found, "html")
             + "".join(f"<p class='note'>{html.escape(n)}</p>" for n in verdict_notes),
             "<h3>PQ / SQ / RQ</h3>" + compared, _grids(grids),
             "<h3>details</h3><details><summary>every column (framework, selection, batch, amp, "
             "--cfg-options, things and stuff, semantic metrics, category counts, device)</summary>"
             + format_table(comparison(recs, all_columns=True), "html") + "</details>",
             "<h3>comparison with published numbers</h3>" + _published(recs),
             _analyses(recs, page.results, page.reference),
             "<h3>per-class PQ</h3><details><summary>one row per category, one column per run (blank: "
             "absent from ground truth and predictions)</summary>" + format_table(per_class(recs), "html")
             + "</details>", plots]
    return "\n".join(parts), failed


def _grids(grids: list[Grid]) -> str:
    """The grids' section: per grid of ``eval --grid``, its settings with the model's own and the best marked, and
    the note that a setting chosen on these images is not a test result; '' without grids."""
    if not grids:
        return ""
    parts = ["<h3>grids</h3><p class='note'>Each setting of a grid (<code>panbench eval --grid</code>) is scored "
             "from one forward pass and recorded as a run of its own (the tables above show each); its figure is with "
             "the plots. Compare two settings with <code>panbench compare MODEL MODEL --settings-a TEXT --settings-b "
             "best</code>.</p>"]
    for g in grids:
        df = grid_frame(g)
        parts.append(f"<h4>{html.escape(g.label())}</h4>"
                     + format_table(df, "html", notes=[GRID_NOTE, *_grid_rule_notes(g, df)]))
    return "".join(parts)


def _grid_rule_notes(g: Grid, df: Any) -> list[str]:
    """What a grid's columns of PQ under other rules (``--rules``) mean, and the classes a mean over every class
    counted as 0; none without such columns."""
    if not any(rule_of_column(c) for c in df.columns):
        return []
    shown = [r for r in g.records if r is not None]
    labels = {id(r): s["label"] for s, r in zip(g.settings, g.records)}
    return [RULE_NOTE, *absent_notes(shown, shown_rules(shown), lambda r: labels[id(r)])]


def _robustness(page: Page, records: list[RunRecord]) -> tuple[str, list[str]]:
    """The robustness section (empty without corrupted runs) and the note for stderr of the figures removed."""
    summaries = robustness_summaries(records)
    if not summaries:
        return "", []
    folder = page.plots / "robustness"
    paths = robustness_plots(summaries, folder, page.colors)
    removed = replace_figures(folder, paths)
    return ("<h2>robustness (common corruptions)</h2>" + format_robustness_table(summary_frame(summaries), "html") +
            "<details><summary>every corrupted run</summary>"
            + format_robustness_table(runs_frame(summaries), "html", notes=()) +
            "</details>" + "".join(page.img(p) for p in paths),
            [f"{folder}: removed {', '.join(p.name for p in removed)} {REMOVED}"] if removed else [])


def _visualizations(page: Page) -> list[str]:
    """The figures of ``viz`` under ``RESULTS/viz``: PNGs and SVGs shown, a PDF without one linked; none without any."""
    folder = page.results / "viz"
    figs = sorted(p for p in folder.glob("*") if p.suffix in (".png", ".svg", ".pdf")) if folder.is_dir() else []
    twins = {p.with_suffix("") for p in figs if p.suffix != ".pdf"}
    parts = [_img(p) if p.suffix != ".pdf" else _linked_pdf(page, p) for p in figs
             if p.suffix != ".pdf" or p.with_suffix("") not in twins]
    return ["<h2>visualizations</h2>" + "".join(parts)] if parts else []


def _linked_pdf(page: Page, path: Path) -> str:
    """A link to a PDF figure: relative to the page beside the results, else the file's own address."""
    href = quote(path.relative_to(page.results).as_posix()) if page.linked else path.resolve().as_uri()
    return (f'<p><a href="{html.escape(href)}">{html.escape(path.name)}</a> (PDF: a web page cannot show it; '
            "open it from this link)</p>")


def _provenances(records: list[RunRecord]) -> str:
    return "<h2>provenance</h2>" + "".join(_provenance(r) for r in records)


N_IMAGES = 3  # images per model


def losses(recs: list[RunRecord], results: Path, n: int = N_IMAGES) -> list[tuple[RunRecord, RunRecord, list]]:
    """Per run A: the best other run B on the same images and A's (at most ``n``) images of largest loss to B."""
    groups: dict[str | None, list[RunRecord]] = {}
    for r in recs:
        if r.analysis_file and (results / r.analysis_file).is_file() and fingerprint(r):
            groups.setdefault(fingerprint(r), []).append(r)
    out = []
    for runs in groups.values():
        cols = {}
        for r in runs:
            try:
                aset = AnalysisSet.load(results / str(r.analysis_file), PAIRED_COLUMNS)  # what per_image sums
                cols[id(r)] = per_image_columns(aset, file_names_of(_dataset(r).get("ann_file"), aset.image_ids))
            except PanbenchError as e:  # a damaged analysis file: the run left out of the gallery, said in one line
                note_skipped(str(e))
        runs = [r for r in runs if id(r) in cols]
        if len(runs) < 2:
            continue
        runs = sorted(runs, key=lambda r: -r.metrics["PQ"])
        for a in runs:
            b = next(r for r in runs if r is not a)  # the best other run
            rows = ranked(cols[id(a)], cols[id(b)], n)
            out.append((a, b, [r for r in rows if r["key"] is not None and r["key"] < 0]))
    return out


def _dataset(r: RunRecord) -> dict[str, Any]:
    return (r.provenance or {}).get("dataset") or {}


def gallery_section(recs: list[RunRecord], results: Path, out_dir: Path, img: Callable[[Path], str],
                    n: int = N_IMAGES, where: str = "") -> str:
    """The gallery's HTML: per model its ``n`` largest losses to the best other run, a table and overlays."""
    found = losses(recs, results, n)
    if not found:
        return ""
    head = "where each model loses most" + (f" · {where}" if where else "")
    parts = [f"<h3>{html.escape(head)}</h3><p class='note'>Per model, the images with the largest loss "
             "PQ(model) - PQ(best other run) on the same images; each image is scored alone (panbench images "
             "--run A --vs B lists more). Overlays need the images and both runs' --save-predictions.</p>"]
    cache: dict[Any, Any] = {}  # datasets and saved prediction JSONs, each read once
    for a, b, rows in found:  # each run named as the verdict names it
        name_a, name_b = short_label(a, recs), short_label(b, recs)
        head = f"<h4>{html.escape(name_a)} vs {html.escape(name_b)}</h4>"
        if not rows:
            parts.append(head + f"<p class='note'>no image where {html.escape(name_a)} has a lower PQ</p>")
            continue
        parts.append(head + _table(rows, name_a, name_b))
        for k, row in enumerate(rows):
            path = _overlay(a, b, row, out_dir / f"{_safe(a.model)}-vs-{_safe(b.model)}-{k}.png", cache)
            if path is not None:
                parts.append(img(path))
    return "".join(parts)


def _table(rows: list[dict[str, Any]], name_a: str, name_b: str) -> str:
    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    head = ["image", "file", f"PQ {name_a}", f"PQ {name_b}", "A - B", "TP", "FP", "FN"]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
        r["image_id"], r["file_name"], num(r["PQ"]), num(r["PQ_vs"]), num(r["key"]), r["TP"], r["FP"], r["FN"]))
        + "</tr>" for r in rows)
    return ("<div class='wide'><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + body
            + "</table></div>")  # a box that scrolls sideways on a narrow page, as the report's other tables


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _overlay(a: RunRecord, b: RunRecord, row: dict[str, Any], out: Path, cache: dict[Any, Any]) -> Path | None:
    """The viz figure of one image with both runs' saved predictions; None when any of them is not at hand."""
    try:
        ds = _load(_dataset(a), cache)
        sample = next((s for s in ds.samples if str(s.image_id) == str(row["image_id"])), None) if ds else None
        if ds is None or sample is None or not sample.image_path.is_file():
            return None  # no image to draw on: the runs' saved predictions are not read
        preds = [_saved(r, row["image_id"], cache) for r in (a, b)]
        if None in preds:
            return None
        from panbench.reporting.viz import draw_overlay

        heading = f" · PQ {a.model} {row['PQ']:.1f}, {b.model} {row['PQ_vs']:.1f}"
        return draw_overlay(sample, ds, preds, out, heading=heading)
    except (PanbenchError, OSError, ValueError, KeyError, StopIteration):
        return None


def _load(meta: dict[str, Any], cache: dict[Any, Any]) -> Any:
    """The dataset a run's record names, loaded once per report; None when it is not known."""
    if not meta.get("root") or not meta.get("name"):
        return None
    key = ("dataset", str(meta["root"]), str(meta["name"]))
    if key not in cache:
        from panbench.data.datasets import load_dataset

        cache[key] = load_dataset(Path(key[1]), name=key[2])
    return cache[key]


def _saved(r: RunRecord, image_id: Any, cache: dict[Any, Any]) -> Any:
    """A run's saved prediction of one image as a :class:`panbench.reporting.viz.Prediction`, or None."""
    from panbench.pq.png import read_ids
    from panbench.reporting.viz import Prediction

    saved = (r.provenance or {}).get("predictions") or {}
    if not saved.get("json") or not Path(saved["json"]).is_file():
        return None
    key = ("predictions", saved["json"])
    if key not in cache:
        cache[key] = {str(x["image_id"]): x for x in json.loads(Path(saved["json"]).read_text()).get("annotations", [])}
    ann = cache[key].get(str(image_id))
    if ann is None or not (Path(saved["dir"]) / ann["file_name"]).is_file():
        return None
    ids = read_ids(Path(saved["dir"]) / ann["file_name"], f"{r.model} image {image_id}")
    return Prediction(r.model, ids, ann["segments_info"])
