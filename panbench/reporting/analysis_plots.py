"""Plots of the analyses in the records (docs/analysis.md): PQ with its bootstrap interval, PQ by object size,
and the errors by type. A run that lacks an analysis is left out of that plot and named under it; a plot no
run has the data for is skipped (:func:`panbench.reporting.plots.make_plots` says so in one line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from panbench.analysis.breakdown import ERROR_TYPES
from panbench.records.schema import RunRecord
from panbench.reporting.figures import Colors, legend_below, plot_title, plt, save, styles
from panbench.reporting.labels import SIZES, missing_why, run_label


def _left_out(records: list[RunRecord], key: str) -> str:

    return "; ".join(f"{why}, left out: {', '.join(run_label(r, records) for r in missing)}"
                     for missing, why in missing_why(records, key, f"no `{key}` in the record"))


def pq_intervals(records: list[RunRecord], out: Path, colors: Colors | None = None) -> Path:
    """PQ, PQ_th and PQ_st of each run as a point with its 95% bootstrap interval (one row per run)."""

    pyplot = plt()
    have = [r for r in records if r.ci]
    fig, axes = pyplot.subplots(1, 3, figsize=(13, 1.6 + 0.45 * len(have)), sharey=True, squeeze=False)
    style, _ = styles(have, colors, records)
    y = np.arange(len(have))[::-1]
    for ax, key in zip(axes[0], ("PQ", "PQ_th", "PQ_st")):
        x = np.array([r.metrics[key] for r in have])
        lo = np.array([(r.ci or {})[key][0] for r in have])
        hi = np.array([(r.ci or {})[key][1] for r in have])
        for k in range(len(have)):
            # an interval end can differ from the point by float rounding (one image: every resample is it)
            err = [[max(0.0, x[k] - lo[k])], [max(0.0, hi[k] - x[k])]]
            ax.errorbar(x[k], y[k], xerr=err, fmt="o", color=style[k]["color"],
                        capsize=4, ms=5)
            ax.annotate(f"{x[k]:.1f} [{lo[k]:.1f}, {hi[k]:.1f}]", (x[k], y[k]), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=7)
        pad = max(1.0, 0.15 * float(hi.max() - lo.min()))
        ax.set_xlim(max(0.0, float(lo.min()) - pad), float(hi.max()) + pad)  # past 100: room for a label there
        ax.set_ylim(-0.7, len(have) - 0.3)
        ax.set_title(key)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, [run_label(r, records) for r in have], fontsize=8)
    axes[0, 1].set_xlabel("PQ points; bars: 95% image-bootstrap interval" +
                          (f"\n{note}" if (note := _left_out(records, "ci")) else ""), fontsize=8)
    fig.suptitle(plot_title(records, "PQ with its 95% confidence interval"))
    return save(fig, out / "pq_intervals.png")


def plot_pq_by_size(records: list[RunRecord], out: Path, colors: Colors | None = None) -> Path:
    """PQ of things in each COCO size bucket, one bar per run (none where the bucket has no category: its PQ
    is undefined, not 0); the bucket's ground-truth segments under it when the runs agree on them."""
    pyplot = plt()
    have = [r for r in records if r.by_size]
    fig, ax = pyplot.subplots(figsize=(max(7.0, 1.2 * len(have) + 5), 4.6))
    width = 0.8 / max(len(have), 1)
    style, handles = styles(have, colors, records)
    for k, r in enumerate(have):
        vals = [(r.by_size or {})[s]["PQ"] if (r.by_size or {})[s].get("n") else np.nan for s in SIZES]
        bars = ax.bar(np.arange(3) + k * width, vals, width, **style[k])
        labels = ["" if np.isnan(v) else f"{v:.1f}" for v in vals]
        if len(have) <= 3:
            ax.bar_label(bars, labels=labels, fontsize=7, padding=1)
        else:
            ax.bar_label(bars, labels=labels, fontsize=6, rotation=90, padding=2)
    ticks = ["small\narea < 32²", "medium\n32² ≤ area < 96²", "large\narea ≥ 96²"]
    for i, s in enumerate(SIZES):
        segs = {(r.by_size or {})[s].get("segments") for r in have}
        if len(segs) == 1:
            ticks[i] += f"\n{segs.pop()} segments"
    ax.set_xticks(np.arange(3) + width * (len(have) - 1) / 2, ticks, fontsize=8)
    ax.set_xlim(-width, 2.8)  # the three buckets, an empty one too
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("PQ of things (0-100)")
    ax.set_title(plot_title(records, "PQ by object size (things only)"))
    if note := _left_out(records, "by_size"):
        ax.set_xlabel(note, fontsize=8)
    legend_below(fig, handles)
    return save(fig, out / "pq_by_size.png", layout=False)


ERROR_COLORS = {"classification": "#d62728", "segmentation": "#ff7f0e", "duplicate": "#9467bd",
                "background": "#8c564b", "missed": "#1f77b4", "other": "#7f7f7f"}


def error_bars(records: list[RunRecord], out: Path, colors: Colors | None = None) -> Path:
    """One stacked bar per run: its errors (FPs + FNs) by type, counted (each FP or FN has one type, so the
    stack is the run's FP + FN total)."""
    from matplotlib.patches import Patch


    pyplot = plt()
    have = [r for r in records if r.errors]
    fig, ax = pyplot.subplots(figsize=(max(7.0, 1.1 * len(have) + 4), 4.8))
    bottom = np.zeros(len(have))
    for t in ERROR_TYPES:
        n = np.array([float(((r.errors or {}).get(t) or {}).get("count", 0)) for r in have])
        ax.bar(np.arange(len(have)), n, 0.6, bottom=bottom, color=ERROR_COLORS[t], edgecolor="white", linewidth=0.5)
        bottom += n
    for k, total in enumerate(bottom):
        ax.annotate(f"{int(total)}", (k, total), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(have)), [run_label(r, records) for r in have], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.12 * max(float(bottom.max()) if len(bottom) else 0.0, 1.0))
    ax.set_ylabel("errors (FP + FN count)")
    ax.set_title(plot_title(records, "errors by type (count)") +
                 (f"\n{note}" if (note := _left_out(records, "errors")) else ""), fontsize=10)
    handles = [Patch(color=ERROR_COLORS[t], label=t) for t in ERROR_TYPES]
    legend_below(fig, handles)
    return save(fig, out / "errors.png", layout=False)


# (the record field a plot needs, its file name, the function that draws it)
PLOTS = (("ci", "pq_intervals.png", pq_intervals), ("by_size", "pq_by_size.png", plot_pq_by_size),
         ("errors", "errors.png", error_bars))
