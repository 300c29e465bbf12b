"""Plots of result records (matplotlib, under ``results/plots/<dataset>/``; docs/reporting.md).

Over 600 lines: every figure of ``plot`` and ``report`` (each one function, with its panels' helpers beside it) and
the styles, notes and file handling they share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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
from panbench.reporting import plot_parts
from panbench.reporting.analysis_plots import PLOTS, why_none
from panbench.reporting.colors import Colors, model_colors
from panbench.reporting.figure_files import figure_path, listed, replace_figures, retire_folder
from panbench.reporting.figure_style import (
    MIN_TEXT_PT,
    axes_height,
    footnote,
    legend_below,
    new_figure,
    styled,
)
from panbench.reporting.grid_plots import grid_plots
from panbench.reporting.grids import Grid
from panbench.reporting.labels import (
    absent,
    dataset_key,
    fold_label,
    missing_why,
    ranked_records,
    short_label,
)
from panbench.reporting.pairing import isthing_of
from panbench.reporting.placing import place_labels, value_labels
from panbench.reporting.plot_parts import plot_title, styles


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
    return plot_parts.save(fig, out / "pq_bars.png")


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
        return plot_parts.save(fig, out / "pq_vs_speed.png")
    xy = [(x, r.metrics["PQ"]) for r, x in points]
    for (r, _), p in zip(points, xy):
        ax.scatter(*p, s=50, color=color[id(r)], edgecolor="white", linewidth=0.5, zorder=3)
    front = ax.plot(*zip(*staircase(pareto_front(xy))), linestyle="--", color="0.45", linewidth=1, zorder=2)
    xs, ys = zip(*xy)
    _speed_axis(ax, xs)
    ax.set_ylim(max(0.0, min(ys) - 5), min(100.0, max(ys) + 5) + 2)
    names = [_name(ax, fold_label(mark_shared_speed(short_label(r, records), r), 32), p)
             for (r, _), p in zip(points, xy)]
    shared = f"{SHARED_SPEED_MARK}: speed {SHARED_SPEED_NOTE}" if any(speed_shared(r) for r, _ in points) else ""
    handles = [Line2D([], [], linestyle="--", color="0.45", label="Pareto front: no other run has a higher PQ and "
                      "more images/s")]
    devices = list(dict.fromkeys(r.device for r, _ in points))  # where the speeds were measured
    measured = (f"measured on {devices[0]}" if len(devices) == 1 else
                "measured on: " + "; ".join(f"{short_label(r, records)}: {r.device}" for r, _ in points))
    legend_below(fig, handles, "\n".join(n for n in (measured, left_out, shared) if n))
    place_labels(ax, names, xy, tuple(front))
    return plot_parts.save(fig, out / "pq_vs_speed.png")


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
    return plot_parts.save(fig, out / "pq_vs_gflops.png")


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
    return plot_parts.save(fig, out / "per_class_pq.png")


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
            why = missing_why(records, key, why_none(key, records))
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
