"""The analyses' figures (docs/reporting.md): PQ's intervals, PQ by size, the error breakdown, PQ against the
score threshold and the reliability diagrams; :data:`PLOTS` lists them with the record field each reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analyses import by_key
from panbench.analysis.breakdown import ERROR_TYPES
from panbench.analysis.scores import no_score
from panbench.pq.sums import PQ_GROUPS
from panbench.records.schema import RunRecord
from panbench.reporting import plot_parts
from panbench.reporting.colors import ERROR_COLORS, Colors
from panbench.reporting.figure_style import (
    MIN_TEXT_PT,
    axes_height,
    current_width,
    fit_texts,
    footnote,
    lay_out,
    legend_below,
    new_figure,
    note_under,
    styled,
    titles_apart,
    under_axes,
    wrap,
)
from panbench.reporting.labels import (
    SIZES,
    fold_label,
    missing_why,
    short_label,
)
from panbench.reporting.placing import keep_inside, value_labels
from panbench.reporting.plot_parts import SIDE_BY_SIDE, plot_title, styles


def _left_out(records: list[RunRecord], key: str) -> str:
    return "; ".join(f"{why}, left out: {', '.join(short_label(r, records) for r in missing)}"
                     for missing, why in missing_why(records, key, f"no `{key}` in the record"))


def _row_inches(names: list[str], least: float) -> float:
    """The height of a row that a name of ``names`` labels: ``least``, or its lines of text (7 pt, 1.2 apart) and an
    em between two names."""
    lines = max((n.count("\n") + 1 for n in names), default=1)
    return max(least, (1.2 * lines + 1) * MIN_TEXT_PT / 72)


@styled
def pq_intervals(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """PQ, PQ_th and PQ_st of each run with its 95% interval: three panels, stacked below :data:`SIDE_BY_SIDE`."""
    have = [r for r in records if r.ci]
    stacked = current_width() < SIDE_BY_SIDE
    names = [fold_label(short_label(r, records), 24) for r in have]
    row = _row_inches(names, 0.3 if stacked else 0.4)
    height = 0.9 + 3 * (0.45 + row * len(have)) if stacked else 1.1 + row * len(have)
    fig, axes = new_figure(height, *((3, 1) if stacked else (1, 3)), sharey=True, squeeze=False)
    style, _ = styles(have, colors, records)
    y = np.arange(len(have))[::-1]
    values = []
    for ax, key in zip(axes.ravel(), ("PQ", "PQ_th", "PQ_st")):
        x = np.array([r.metrics.get(key) for r in have], float)  # one a record lacks: nan, no point drawn
        lo, hi = (np.array([((r.ci or {}).get(key) or (None, None))[end] for r in have], float) for end in (0, 1))
        for k in range(len(have)):
            if np.isnan([x[k], lo[k], hi[k]]).any():
                continue
            # an interval end can differ from the point by float rounding (one image: every resample is it)
            err = [[max(0.0, x[k] - lo[k])], [max(0.0, hi[k] - x[k])]]
            ax.errorbar(x[k], y[k], xerr=err, fmt="o", color=style[k]["color"], capsize=4, ms=5)
            values.append(ax.annotate(f"{x[k]:.1f} [{lo[k]:.1f}, {hi[k]:.1f}]", (x[k], y[k]), xytext=(0, 6),
                                      textcoords="offset points", ha="center", fontsize=MIN_TEXT_PT,
                                      in_layout=False))
        ends = np.concatenate([lo, hi])
        ends = ends[~np.isnan(ends)] if not np.isnan(ends).all() else np.array([0.0, 100.0])
        pad = max(1.0, 0.15 * float(ends.max() - ends.min()))
        ax.set_xlim(max(0.0, float(ends.min()) - pad), float(ends.max()) + pad)  # past 100: room for a label there
        ax.set_ylim(-0.7, len(have) - 0.3)
        ax.set_title(key)
        ax.grid(axis="x", alpha=0.3)
        ax.set_yticks(y, names)
    fig.supxlabel("PQ points; bars: 95% image-bootstrap interval")
    fig.suptitle(plot_title(records, "PQ with its 95% confidence interval"))
    if left := _left_out(records, "ci"):
        under_axes(fig).append(note_under(fig, left, "center"))
    footnote(fig, note)
    lay_out(fig)
    fit_texts(fig)
    keep_inside(values)
    return plot_parts.save(fig, out / "pq_intervals.png")


@styled
def plot_pq_by_size(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """PQ of things per COCO size bucket, one bar per run; a bucket without segments named under the axes."""
    have = [r for r in records if r.by_size]
    sizes = [s for s in SIZES if any((r.by_size or {}).get(s, {}).get("n") for r in have)]
    empty = [s for s in SIZES if s not in sizes]
    fig, ax = new_figure(axes_height(0.4, 2.2, 3.4))
    width = 0.8 / max(len(have), 1)
    style, handles = styles(have, colors, records)
    for k, r in enumerate(have):
        vals = [(r.by_size or {})[s]["PQ"] if (r.by_size or {})[s].get("n") else np.nan for s in sizes]
        bars = ax.bar(np.arange(len(sizes)) + k * width, vals, width, **style[k])
        value_labels(ax, bars, ["" if np.isnan(v) else f"{v:.1f}" for v in vals])
    limits = {"small": "area < 32²", "medium": "32² ≤ area < 96²", "large": "area ≥ 96²"}
    ticks = [f"{s}\n{limits[s]}" for s in sizes]
    for i, s in enumerate(sizes):
        segs = {(r.by_size or {})[s].get("segments") for r in have}
        if len(segs) == 1:
            ticks[i] += f"\n{segs.pop()} segments"
    ax.set_xticks(np.arange(len(sizes)) + width * (len(have) - 1) / 2, ticks)
    ax.set_xlim(-width, len(sizes) - 0.2)
    ax.set(ylim=(0, 112), yticks=range(0, 101, 20))
    ax.set_ylabel("PQ of things (0-100)")
    ax.set_title(plot_title(records, "PQ by object size (things only)"))
    footnote(fig, note)
    notes = [f"not drawn, no ground-truth segment of things in it: {', '.join(empty)}"] if empty else []
    if left := _left_out(records, "by_size"):
        notes.append(left)
    legend_below(fig, handles, "\n".join(notes))
    return plot_parts.save(fig, out / "pq_by_size.png")


@styled
def error_bars(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """One stacked bar per run: its errors (FPs + FNs) by type, counted."""
    from matplotlib.patches import Patch

    have = [r for r in records if r.errors]
    fig, ax = new_figure(axes_height(0.4, 2.2, 3.4))
    bottom = np.zeros(len(have))
    for t in ERROR_TYPES:
        n = np.array([float(((r.errors or {}).get(t) or {}).get("count", 0)) for r in have])
        ax.bar(np.arange(len(have)), n, 0.6, bottom=bottom, color=ERROR_COLORS[t], edgecolor="white", linewidth=0.5)
        bottom += n
    for k, total in enumerate(bottom):
        ax.annotate(f"{int(total)}", (k, total), xytext=(0, 2), textcoords="offset points", ha="center",
                    fontsize=MIN_TEXT_PT)
    upright = len(have) <= 3  # few bars: their names fit level
    ax.set_xticks(np.arange(len(have)), [fold_label(short_label(r, records), 24) for r in have],
                  rotation=0 if upright else 30, ha="center" if upright else "right", rotation_mode="anchor")
    ax.set_ylim(0, 1.12 * max(float(bottom.max()) if len(bottom) else 0.0, 1.0))
    ax.set_ylabel("errors (FP + FN count)")
    ax.set_title(plot_title(records, "errors by type (count)"))
    footnote(fig, note)
    handles = [Patch(color=ERROR_COLORS[t], label=t) for t in ERROR_TYPES]
    legend_below(fig, handles, _left_out(records, "errors"))
    return plot_parts.save(fig, out / "errors.png")


LINE_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.")  # a line style per post-processing where the lines show several


def _panels() -> tuple[Any, Any, bool]:
    """The figure and axes of three panels (All, Things, Stuff; PQ_GROUPS) sharing a PQ axis: side by side from
    :data:`SIDE_BY_SIDE` wide, else stacked; whether stacked."""
    stacked = current_width() < SIDE_BY_SIDE
    height = axes_height(0.36, 1.7, 2.8)
    fig, axes = new_figure(height * (3 if stacked else 1), *((3, 1) if stacked else (1, 3)), sharey=True,
                           squeeze=False)
    return fig, axes.ravel(), stacked


def _threshold_marks(ax: Any, t: np.ndarray, y: np.ndarray, st: dict[str, Any], color: Any) -> bool:
    """On a run's line, its own threshold (an open circle, where known) and its best (a star); whether the own one
    was known."""
    own = (st.get("own") or {}).get("threshold")
    for mark, at in (("own", own), ("best", st["best"]["threshold"])):
        if at is None:
            continue
        i = int(np.argmin(np.abs(t - at)))
        ax.plot([t[i]], [y[i]], linestyle="none", zorder=4, color=color,
                **({"marker": "o", "ms": 6, "markerfacecolor": "white", "markeredgecolor": color,
                    "markeredgewidth": 1.2} if mark == "own" else
                   {"marker": "*", "ms": 11, "markeredgecolor": "white", "markeredgewidth": 0.5}))
    return own is not None


@styled
def score_threshold_lines(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """PQ, PQ things and PQ stuff against the segment score threshold (``score_threshold``), a line per run in its
    colour, the model's own threshold an open circle and the best (highest PQ) a star on each line."""
    from matplotlib.lines import Line2D

    have = [r for r in records if r.score_threshold]
    style, patches = styles(have, colors, records)
    pps = list(dict.fromkeys(r.postprocess for r in have))  # a line style each where several
    dash = [LINE_STYLES[pps.index(r.postprocess) % len(LINE_STYLES)] for r in have]
    handles: list[Any] = [Line2D([], [], color=p.get_facecolor(), linewidth=1.2, label=p.get_label())
                          for p in patches if not p.get_label().startswith("post-processing: ")]
    if len(pps) > 1:
        handles += [Line2D([], [], color="0.35", linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                           label=f"post-processing: {p}") for k, p in enumerate(pps)]
    fig, axes, stacked = _panels()
    ends: list[float] = []
    own_known = False
    for ax, (title, sfx, _) in zip(axes, PQ_GROUPS):
        for k, r in enumerate(have):
            st = r.score_threshold or {}
            t, y = np.array(st["thresholds"], float), np.array(st["PQ" + sfx], float)
            color = style[k]["color"]
            ax.plot(t, y, color=color, linewidth=1.2, linestyle=dash[k], zorder=2)
            ends += [float(v) for v in y if not np.isnan(v)]
            own_known = _threshold_marks(ax, t, y, st, color) or own_known
        ax.set_title(f"{title} (PQ{sfx})")
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    low, high = (min(ends), max(ends)) if ends else (0.0, 100.0)
    pad = max(1.0, 0.08 * (high - low))
    axes[0].set_ylim(max(0.0, low - pad), min(100.0, high + pad))
    for ax in axes if stacked else axes[:1]:
        ax.set_ylabel("PQ (0-100)")
    fig.supxlabel("score threshold (the segments scoring below it removed)")
    fig.suptitle(plot_title(records, "PQ against the segment score threshold"))
    grey = "0.35"
    if own_known:
        handles.append(Line2D([], [], color=grey, marker="o", markerfacecolor="white", linestyle="none",
                              label="the model's own threshold"))
    handles.append(Line2D([], [], color=grey, marker="*", ms=9, linestyle="none", label="best PQ on these images"))
    said = ["the model's own threshold unknown (a run of panbench score), not marked: "
            + ", ".join(short_label(r, records) for r in have if not (r.score_threshold or {}).get("own"))
            if any(not (r.score_threshold or {}).get("own") for r in have) else "",
            by_key("score_threshold").note, _left_out(records, "score_threshold")]
    legend_below(fig, handles, "; ".join(s for s in said if s))
    footnote(fig, note)
    return plot_parts.save(fig, out / "pq_score_threshold.png")


def _reliability_panel(ax: Any, hist: Any, bins: dict[str, Any], color: Any) -> None:
    """One run's reliability diagram on ``ax`` (fraction of TPs per bin against the bin's mean score, the diagonal)
    and its segments per bin as bars on ``hist``."""
    edges = np.array(bins["edges"], float)
    count = np.array(bins["count"], float)
    full = [k for k, n in enumerate(count) if n and bins["score"][k] is not None]
    ax.plot([0, 1], [0, 1], color="0.45", linestyle="--", linewidth=0.8, zorder=1)
    x = np.array([bins["score"][k] for k in full], float)
    y = np.array([bins["accuracy"][k] for k in full], float)
    ax.plot(x, y, color=color, marker="o", ms=4, linewidth=1.2, zorder=3)
    ax.set(xlim=(0, 1), ylim=(0, 1), xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])
    ax.set_aspect("auto")
    ax.grid(alpha=0.3)
    hist.bar(edges[:-1], count, np.diff(edges), align="edge", color=color, edgecolor="white", linewidth=0.5)
    hist.set(xlim=(0, 1), ylim=(0, max(1.0, float(count.max()) * 1.15)), xticks=[0, 0.5, 1])
    hist.set_xlabel("segment score")


def _ece_words(c: dict[str, Any]) -> str:
    """ECE of all segments with its interval where the record has one, then things' and stuff's."""
    def v(key: str) -> str:
        return "-" if c.get(key) is None else f"{c[key]:.3f}"

    lo, hi = ((c.get(end) or {}).get("ece") for end in ("low", "high"))
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"ECE {v('ece')}{ci}\nthings {v('ece_th')}, stuff {v('ece_st')}"


def _title_of(name: str, words: str) -> Callable[[int], str]:
    """A reliability panel's title at a line width in characters: the run's name over its ECE (``words``)."""
    return lambda chars: f"{fold_label(name, chars)}\n{wrap(words, chars)}"


RELIABILITY_PANEL_IN = 1.7  # the least width of a run's reliability panel: as many a row as fit the figure's width


@styled
def reliability_diagrams(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """A reliability diagram per run (``calibration``): the fraction of segments that match (TP) per score bin
    against the bin's mean score, the diagonal a calibrated model follows, the segments per bin as bars under it,
    the run's ECE in its panel's title."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    have = [r for r in records if r.calibration]
    style, _ = styles(have, colors, records)
    ncols = max(1, min(len(have), int(current_width() // RELIABILITY_PANEL_IN)))
    nrows = -(-len(have) // ncols)
    panel = current_width() / ncols
    fig, axes = new_figure(nrows * min(3.2, max(2.4, 1.25 * panel)), 2 * nrows, ncols, squeeze=False,
                           gridspec_kw={"height_ratios": [3, 1] * nrows})
    titles = []
    for k in range(nrows * ncols):
        ax, hist = axes[2 * (k // ncols), k % ncols], axes[2 * (k // ncols) + 1, k % ncols]
        if k >= len(have):
            ax.set_axis_off()
            hist.set_axis_off()
            continue
        c = have[k].calibration or {}
        _reliability_panel(ax, hist, c["bins"], style[k]["color"])
        titles.append((ax, _title_of(short_label(have[k], records), _ece_words(c))))
        ax.tick_params(labelbottom=False)
        if k % ncols == 0:
            ax.set_ylabel("fraction TP")  # the bars under it unlabelled: the legend names them, a label would meet this
    fig.suptitle(plot_title(records, f"reliability of the segment scores ({(have[0].calibration or {})['n_bins']} "
                                     "bins)"))
    handles = [Line2D([], [], color="0.3", marker="o", ms=4, label="fraction of a bin's segments that match (TP), "
                      "at the bin's mean score"),
               Line2D([], [], color="0.45", linestyle="--", label="calibrated: fraction TP = score"),
               Patch(color="0.6", label="segments per bin")]
    said = ["ECE: the segments' mean |fraction TP - score| over the bins, weighted by their segments; 0 is "
            "calibrated", _left_out(records, "calibration")]
    legend_below(fig, handles, "; ".join(s for s in said if s))
    footnote(fig, note)
    titles_apart(fig, titles, 28)
    return plot_parts.save(fig, out / "reliability.png")


# (the record field a plot needs, its file name, the function that draws it)
PLOTS = (("ci", "pq_intervals.png", pq_intervals), ("by_size", "pq_by_size.png", plot_pq_by_size),
         ("errors", "errors.png", error_bars), ("score_threshold", "pq_score_threshold.png", score_threshold_lines),
         ("calibration", "reliability.png", reliability_diagrams))


def why_none(key: str, records: list[RunRecord]) -> str:
    """Why a plot of :data:`PLOTS` is skipped when no record of ``records`` has its field ``key``: the segment scores'
    plots by what ran the runs' fusion (:func:`~panbench.analysis.scores.no_score`), the others for want of the
    analysis."""
    if key in ("score_threshold", "calibration"):
        return f"{no_score(r.fusion for r in records)}; or records written before segment scores"
    return "records written before schema 2, or runs without the analysis"
