"""The one look of every figure panbench draws (the plots, the robustness figures, the overlays of ``viz``): the
width a command's figures have (``--figure-width``: a journal's single or double column, or inches;
:func:`figure_width` sets it for a command), and the font sizes and line widths, one matplotlib rc dict
(:data:`FIGURE_STYLE`) in effect while any figure is drawn (:func:`styled`).

A figure is exactly that wide: it is made at that width with matplotlib's constrained layout, which fits the
labels inside it, and saved without cropping (no ``bbox_inches="tight"``); its height follows from what it
shows.  Every text is at least :data:`MIN_TEXT_PT` points and every title :data:`TITLE_PT`, so a figure printed at
its width reads as the paper's text does.

Standard library only at import: the command line's options read :data:`WIDTHS` and :func:`figure_inches`.
"""

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
FIGURE_STYLE: dict[str, Any] = {
    "font.size": 8.0, "axes.titlesize": TITLE_PT, "figure.titlesize": TITLE_PT, "axes.labelsize": 8.0,
    "figure.labelsize": 8.0, "xtick.labelsize": MIN_TEXT_PT, "ytick.labelsize": MIN_TEXT_PT,
    "legend.fontsize": MIN_TEXT_PT, "legend.title_fontsize": MIN_TEXT_PT, "axes.titleweight": "normal",
    "figure.titleweight": "normal", "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "lines.linewidth": 1.0, "hatch.linewidth": 0.6, "figure.constrained_layout.h_pad": 0.05,
    "figure.constrained_layout.w_pad": 0.05, "savefig.bbox": None, "savefig.pad_inches": 0.0,
}

_WIDTH: ContextVar[float | None] = ContextVar("figure_width", default=None)
F = TypeVar("F", bound=Callable[..., Any])


def figure_inches(value: str | float | None) -> float:
    """The width ``value`` names, in inches: ``single`` (3.5), ``double`` (7.2), or a number of inches within
    :data:`WIDTH_LIMITS`; None: the default (:data:`DEFAULT_WIDTH`).  Anything else: ValueError, in words."""
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


def styled(draw: F) -> F:
    """``draw`` (a function that makes a figure) run with :data:`FIGURE_STYLE` in effect: its texts take their
    sizes from it."""

    @functools.wraps(draw)
    def run(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(FIGURE_STYLE):
            return draw(*args, **kwargs)

    return run  # type: ignore[return-value]
