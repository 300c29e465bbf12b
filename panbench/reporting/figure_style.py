"""The one look of every figure (docs/reporting.md): width, style and layout.  Standard library only at import: the
command line's options read :data:`WIDTHS` and :func:`figure_inches`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

WIDTHS = {"single": 3.5, "double": 7.2}  # inches: a journal's column and its full text width (IEEE, Elsevier)
DEFAULT_WIDTH = "double"
WIDTH_LIMITS = (2.0, 30.0)  # inches a --figure-width INCHES may take
MIN_TEXT_PT = 7.0  # the smallest text of any figure (a caption's size in print)
TITLE_PT = 8.0  # every title: a figure's and each panel's
#: matplotlib's rc settings of every figure (:func:`styled`)
FIGURE_STYLE: Any = {
    "font.size": 8.0, "axes.titlesize": TITLE_PT, "figure.titlesize": TITLE_PT, "axes.labelsize": 8.0,
    "figure.labelsize": 8.0, "xtick.labelsize": MIN_TEXT_PT, "ytick.labelsize": MIN_TEXT_PT,
    "legend.fontsize": MIN_TEXT_PT, "legend.title_fontsize": MIN_TEXT_PT, "axes.titleweight": "normal",
    "figure.titleweight": "normal", "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "lines.linewidth": 1.0, "hatch.linewidth": 0.6, "figure.constrained_layout.h_pad": 0.05,
    "figure.constrained_layout.w_pad": 0.05, "savefig.bbox": None, "savefig.pad_inches": 0.0,
}

_WIDTH: ContextVar[float | None] = ContextVar("figure_width", default=None)
Drawing = TypeVar("Drawing", bound=Callable[..., Any])  # a function that draws a figure


def figure_inches(value: str | float | None) -> float:
    """The width ``value`` names, in inches: ``single``, ``double``, a number within :data:`WIDTH_LIMITS` or None."""
    if value is None:
        return WIDTHS[DEFAULT_WIDTH]
    if isinstance(value, str) and value.strip().lower() in WIDTHS:
        return WIDTHS[value.strip().lower()]
    try:
        inches = float(value)
    except (TypeError, ValueError):
        inches = float("nan")
    low, high = WIDTH_LIMITS
    if not low <= inches <= high:  # nan and infinities too
        raise ValueError(f"must be single ({WIDTHS['single']} in), double ({WIDTHS['double']} in) or a width in "
                         f"inches from {low:g} to {high:g}, got {value}")
    return inches


@contextmanager
def figure_width(value: str | float | None) -> Iterator[None]:
    """Within it, every figure is ``value`` wide (:func:`figure_inches`)."""
    token = _WIDTH.set(figure_inches(value))
    try:
        yield
    finally:
        _WIDTH.reset(token)


def current_width() -> float:
    """The width of the figures drawn now, in inches (:func:`figure_width`; default :data:`DEFAULT_WIDTH`)."""
    return _WIDTH.get() or WIDTHS[DEFAULT_WIDTH]


def styled(draw: Drawing) -> Drawing:
    """``draw`` run with :data:`FIGURE_STYLE` in effect."""

    @functools.wraps(draw)
    def run(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(FIGURE_STYLE):
            return draw(*args, **kwargs)

    return run  # type: ignore[return-value]


def plt() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrap(text: str, width: int = 60, long_words: bool = True) -> str:
    """``text`` on lines of at most ``width`` characters, broken between words (:func:`~.labels.fill`: at spaces, and
    in a longer word after ',', ';', '/', '_' or a hyphen); a part still longer cut unless not ``long_words``."""
    from panbench.reporting.labels import fill

    return "\n".join(fill(text, width, "cut" if long_words else "keep")) or text


def legend_below(fig: Any, handles: list[Any], note: str = "") -> None:
    """The legend under the axes in as many columns as fit, ``note`` under it; the figure taller by their height."""
    labels = [hd.get_label() for hd in handles]
    renderer = fig.canvas.get_renderer()
    # narrower lines only where one column is still too wide; the last, narrowest try is kept whether it fits or not
    ncols = range(max(1, min(len(handles), int(fig.get_figwidth() / 1.6))), 0, -1)
    tries = [(width, ncol) for width in (60, 45, 30, 20) for ncol in ncols]
    for width, ncol in tries:
        for hd, label in zip(handles, labels):
            hd.set_label(wrap(label, width))
        leg = fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, bbox_to_anchor=(0.5, 0.0),
                         fontsize=MIN_TEXT_PT)
        if leg.get_window_extent(renderer).width <= 0.98 * fig.bbox.width or (width, ncol) == tries[-1]:
            break
        leg.remove()
    leg.set_in_layout(False)  # placed by lay_out, under the axes the layout engine fits
    under_axes(fig).insert(0, leg)
    if note:
        under_axes(fig).insert(1, note_under(fig, note, "center"))
    lay_out(fig)


def under_axes(fig: Any) -> list[Any]:
    """The artists under a figure's axes, top to bottom: its legend, its notes, its footnote."""
    if not hasattr(fig, "_panbench_bottom"):
        fig._panbench_bottom = []
        fig._panbench_height = fig.get_figheight()  # of the axes' part: the bottom adds to it
    return fig._panbench_bottom


def note_under(fig: Any, text: str, ha: str, **kw: Any) -> Any:
    """A text under the figure's axes, wrapped to the figure's width (measured)."""
    renderer = fig.canvas.get_renderer()
    x = {"center": 0.5, "left": 0.01}[ha]
    chars = max(20, int(fig.get_figwidth() * 72 / (0.5 * MIN_TEXT_PT)))
    txt = fig.text(x, 0.0, wrap(text, chars), ha=ha, va="bottom", fontsize=MIN_TEXT_PT, **kw)
    while txt.get_window_extent(renderer).width > 0.98 * fig.bbox.width and chars > 20:
        chars = int(chars * 0.9)
        txt.set_text(wrap(text, chars))
    txt.set_in_layout(False)
    return txt


def lay_out(fig: Any) -> None:
    """Place what goes under the axes one under the other and make the figure taller by their height."""
    below = under_axes(fig)
    label = getattr(fig, "_supxlabel", None)  # the axes' shared label: right under them, above the legend
    if below and label is not None and label not in below:
        label.set_in_layout(False)
        label._autopos = False  # placed here, not by the layout (which would put it at the figure's lower edge)
        below.insert(0, label)
    renderer = fig.canvas.get_renderer()
    gap = 0.06  # inches between two of them, and at the figure's lower edge
    heights = [a.get_window_extent(renderer).height / fig.dpi for a in below]
    extra = sum(heights) + gap * (len(below) + 1) if below else 0.0
    H = fig._panbench_height + extra
    fig.set_figheight(H)
    y = gap
    for a, h in reversed(list(zip(below, heights))):  # from the bottom up
        if hasattr(a, "set_bbox_to_anchor"):
            a.set_bbox_to_anchor((0.5, y / H), transform=fig.transFigure)
        else:
            a.set_position((a.get_position()[0], y / H))
        y += h + gap
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set"):
        engine.set(rect=(0, extra / H, 1, 1 - extra / H))


def new_figure(height: float, nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Any, Any]:
    """A figure of the width in effect and ``height`` inches for its ``nrows`` x ``ncols`` axes, constrained layout."""
    return plt().subplots(nrows, ncols, figsize=(current_width(), height), layout="constrained", **kw)


def axes_height(ratio: float, low: float = 1.8, high: float = 4.0) -> float:
    """A figure's height for its axes: ``ratio`` times the width in effect, within ``low`` and ``high`` inches."""
    return min(high, max(low, ratio * current_width()))


def footnote(fig: Any, text: str) -> None:
    """``text`` in grey at the figure's lower left, under everything else (:func:`lay_out`); nothing for ''."""
    if text:
        under_axes(fig).append(note_under(fig, text, "left", color="0.3"))
        lay_out(fig)


EDGE_PT = 2.0  # the least room between any text and the figure's edge, in points
TICK_GAP_PT = MIN_TEXT_PT  # the least room between two tick labels of one axis, in points (an em: less reads as one)


def fit_texts(fig: Any, passes: int = 4) -> None:
    """Fit titles and axis labels to the figure and make tick labels stand apart, at most ``passes`` times."""
    for _ in range(passes):
        fig.draw_without_rendering()  # the constrained layout done: the texts where they will be
        changed = [_wrap_titles(fig), *[_fit_ticks(fig, axis) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]]
        if not any(changed):
            return


def _inside(fig: Any, box: Any, axes: str = "xy") -> bool:
    """Whether ``box`` lies at least :data:`EDGE_PT` inside the figure along ``axes``."""
    edge, page = EDGE_PT * fig.dpi / 72, fig.bbox
    return all(getattr(page, a + "0") + edge <= getattr(box, a + "0")
               and getattr(box, a + "1") <= getattr(page, a + "1") - edge for a in axes)


def _across(fig: Any, text: Any, renderer: Any) -> bool:
    """Whether ``text`` lies inside the figure along its lines (across for a level text, up for an upright one)."""
    return _inside(fig, text.get_window_extent(renderer), "y" if text.get_rotation() == 90 else "x")


def _wrap_titles(fig: Any) -> bool:
    """Wrap each title and axis label that does not fit the figure; whether any changed."""
    renderer = fig.canvas.get_renderer()
    texts = [getattr(fig, name, None) for name in ("_suptitle", "_supxlabel", "_supylabel")]
    texts += [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label,
                                             ax.yaxis.label)]
    changed = False
    for t in texts:
        if t is None or not t.get_visible() or not t.get_text().strip() or _across(fig, t, renderer):
            continue
        text, before = t.get_text(), t.get_window_extent(renderer)
        chars = max(len(line) for line in text.split("\n"))
        while chars > 12:
            chars = max(12, int(chars * 0.85))
            t.set_text(wrap(" ".join(text.split("\n")) if "\n" not in text.strip() else text, chars))
            if _across(fig, t, renderer):
                break
        after = t.get_window_extent(renderer)
        grow(fig, (after.width - before.width if t.get_rotation() == 90 else after.height - before.height) / fig.dpi)
        changed = True
    return changed


def titles_apart(fig: Any, titles: list[tuple[Any, Callable[[int], str]]], widest: int, least: int = 10) -> None:
    """Each axes' title of ``titles`` made by its function of a line width in characters, from ``widest`` down to
    ``least``, until no two of them come within an em of each other and each lies inside the figure (measured)."""
    renderer = fig.canvas.get_renderer()
    gap = TITLE_PT * fig.dpi / 72
    for chars in range(widest, least - 1, -2):
        for ax, make in titles:
            ax.set_title(make(chars))
        fig.draw_without_rendering()  # the layout done: the titles where they will be
        boxes = [ax.title.get_window_extent(renderer) for ax, _ in titles]
        if all(_inside(fig, b, "x") for b in boxes) and not any(
                a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 and b.y0 < a.y1
                for i, a in enumerate(boxes) for b in boxes[i + 1:]):
            return


def grow(fig: Any, inches: float) -> None:
    """The figure taller by ``inches``, its axes keeping their height (:func:`lay_out`)."""
    if inches > 0:
        under_axes(fig)
        fig._panbench_height += inches
        lay_out(fig)


def crowded(fig: Any, labels: list[Any]) -> bool:
    """Whether two of ``labels`` are closer than :data:`TICK_GAP_PT`, or one is past the figure's edge."""
    renderer = fig.canvas.get_renderer()
    gap = TICK_GAP_PT * fig.dpi / 72
    boxes = [t.get_window_extent(renderer) for t in labels]
    return any(not _inside(fig, b) for b in boxes) or any(
        a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 + gap and b.y0 < a.y1 + gap
        for i, a in enumerate(boxes) for b in boxes[i + 1:])


def _number(text: str) -> bool:
    try:
        float(text.replace("\N{MINUS SIGN}", "-"))
    except ValueError:
        return False
    return True


def _fit_ticks(fig: Any, axis: Any) -> bool:
    """An axis' tick labels made to stand apart where they crowd (:func:`crowded`); whether they changed."""
    from matplotlib.ticker import FixedLocator

    labels = [t.label1 for t in axis._update_ticks() if t.label1.get_visible() and t.label1.get_text().strip()
              and t in axis.get_major_ticks()]  # the shown labels of the major ticks, in order
    if len(labels) < 2 or not crowded(fig, labels):
        return False
    locator = axis.get_major_locator()
    if not isinstance(locator, FixedLocator) or all(_number(t.get_text()) for t in labels):  # numbers: every other
        locs = [t.get_loc() for t in axis._update_ticks() if t in axis.get_major_ticks()]
        axis.set_major_locator(FixedLocator(locs[::2]))
        return True
    names = [str(x) for x in axis.get_major_formatter().format_ticks(list(locator.tick_values(0, 0)))]
    renderer = fig.canvas.get_renderer()
    before = max(t.get_window_extent(renderer).height for t in labels)

    def taller() -> bool:
        grow(fig, (max(t.get_window_extent(renderer).height for t in labels) - before) / fig.dpi)
        return True

    vertical = axis.axis_name == "y"
    if not vertical and all(t.get_rotation() == 0 for t in labels):  # names: on more lines first
        longest = max(len(line) for x in names for line in x.split("\n"))
        for chars in range(longest - 1, 5, -1):
            axis.set_ticklabels([wrap(x, chars, False) for x in names])
            if not crowded(fig, labels):
                return taller()
        axis.set_ticklabels(names)
    if vertical or all(t.get_rotation() == 90 for t in labels):  # nothing more to do: as they were
        axis.set_ticklabels(names)
        return False
    for t in axis.get_ticklabels():  # upright: the axis-aligned boxes of slanted names overlap before they do
        t.set(rotation=90, ha="right", va="center", rotation_mode="anchor")
    return taller()
