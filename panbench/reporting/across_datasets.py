"""One table across datasets (``table --by dataset``, ``report --by dataset``, ``plot --by dataset``;
docs/reporting.md): a row per architecture and backbone, a column group per dataset with PQ, PQ things, PQ stuff,
AP and mIoU, each published number beside the measured one, as the model zoos lay it out.  Runs on different
datasets are never ranked against each other: the rows are in the order of their names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.records.io import load_records
from panbench.records.schema import RunRecord
from panbench.reporting import plot_parts
from panbench.reporting.colors import OKABE_ITO
from panbench.reporting.columns import ap_miou_columns
from panbench.reporting.figure_style import MIN_TEXT_PT, current_width, footnote, legend_below, new_figure, styled
from panbench.reporting.formats import writer
from panbench.reporting.labels import corrupted_note, dataset_key, fold_label, images, settings
from panbench.reporting.tables import format_table, latest_runs, no_records

#: the metrics of each dataset's column group, with their header words; one no run of a dataset has is left out there
ACROSS_METRICS = {"PQ": "PQ", "PQ_th": "PQ things", "PQ_st": "PQ stuff", "AP": "AP", "mIoU": "mIoU"}
ACROSS_DIGITS = 2  # decimals for readers, as the verdict and LaTeX print them (CSV: every digit)
ACROSS_FIGURE = "pq_across_datasets.png"
ACROSS_FOLDER = "across-datasets"  # under RESULTS/plots/ (plot) and RESULTS/report_files/ (report)
ORDER_NOTE = ("Rows in the order of their names, not ranked: runs on different datasets are never "
              "ranked against each other (`panbench table --only-dataset DATASET` ranks one dataset's runs, with "
              "their paired differences).")
PUBLISHED_NOTE = ("pub.: the number the model's source publishes for that dataset, beside the one measured (CSV: "
                  "<dataset>.<metric>_pub; `panbench table --vs-published` names the source, its rules and the PQ "
                  "differences; AP and mIoU's are in the records' delta_to_published); -: the run did not compute the "
                  "metric, or nothing is published.")


def row_label(r: RunRecord) -> str:
    """A run's row: ``hf-mask2former_swin-l: Mask2Former | Swin-L (IN-21k)``, the model's name without its dataset's
    suffix (``<name>-<dataset>`` on that dataset: the same row as ``<name>`` on coco; two models of one dataset never
    share a row), with its settings and a post-processing other than the default
    (as the verdict names a run); a run without architecture or backbone (an external system) by its model's name."""
    known = r.architecture not in (None, "", "external") and r.backbone not in (None, "", "?")
    base = r.model.removesuffix(f"-{r.dataset}")
    label = f"{base}: {r.architecture} | {r.backbone}" if known else r.model
    if s := settings(r):
        label += f" ({s})"
    return label + ("" if r.postprocess in ("default", "external") else f" [{r.postprocess}]")


def _measured(r: RunRecord, key: str) -> float | None:
    """The run's value of a metric of :data:`ACROSS_METRICS` (AP and mIoU as the default table reads them)."""
    return ap_miou_columns(r)[key] if key in ("AP", "mIoU") else r.metrics.get(key)


def _shown_runs(records: list[RunRecord]) -> tuple[dict[tuple[str, str], RunRecord], list[RunRecord]]:
    """The run of each (row, dataset): the latest of the table's latest runs there; and the earlier ones left out."""
    cells: dict[tuple[str, str], RunRecord] = {}
    left: list[RunRecord] = []
    for r in sorted(records, key=lambda r: r.date):
        if (key := (row_label(r), r.dataset)) in cells:
            left.append(cells[key])
        cells[key] = r
    return cells, left


def _group(dataset: str, runs: dict[str, RunRecord], rows: list[str]) -> dict[str, list[Any]]:
    """One dataset's columns (CSV names ``<dataset>.<field>``): the run, its images, then each metric some run has,
    with its published number where some run has one."""
    got = {label: runs.get(label) for label in rows}
    out: dict[str, list[Any]] = {f"{dataset}.run": [r.model if r else None for r in got.values()],
                                 f"{dataset}.n_images": [r.n_images if r else None for r in got.values()]}
    for key in ACROSS_METRICS:
        values = [_measured(r, key) if r else None for r in got.values()]
        if all(v is None for v in values):  # no run of the dataset has it: not in its group
            continue
        out[f"{dataset}.{key}"] = values
        published = [r.published.get(key) if r else None for r in got.values()]
        if any(p is not None for p in published):
            out[f"{dataset}.{key}_pub"] = published
    return out


def across_datasets(records: list[RunRecord]) -> tuple[Any, list[str]]:
    """The data step: one row per :func:`row_label`, a column group per dataset (sorted by name, so that a dataset
    stands beside its relabeling), CSV's field names; and the notes under it."""
    import pandas as pd

    cells, left = _shown_runs(records)
    rows = sorted({label for label, _ in cells}, key=lambda s: (s.casefold(), s))
    datasets = sorted({ds for _, ds in cells})
    columns: dict[str, list[Any]] = {}
    for ds in datasets:
        columns.update(_group(ds, {label: r for (label, d), r in cells.items() if d == ds}, rows))
    df = pd.DataFrame(columns, index=pd.Index(rows, name="model"))
    df = df.astype({c: "Int64" for c in df.columns if c.endswith(".n_images")})
    notes = [ORDER_NOTE]
    if len(datasets) == 1:
        notes.append(f"One dataset here ({datasets[0]}): one column group; the runs of each other dataset would "
                     "make a group of their own.")
    if any(c.endswith("_pub") for c in df.columns):
        notes.append(PUBLISHED_NOTE)
    if left:
        notes.append("Left out, a later run of the same architecture, backbone and settings on the dataset shown "
                     "instead: " + "; ".join(f"{r.model} ({dataset_key(r)}, {images(r.n_images)}, {r.date})"
                                               for r in left))
    return df, notes


def shown_across(df: Any) -> tuple[Any, list[str]]:
    """The presentation step's columns: header words ``<dataset> PQ things``, ``<dataset> PQ pub.``; the run's
    model name left to CSV; a group's images a note where its runs share the count, else a column."""
    out, counts = df.drop(columns=[c for c in df.columns if c.endswith(".run")]), []
    for col in [c for c in df.columns if c.endswith(".n_images")]:
        ds, n = col[: -len(".n_images")], df[col].dropna().unique()
        if len(n) == 1:
            out = out.drop(columns=col)
            counts.append(f"{ds} {int(n[0])}")
    names = {}
    for col in out.columns:
        ds, field = col.rsplit(".", 1)
        key, pub = field.removesuffix("_pub"), field.endswith("_pub")
        names[col] = f"{ds} images" if field == "n_images" else f"{ds} {ACROSS_METRICS[key]}{' pub.' * pub}"
    notes = [f"Images: {'; '.join(counts)}."] if counts else []
    return out.rename(columns=names), notes


def across_datasets_table(results_dir: Path, dataset: str | None, fmt: str) -> tuple[str, list[str]]:
    """``panbench table --by dataset``: the table in ``fmt`` and its notes (CSV: the data step's columns with every
    digit, the notes printed apart)."""
    records, corrupted = clean_runs(results_dir, dataset)
    df, notes = across_datasets(records)
    if writer(fmt).fields:
        return format_table(df, fmt), corrupted + notes
    shown, counts = shown_across(df)
    notes = corrupted + counts + notes
    return format_table(shown, fmt, ACROSS_DIGITS, notes=() if writer(fmt).notes_apart else notes), notes


def clean_runs(results_dir: Path, dataset: str | None) -> tuple[list[RunRecord], list[str]]:
    """The latest clean runs (of ``dataset``) and the note on the corrupted ones left out, as ``table`` says it."""
    every = load_records(Path(results_dir))
    records = latest_runs(every, dataset)
    if not records:
        raise no_records(results_dir, dataset, every)
    corrupted = corrupted_note(records)
    clean = [r for r in records if not r.corruption]
    if not clean:
        raise PanbenchError(f"{results_dir}/runs: {corrupted}; pass --only-dataset with a dataset of clean runs")
    return clean, [corrupted] if corrupted else []


@styled
def pq_across_datasets(records: list[RunRecord], out: Path) -> Path:
    """A panel per dataset: PQ of each row as a bar, its published PQ a black mark; side by side from 6 in wide."""
    import numpy as np
    from matplotlib.lines import Line2D

    df, _ = across_datasets(records)
    datasets = [c[: -len(".PQ")] for c in df.columns if c.endswith(".PQ")]
    stacked = current_width() < plot_parts.SIDE_BY_SIDE and len(datasets) > 1
    names = [fold_label(label, 22) for label in df.index]
    row = max(0.28, (1.2 * max(n.count("\n") + 1 for n in names) + 1) * MIN_TEXT_PT / 72)
    panel = 0.5 + row * len(df)
    shape = (len(datasets), 1) if stacked else (1, len(datasets))
    fig, axes = new_figure(0.8 + panel * shape[0], *shape, sharey=True, squeeze=False)
    y = np.arange(len(df))[::-1]
    for ax, ds in zip(axes.ravel(), datasets):
        pq = df[f"{ds}.PQ"].to_numpy(float, na_value=np.nan)
        ax.barh(y, pq, 0.6, color=OKABE_ITO[0])
        if f"{ds}.PQ_pub" in df.columns:
            pub = df[f"{ds}.PQ_pub"].to_numpy(float, na_value=np.nan)
            ax.scatter(pub, y, marker="|", s=160, linewidths=2, color="black", zorder=3)
        ax.set(xlim=(0, 100), title=ds)
        ax.set_yticks(y, names)
        ax.grid(axis="x", alpha=0.3)
    fig.supxlabel("PQ")
    fig.suptitle("PQ across datasets (not ranked: each panel its own dataset)")
    handles = [Line2D([], [], color=OKABE_ITO[0], linewidth=6, label="PQ measured (the latest run)"),
               Line2D([], [], color="black", marker="|", markersize=10, markeredgewidth=2, linestyle="none",
                      label="PQ published")]
    legend_below(fig, handles)
    footnote(fig, "rows: architecture | backbone; no bar: no run on that dataset")
    return plot_parts.save(fig, out / ACROSS_FIGURE)
