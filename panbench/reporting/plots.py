"""Plots of result records (matplotlib, under ``results/plots/<dataset>/``; docs/reporting.md).

Over 600 lines: every figure of ``plot`` and ``report`` (each one function, with its panels' helpers beside it) and
the styles, notes and file handling they share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analyses import by_key
from panbench.analysis.breakdown import ERROR_TYPES
from panbench.analysis.scores import NO_SCORE
from panbench.announce import steps
from panbench.pq.sums import PQ_GROUPS
from panbench.records.rows import (
    SHARED_SPEED_MARK,
    SHARED_SPEED_NOTE,
    gflops,
    mark_shared_speed,
    measured_speed,
    speed_shared,
)
from panbench.records.schema import RunRecord
from panbench.reporting.colors import ERROR_COLORS, GRID_METRICS, Colors, model_colors
from panbench.reporting.figure_files import figure_path, listed, replace_figures, retire_folder, write_figure
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
    plt,
    styled,
    under_axes,
    wrap,
)
from panbench.reporting.grids import Grid
from panbench.reporting.labels import (
    SIZES,
    absent,
    dataset_key,
    images,
    missing_why,
    model_label,
    ranked_records,
    short_label,
)
from panbench.reporting.pairing import isthing_of
from panbench.reporting.placing import keep_inside, place_labels, value_labels

HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def styles(records: list[RunRecord], colors: Colors | None = None, context: list[RunRecord] | None = None
           ) -> tuple[list[dict[str, Any]], list[Any]]:
    """Bar styles (colour by model, hatch by post-processing) and legend handles naming each once."""
    from matplotlib.patches import Patch

    context = context or records
    colors = colors or model_colors(None, context)
    labels = [model_label(r, context) for r in records]  # other settings or data: another colour
    models = list(dict.fromkeys(labels))
    pps = list(dict.fromkeys(r.postprocess for r in records))
    out = [{"color": colors[m], "edgecolor": "white" if len(pps) == 1 else "black",
            "linewidth": 0.5, "hatch": HATCHES[pps.index(r.postprocess) % len(HATCHES)]}
           for r, m in zip(records, labels)]
    fw = {m: r.framework for r, m in zip(records, labels)}
    mixed = len(set(fw.values())) > 1  # an mmdet and a transformers model side by side: say which is which
    handles = [Patch(color=colors[m], label=f"{m} ({fw[m]})" if mixed else m) for m in models]
    if len(pps) > 1:
        handles += [Patch(facecolor="white", edgecolor="black", hatch=HATCHES[k % len(HATCHES)],
                          label=f"post-processing: {p}") for k, p in enumerate(pps)]
    return out, handles


def save(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Save ``fig`` at ``path`` in the figure format in effect, its texts fitted first, and close it; the path."""
    fit_texts(fig)
    path = write_figure(fig, path, dpi)
    plt().close(fig)
    return path


def plot_title(records: list[RunRecord], what: str) -> str:
    """A figure's title: the dataset's name, then what the figure shows."""
    return f"{', '.join(dict.fromkeys(r.dataset for r in records))}: {what}"


def image_set_note(group: list[RunRecord], records: list[RunRecord]) -> str:
    """The footnote naming the image set of ``group`` where ``records`` hold several of its dataset; else ''."""
    name = group[0].dataset
    sets = list(dict.fromkeys(dataset_key(r) for r in records if r.dataset == name))
    return (f"image set {dataset_key(group[0])} ({images(group[0].n_images)}), one of the {len(sets)} image sets of "
            f"{name} in these results") if len(sets) > 1 else ""


@styled
def pq_bars(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """Grouped bars: PQ, SQ, RQ for All / Things / Stuff, one bar per run."""
    fig, axes = new_figure(axes_height(0.4), 1, 3, sharey=True)
    width = 0.8 / max(len(records), 1)
    style, handles = styles(records, colors)
    for ax, (title, sfx, _) in zip(axes, PQ_GROUPS):
        for k, r in enumerate(records):
            vals = [r.metrics.get(m + sfx) for m in ("PQ", "SQ", "RQ")]  # one a record lacks: no bar, no label
            bars = ax.bar(np.arange(3) + k * width, [np.nan if v is None else v for v in vals], width, **style[k])
            value_labels(ax, bars, ["" if v is None else f"{v:.1f}" for v in vals])
        ax.set_xticks(np.arange(3) + width * (len(records) - 1) / 2, ["PQ", "SQ", "RQ"])
        ax.set_title(title)
        ax.set(ylim=(0, 112), yticks=range(0, 101, 20))  # room for the value labels above a bar at 100
    axes[0].set_ylabel("score (0-100)")
    fig.suptitle(plot_title(records, "PQ / SQ / RQ"))
    footnote(fig, note)
    legend_below(fig, handles)
    return save(fig, out / "pq_bars.png")


def speed_points(records: list[RunRecord], value: Callable[[RunRecord], float | None] = measured_speed
                 ) -> tuple[list[tuple[RunRecord, float]], list[str]]:
    """The records with a ``value`` (a measured speed), each with it, and the labels of the runs without one."""
    points = [(r, v) for r in records if (v := value(r)) is not None]
    return points, [short_label(r, records) for r in records if value(r) is None]


LOG_SPAN = 10.0  # the fastest run more than this many times the slowest: a logarithmic speed axis


@styled
def pq_vs_speed(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """PQ against images/s: named points, the Pareto front dashed, the runs without a measured speed named under it."""
    from matplotlib.lines import Line2D

    fig, ax = new_figure(axes_height(0.55, 2.4, 4.0))
    points, missing = speed_points(records)
    color = _colors(records, colors)
    ax.set_ylabel("PQ")
    ax.set_title(plot_title(records, "PQ against speed"))
    footnote(fig, note)
    left_out = "not measured, left out: " + ", ".join(missing) if missing else ""
    if not points:  # no axis to read: say why
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no measured speed", ha="center", va="center", transform=ax.transAxes)
        legend_below(fig, [Line2D([], [], linestyle="none", label="")], left_out)
        return save(fig, out / "pq_vs_speed.png")
    xy = [(x, r.metrics["PQ"]) for r, x in points]
    for (r, _), p in zip(points, xy):
        ax.scatter(*p, s=50, color=color[id(r)], edgecolor="white", linewidth=0.5, zorder=3)
    front = ax.plot(*zip(*staircase(pareto_front(xy))), linestyle="--", color="0.45", linewidth=1, zorder=2)
    xs, ys = zip(*xy)
    _speed_axis(ax, xs)
    ax.set_ylim(max(0.0, min(ys) - 5), min(100.0, max(ys) + 5) + 2)
    names = [_name(ax, wrap(mark_shared_speed(short_label(r, records), r), 32), p) for (r, _), p in zip(points, xy)]
    shared = f"{SHARED_SPEED_MARK}: speed {SHARED_SPEED_NOTE}" if any(speed_shared(r) for r, _ in points) else ""
    handles = [Line2D([], [], linestyle="--", color="0.45", label="Pareto front: no other run has a higher PQ and "
                      "more images/s")]
    devices = list(dict.fromkeys(r.device for r, _ in points))  # where the speeds were measured
    measured = (f"measured on {devices[0]}" if len(devices) == 1 else
                "measured on: " + "; ".join(f"{short_label(r, records)}: {r.device}" for r, _ in points))
    legend_below(fig, handles, "\n".join(n for n in (measured, left_out, shared) if n))
    place_labels(ax, names, xy, tuple(front))
    return save(fig, out / "pq_vs_speed.png")


def _colors(records: list[RunRecord], colors: Colors | None) -> dict[int, Any]:
    """Each run's colour (by ``id``), as its bars have it (:func:`styles`)."""
    return {id(r): st["color"] for r, st in zip(records, styles(records, colors)[0])}


def _name(ax: Any, text: str, xy: tuple[float, float]) -> Any:
    """A run's name beside its point, for :func:`~.placing.place_labels` to move."""
    return ax.annotate(text, xy, xytext=(6, 0), textcoords="offset points", fontsize=MIN_TEXT_PT, va="center",
                       in_layout=False, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points (speed, PQ) that no other point beats in both, by speed."""
    unique = sorted(set(points))
    return [p for p in unique if not any(q != p and q[0] >= p[0] and q[1] >= p[1] for q in unique)]


def staircase(front: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The front's points joined by steps (down at each point's speed, then across to the next)."""
    return [front[0]] + [p for a, b in zip(front, front[1:]) for p in ((a[0], b[1]), b)]


def _speed_axis(ax: Any, xs: tuple[float, ...]) -> None:
    """The images/s axis: logarithmic where the speeds span more than :data:`LOG_SPAN` times, else linear from 0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if max(xs) > LOG_SPAN * min(xs):
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.6, 1.6 * max(xs))
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("images / s (log scale)")
    else:
        ax.set_xlim(0, 1.25 * max(xs))
        ax.set_xlabel("images / s")
    ax.grid(alpha=0.3)


@styled
def pq_vs_gflops(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """PQ against GFLOPs per image, each point named; a run without counted GFLOPs left out and named under it."""
    fig, ax = new_figure(axes_height(0.55, 2.4, 4.0))
    points, missing = speed_points(records, gflops)
    color = _colors(records, colors)
    xy = [(x, r.metrics["PQ"]) for r, x in points]
    for (r, _), p in zip(points, xy):
        ax.scatter(*p, s=60, color=color[id(r)])
    labels = [_name(ax, short_label(r, records), p) for (r, _), p in zip(points, xy)]
    ax.set_ylabel("PQ")
    ax.set_title(plot_title(records, "PQ against GFLOPs per image"))
    footnote(fig, note)
    if points:
        ax.set_xlim(0, 1.3 * max(x for _, x in points))
        ax.grid(alpha=0.3)
    ax.set_xlabel("GFLOPs per image (1 multiply-add = 1 FLOP)"
                  + ("\nnot counted, left out: " + ", ".join(missing) if missing else ""))
    place_labels(ax, labels, xy)
    return save(fig, out / "pq_vs_gflops.png")


def ranked_classes(records: list[RunRecord], top: int = 15) -> tuple[list[str], Any, Any]:
    """Category ids, the runs' PQ table (NaN: absent) and the ``top`` classes where the runs differ most."""
    cids = sorted({c for r in records for c in r.per_class}, key=lambda c: int(c) if c.isdigit() else c)
    table = np.array([[np.nan if (v := r.per_class.get(c)) is None or absent(v) else v["PQ"] for c in cids]
                      for r in records], float)
    ranked = np.flatnonzero(~np.isnan(table).any(0))
    spread = (table.max(0) - table.min(0) if len(records) > 1 else table[0])[ranked]
    return cids, table, ranked[np.argsort(-spread, kind="stable")[:top]]


@styled
def per_class_differences(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "",
                          top: int = 15) -> Path:
    """Per-class PQ of the ``top`` classes where the runs differ most, things first, then stuff."""
    names = {k: v for r in records for k, v in r.provenance.get("category_names", {}).items()}
    cids, table, ranked = ranked_classes(records, top)
    n_ranked = int((~np.isnan(table).any(0)).sum())
    kinds: dict[str, bool] = {}  # each class id a thing (True) or stuff (False), from a run's annotation file
    for r in records:
        if (flags := isthing_of(r, len(r.per_class))) is not None:
            kinds.update({c: f for c, f in zip(r.per_class, flags) if c not in kinds})
    groups = [(what, [i for i in ranked if kinds.get(cids[i]) is flag]) for what, flag in
              (("things", True), ("stuff", False), ("thing or stuff unknown", None))]
    groups = [(what, g) for what, g in groups if g]  # an empty group is not drawn
    order = [i for _, g in groups for i in g]
    fig, ax = new_figure(axes_height(0.42, 2.2, 3.6))
    width = 0.8 / max(len(records), 1)
    style, handles = styles(records, colors)
    for k in range(len(records)):
        ax.bar(np.arange(len(order)) + k * width, table[k, order], width, **style[k])
    centre = width * (len(records) - 1) / 2
    ax.set_xticks(np.arange(len(order)) + centre, [names.get(cids[i], cids[i]) for i in order], rotation=45,
                  ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6 + centre, len(order) - 0.4 + centre)
    start = 0
    for what, g in groups if len(groups) > 1 or groups and groups[0][0] != "thing or stuff unknown" else ():
        if start:  # a line between two groups
            ax.axvline(start - 0.5 + centre, color="0.35", linestyle=":", linewidth=0.8)
        ax.text(start + (len(g) - 1) / 2 + centre, 103, what, ha="center", va="bottom", fontsize=MIN_TEXT_PT + 1,
                color="0.2")
        start += len(g)
    ax.set_ylabel("PQ")
    ax.set(ylim=(0, 112), yticks=range(0, 101, 20))  # room for the groups' names over bars at 100
    chosen = "where the runs differ most" if len(records) > 1 else "of highest PQ"  # the title says which classes
    which = (f"the {len(order)} of {n_ranked} classes {chosen}" if len(order) < n_ranked else
             f"all {len(order)} classes, " + ("most different first" if len(records) > 1 else "highest first"))
    ax.set_title(plot_title(records, f"per-class PQ, {which}"))
    footnote(fig, note)
    legend_below(fig, handles, only_common_classes(table, [names.get(c, c) for c in cids]))
    return save(fig, out / "per_class_pq.png")


def only_common_classes(table: Any, names: list[str]) -> str:
    """The note under the per-class plot naming the classes left out for lacking a PQ in some run; '' for none."""
    present = ~np.isnan(table)
    left = [n for n, some, every in zip(names, present.any(0), present.all(0)) if some and not every]
    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    return (f"only classes present in every run are compared ({int(present.all(0).sum())} of "
            f"{int(present.any(0).sum())}); left out, absent from some run: {shown}") if left else ""


def plot_dir(results_dir: Path, dataset: str) -> Path:
    """Where the plots of one dataset (a folder name of :func:`plot_groups`) go: ``RESULTS/plots/<dataset>/``."""
    return Path(results_dir) / "plots" / dataset


def plot_groups(records: list[RunRecord]) -> list[tuple[str, list[RunRecord]]]:
    """The clean runs grouped as the table groups them, each with its plot folder's name (docs/reporting.md)."""
    records = ranked_records([r for r in records if not r.corruption])  # each group as the table ranks it
    out: list[tuple[str, list[RunRecord]]] = []
    for key in dict.fromkeys(dataset_key(r) for r in records):
        group = [r for r in records if dataset_key(r) == key]
        name = group[0].dataset
        other = key.replace(" ", "-") if key != name else f"{name}-no-fingerprint"
        out.append((other if any(g[0].dataset == name for _, g in out) else name, group))
    return out


def retire_plot_folders(results_dir: Path, groups: list[tuple[str, list[RunRecord]]],
                        every: list[RunRecord] | None = None, under: str = "plots") -> list[str]:
    """Remove the figures panbench wrote in the plot folders of datasets no group is drawn in now; a line per folder."""
    root, notes = Path(results_dir) / under, []
    drawn, datasets = {name for name, _ in groups}, {g[0].dataset for _, g in groups}
    known = None if every is None else {r.dataset for r in every if not r.corruption}
    corrupted = set() if every is None else {r.dataset for r in every if r.corruption}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        shown = listed(folder).get("dataset")
        gone = known is not None and isinstance(shown, str) and shown not in known
        if folder.is_dir() and folder.name not in drawn and (shown in datasets or gone):
            removed = retire_folder(folder)
            if removed:
                why = (f"its runs are corrupted ones, drawn in {root.name}/robustness/" if shown in corrupted else
                       "no run of its dataset is left" if gone else "its runs are drawn in another folder now")
                notes.append(f"{folder}: removed the {len(removed)} figure(s) panbench wrote there ({why})")
    return notes


def make_plots(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "", *,
               grids: list[Grid] | tuple[Grid, ...] = ()) -> tuple[list[Path], list[str]]:
    """All plots of ``records`` under ``out`` (with a :func:`grid_lines` of each of ``grids`` that has a setting
    among them), and a line per plot skipped, failed (:data:`FAILED`) or removed."""
    records = ranked_records(records)  # as the table ranks them: the best PQ first
    colors = colors or model_colors(None, records)
    speed = any(measured_speed(r) is not None for r in records)
    drawn: list[tuple[str, Callable[[list[RunRecord], Path, Colors, str], Path]]] = [
        ("pq_bars.png", pq_bars), ("pq_vs_speed.png", pq_vs_speed), ("per_class_pq.png", per_class_differences),
        ("pq_vs_gflops.png", pq_vs_gflops)]
    drawn = [d for d, wanted in zip(drawn, (True, speed, True, any(r.flops for r in records))) if wanted]
    paths, notes = [], []
    if not speed:
        notes.append(f"{figure_path(out / 'pq_vs_speed.png')}: skipped, no run has a measured speed (a `score "
                     "--name` run has none, nor has an eval run of too few images to time)")
    for key, name, analysis_plot in PLOTS:
        if any(getattr(r, key) for r in records):
            drawn.append((name, analysis_plot))
        else:
            why = missing_why(records, key, WHY_NONE.get(key, "records written before schema 2, or runs without "
                                                          "the analysis"))
            notes.append(f"{figure_path(out / name)}: skipped, no record has `{key}` ({'; '.join(w for _, w in why)})")
    drawn += grid_plots(grids, records)
    for name, fn in steps(f"drawing the figures of {out}", drawn):
        try:
            paths.append(fn(records, out, colors, note))
        except Exception as e:  # one broken plot must not cost the others (nor the report its other sections)
            notes.append(f"{FAILED} {figure_path(out / name)}: not drawn ({type(e).__name__}: {e}); the other plots "
                         "are; please report it with the records")
    removed = replace_figures(out, paths, dataset=records[0].dataset, image_set=dataset_key(records[0]))
    if removed:
        notes.append(f"{out}: removed {', '.join(p.name for p in removed)} {REMOVED}")
    return paths, notes


FAILED = "error:"
REMOVED = "(written there by an earlier run, not by this one)"  # ends the note of the figures make_plots removed


def _left_out(records: list[RunRecord], key: str) -> str:
    return "; ".join(f"{why}, left out: {', '.join(short_label(r, records) for r in missing)}"
                     for missing, why in missing_why(records, key, f"no `{key}` in the record"))


SIDE_BY_SIDE = 6.0  # inches: narrower figures stack the interval panels (PQ, PQ_th, PQ_st) one under the other


@styled
def pq_intervals(records: list[RunRecord], out: Path, colors: Colors | None = None, note: str = "") -> Path:
    """PQ, PQ_th and PQ_st of each run with its 95% interval: three panels, stacked below :data:`SIDE_BY_SIDE`."""
    have = [r for r in records if r.ci]
    stacked = current_width() < SIDE_BY_SIDE
    height = 0.9 + 3 * (0.45 + 0.3 * len(have)) if stacked else 1.1 + 0.4 * len(have)
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
        ax.set_yticks(y, [wrap(short_label(r, records), 24) for r in have])
    fig.supxlabel("PQ points; bars: 95% image-bootstrap interval")
    fig.suptitle(plot_title(records, "PQ with its 95% confidence interval"))
    if left := _left_out(records, "ci"):
        under_axes(fig).append(note_under(fig, left, "center"))
    footnote(fig, note)
    lay_out(fig)
    fit_texts(fig)
    keep_inside(values)
    return save(fig, out / "pq_intervals.png")


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
    return save(fig, out / "pq_by_size.png")


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
    ax.set_xticks(np.arange(len(have)), [wrap(short_label(r, records), 24) for r in have],
                  rotation=0 if upright else 30, ha="center" if upright else "right", rotation_mode="anchor")
    ax.set_ylim(0, 1.12 * max(float(bottom.max()) if len(bottom) else 0.0, 1.0))
    ax.set_ylabel("errors (FP + FN count)")
    ax.set_title(plot_title(records, "errors by type (count)"))
    footnote(fig, note)
    handles = [Patch(color=ERROR_COLORS[t], label=t) for t in ERROR_TYPES]
    legend_below(fig, handles, _left_out(records, "errors"))
    return save(fig, out / "errors.png")


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
    return save(fig, out / "pq_score_threshold.png")


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
    for k in range(nrows * ncols):
        ax, hist = axes[2 * (k // ncols), k % ncols], axes[2 * (k // ncols) + 1, k % ncols]
        if k >= len(have):
            ax.set_axis_off()
            hist.set_axis_off()
            continue
        c = have[k].calibration or {}
        _reliability_panel(ax, hist, c["bins"], style[k]["color"])
        ax.set_title(f"{wrap(short_label(have[k], records), 28)}\n{_ece_words(c)}")
        ax.tick_params(labelbottom=False)
        if k % ncols == 0:
            ax.set_ylabel("fraction TP")
            hist.set_ylabel("segments")
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
    return save(fig, out / "reliability.png")


# (the record field a plot needs, its file name, the function that draws it)
PLOTS = (("ci", "pq_intervals.png", pq_intervals), ("by_size", "pq_by_size.png", plot_pq_by_size),
         ("errors", "errors.png", error_bars), ("score_threshold", "pq_score_threshold.png", score_threshold_lines),
         ("calibration", "reliability.png", reliability_diagrams))
#: why a plot of :data:`PLOTS` is skipped when no record has its field (else: no analysis or an older record)
WHY_NONE = {"score_threshold": f"{NO_SCORE}; or records written before segment scores",
            "calibration": f"{NO_SCORE}; or records written before segment scores"}


def grid_name(g: Grid) -> str:
    """The file name of a grid's figure: ``grid_<model>_<key>+<key>.png``."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in g.doc["model"])
    return f"grid_{safe}_{'+'.join(g.keys)}.png"


def grid_plots(grids: list[Grid] | tuple[Grid, ...], records: list[RunRecord]
               ) -> list[tuple[str, Callable[[list[RunRecord], Path, Colors, str], Path]]]:
    """The figures of the ``grids`` with a setting among ``records`` and a key of several values, each file's last."""
    paths = {r.record for r in records if r.record}
    mine = {grid_name(g): g for g in grids if g.varied() and any(s.get("record") in paths for s in g.settings)}
    return [(n, lambda _r, out, _c, note, g=g: grid_lines(g, out, note)) for n, g in mine.items()]  # type: ignore


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _best_note(g: Grid, best: int | None, starred: bool) -> str:
    """The note on the grid's best setting: where it is when no panel holds it, and what it is worth."""
    if best is None:
        return ""
    where = "" if starred else (f"the best, {g.settings[best]['label']} (PQ "
                                f"{(g.settings[best].get('metrics') or {}).get('PQ', float('nan')):.2f}), lies in "
                                "no panel; ")
    return f"{where}best: {g.doc.get('best_note') or ''}"


def _grid_panel(ax: Any, g: Grid, key: str, anchor: int | None) -> tuple[list[float], bool]:
    """One panel of :func:`grid_lines`: each metric against ``key``'s values, the other keys at setting ``anchor``'s
    (a rule that reads no such key goes with any value); the values drawn and whether the best is among them."""
    default, best = g.at("default"), g.at("best")
    others = [o for o in g.keys if o != key]
    having = [k for k in range(len(g.settings)) if g.value(k, key) is not None]
    if anchor is not None and anchor not in having:  # its rule reads no such key: the best setting that has it
        anchor = max(having, key=lambda k: (g.settings[k].get("metrics") or {}).get("PQ", float("-inf")))

    def along(k: int, o: str) -> bool:  # a key a setting (or the anchor) lacks goes with any value of it
        theirs = None if anchor is None else g.value(anchor, o)
        return g.value(k, o) is None or theirs is None or _same(g.value(k, o), theirs)

    ks = [k for k in having if anchor is None or all(along(k, o) for o in others)]
    values = [g.value(k, key) for k in ks]
    numeric = _numeric(values)
    given = [str(v) for v in (g.doc.get("grid") or {}).get(key, [])]
    if numeric or given:  # by value along a number axis; else in the order the grid gives them, evenly spaced
        order = sorted(range(len(ks)), key=lambda i: values[i] if numeric else
                       (given.index(str(values[i])) if str(values[i]) in given else len(given)))
        ks, values = [ks[i] for i in order], [values[i] for i in order]
    xs = np.array(values if numeric else range(len(ks)), float)
    ends: list[float] = []
    for metric, (color, marker, style) in GRID_METRICS.items():
        y = np.array([(g.settings[k].get("metrics") or {}).get(metric, np.nan) for k in ks], float)
        lo, hi = (np.array([np.nan if (r := g.records[k]) is None else
                            (((r.ci or {}).get(metric)) or (np.nan, np.nan))[end] for k in ks], float)
                  for end in (0, 1))
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, linewidth=0)
        ax.plot(xs, y, color=color, marker=marker, linestyle=style, ms=4, label=metric)
        ends += [v for v in (*y, *lo, *hi) if not np.isnan(v)]
        if best in ks and metric == "PQ":
            ax.plot([xs[ks.index(best)]], [y[ks.index(best)]], marker="*", ms=11, color=color, linestyle="none",
                    markeredgecolor="white", markeredgewidth=0.5, zorder=4)
    if default in ks:
        ax.axvline(xs[ks.index(default)], color="0.3", linestyle=":", linewidth=1.0, zorder=1)
    ax.set_xticks(xs, [str(v) for v in values])
    span = float(xs.max() - xs.min()) if len(xs) > 1 else 1.0
    ax.set_xlim(float(xs.min()) - 0.12 * span, float(xs.max()) + 0.12 * span)
    ax.set_xlabel(key)
    fixed = ", ".join(f"{o}={v}" for o in others if (v := None if anchor is None else g.value(anchor, o)) is not None)
    ax.set_title(key + (f" ({fixed})" if fixed else ""))
    ax.grid(alpha=0.3)
    return ends, best in ks


def _grid_legend(fig: Any, g: Grid, starred: bool) -> None:
    """The legend of :func:`grid_lines` under its panels: the metrics, the band, the marks, and the notes."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    default, best = g.at("default"), g.at("best")
    handles: list[Any] = [Line2D([], [], color=c, marker=m, linestyle=st, ms=4, label=k)  # type: ignore
                          for k, (c, m, st) in GRID_METRICS.items()]
    handles.append(Patch(color="0.5", alpha=0.35, label="95% image-bootstrap interval"))
    if default is not None:
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="the model's own setting"))
    if starred:
        handles.append(Line2D([], [], color=GRID_METRICS["PQ"][0], marker="*", ms=9, linestyle="none",
                              label="best PQ on these images"))
    held = ("the model's own setting" if default is not None else "the best setting") if len(g.keys) > 1 else ""
    said = [f"each panel holds the other keys at {held}'s values" if held else "",
            "no interval where the run has too few images" if not any(r is not None and r.ci for r in g.records)
            else "", _best_note(g, best, starred)]
    legend_below(fig, handles, "; ".join(x for x in said if x))


@styled
def grid_lines(g: Grid, out: Path, note: str = "") -> Path:
    """PQ, PQ things and PQ stuff of a grid's settings against each key it varies (a panel each, the other keys at
    the model's own values, else the best's), each with its 95% interval as a band; the model's own setting a
    dotted line, the best a star.  Panels side by side from :data:`SIDE_BY_SIDE` wide, else stacked."""
    keys, default = g.varied(), g.at("default")
    anchor = default if default is not None else g.at("best")
    stacked = current_width() < SIDE_BY_SIDE and len(keys) > 1
    height = axes_height(0.36, 1.7, 2.8)
    fig, axes = new_figure(height * (len(keys) if stacked else 1), *((len(keys), 1) if stacked else (1, len(keys))),
                           sharey=True, squeeze=False)
    ends: list[float] = []
    starred = False  # the best setting lies in some panel
    for ax, key in zip(axes.ravel(), keys):
        drawn, best_here = _grid_panel(ax, g, key, anchor)
        ends, starred = ends + drawn, starred or best_here
    low, high = (min(ends), max(ends)) if ends else (0.0, 100.0)
    pad = max(1.0, 0.08 * (high - low))
    axes[0][0].set_ylim(max(0.0, low - pad), high + pad)
    for ax in axes[:, 0] if stacked else axes[0, :1]:
        ax.set_ylabel("PQ (0-100)")
    fig.suptitle(f"{g.doc['dataset']}: {g.doc['model']}, PQ by post-processing setting ({len(g.settings)} settings "
                 "from one forward)")
    _grid_legend(fig, g, starred)
    footnote(fig, note)
    return save(fig, out / grid_name(g))
