"""Where the texts inside a figure go, measured on the laid-out figure (pixels): names beside points, values on bars."""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.reporting.figure_style import MIN_TEXT_PT, wrap

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def place_labels(ax: Any, labels: list[Any], points: list[tuple[float, float]], lines: tuple[Any, ...] = ()) -> None:
    """Move each label (an annotation beside its point) to the nearest place clear of the labels placed before, the
    points and ``lines``, inside the axes where it can, else inside the figure; a label too wide goes on more lines."""
    from matplotlib.text import Text

    fig = ax.figure
    fig.canvas.draw()  # the axes' limits settled (autoscaling is lazy) and the layout done
    renderer = fig.canvas.get_renderer()
    half = 4.0 * fig.dpi / 72  # a marker's half width in pixels (a point of size 50-60)
    taken: list[Box] = [(x - half, y - half, x + half, y + half) for x, y in map(ax.transData.transform, points)]
    crossed: list[Box] = [(x - 1.5, y - 1.5, x + 1.5, y + 1.5) for line in lines for x, y in _along(line)]
    step = max((Text.get_window_extent(t, renderer).height for t in labels), default=10.0) * 72 / fig.dpi + 1
    # right of the point, then a line further up or down each time; then the same on the left
    spots = [(dx, dy, ha) for dx, ha in ((6.0, "left"), (-6.0, "right")) for k in range(12)
             for dy in ((0.0,) if k == 0 else (k * step, -k * step))]
    shown = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels(), *fig.legends,
             *fig.texts]  # what a label placed outside the axes must not cover either
    others: list[Box] = [(b.x0, b.y0, b.x1, b.y1) for t in shown
                         if t.get_visible() and (b := t.get_window_extent(renderer))]
    areas: tuple[tuple[list[Box], Any], ...] = ((crossed, ax.get_window_extent(renderer)),
                                               ([], ax.get_window_extent(renderer)), (others, fig.bbox))
    for text in labels:
        name = text.get_text()
        chars = max(len(line) for line in name.split("\n"))
        while not _place(text, spots, taken, areas, renderer) and chars > 6:  # too wide for any place: more lines
            chars -= 2
            text.set_text(wrap(name, chars, False))
        if text.arrow_patch is not None:  # the line to the point, where the label left its side
            text.arrow_patch.set_visible(abs(text.xyann[1]) > step / 2)
        b = _box(text, renderer)
        taken.append((b.x0, b.y0, b.x1, b.y1))


def _place(text: Any, spots: list[tuple[float, float, str]], taken: list[Box],
           areas: tuple[tuple[list[Box], Any], ...], renderer: Any) -> bool:
    """Put ``text`` at the first free spot of the areas, in order, else where it covers least; whether one was found."""
    if any(any(_free(b := _move(text, sp, renderer), taken + clear) and _within(b, area) for sp in spots)
           for clear, area in areas):
        return True
    others, page = areas[-1]
    fits = [sp for sp in spots if _within(_move(text, sp, renderer), page)]
    _move(text, min(fits, key=lambda sp: _covered(_move(text, sp, renderer), taken + others)) if fits else spots[0],
          renderer)
    return bool(fits)


def _box(text: Any, renderer: Any) -> Any:
    """The text's own box (an annotation's extent also spans its line to the point)."""
    from matplotlib.text import Text

    text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def _move(text: Any, spot: tuple[float, float, str], renderer: Any) -> Any:
    text.xyann = spot[:2]
    text.set_horizontalalignment(spot[2])
    return _box(text, renderer)


def _free(b: Any, boxes: list[Box]) -> bool:
    return not any(b.x0 < x1 and x0 < b.x1 and b.y0 < y1 and y0 < b.y1 for x0, y0, x1, y1 in boxes)


def _covered(b: Any, boxes: list[Box]) -> float:
    return sum(max(0.0, min(b.x1, x1) - max(b.x0, x0)) * max(0.0, min(b.y1, y1) - max(b.y0, y0))
               for x0, y0, x1, y1 in boxes)


def _within(b: Any, area: Any) -> bool:
    return bool(area.x0 <= b.x0 and b.x1 <= area.x1 and area.y0 <= b.y0 and b.y1 <= area.y1)


def _along(line: Any, every: float = 3.0) -> list[tuple[float, float]]:
    """Points every ``every`` pixels along a drawn line (its data through its transform)."""
    xy = line.get_transform().transform(line.get_xydata())
    out = []
    for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:]):
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) / every))
        out += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(n + 1)]
    return out


def value_labels(ax: Any, bars: Any, labels: list[str]) -> None:
    """``labels`` on the bars, level where they fit, else upright; none on bars narrower than a line of text."""
    fig = ax.figure
    span = float(np.diff(ax.get_xlim())[0]) or 1.0
    points = bars[0].get_width() / span * ax.get_position().width * fig.get_figwidth() * 72 if len(bars) else 0.0
    if points < 1.2 * MIN_TEXT_PT:
        return
    level = points >= 0.62 * MIN_TEXT_PT * max((len(t) for t in labels), default=0) + 2  # a digit: ~0.55 em
    ax.bar_label(bars, labels=labels, fontsize=MIN_TEXT_PT, **({"padding": 1} if level else
                                                                {"rotation": 90, "padding": 2}))


def keep_inside(texts: list[Any]) -> None:
    """Move each annotation sideways just enough that it lies inside its axes."""
    for t in texts:
        fig, ax = t.figure, t.axes
        renderer = fig.canvas.get_renderer()
        box, inside = _box(t, renderer), ax.get_window_extent(renderer)
        shift = max(0.0, inside.x0 - box.x0) - max(0.0, box.x1 - inside.x1)
        if shift:
            t.xyann = (t.xyann[0] + shift * 72 / fig.dpi, t.xyann[1])
