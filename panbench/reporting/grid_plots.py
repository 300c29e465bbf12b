"""A grid's figure (docs/eval.md, "Grids"): each setting's metrics against the values of its keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from panbench.records.schema import RunRecord
from panbench.reporting import plot_parts
from panbench.reporting.colors import GRID_METRICS, Colors
from panbench.reporting.figure_style import (
    axes_height,
    current_width,
    footnote,
    legend_below,
    new_figure,
    styled,
)
from panbench.reporting.grids import Grid
from panbench.reporting.plot_parts import SIDE_BY_SIDE


def grid_name(g: Grid) -> str:
    """The file name of a grid's figure: ``grid_<model>_<key>+<key>.png``."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in g.doc["model"])
    return f"grid_{safe}_{g.name}.png"


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
    return plot_parts.save(fig, out / grid_name(g))
