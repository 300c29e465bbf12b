"""Where and how figures are written: the format and resolution of a command's figures (``--figure-format``,
``--dpi``, set for the command by :func:`figure_output`), and the manifest that lets a plots folder hold exactly
the figures panbench wrote there last.

Every figure goes through :func:`write_figure`: PNG, or PDF or SVG with their text kept as text (TrueType fonts
in a PDF, ``<text>`` elements in an SVG), so a paper's figure can be searched, copied and edited.  A folder
whose figures are replaced as a set (a dataset's plots, a report's gallery, the robustness plots) keeps a
manifest, :data:`FIGURES_MANIFEST`, of the files panbench wrote there; :func:`replace_figures` removes those of
an earlier run that this one did not write, and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench import __version__

FORMATS = ("png", "pdf", "svg")
FIGURES_MANIFEST = ".panbench-figures.json"  # in each folder of figures panbench replaces as a set
TEXT_AS_TEXT: Any = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}  # matplotlib's rc settings
MAX_DPI = 1200


@dataclass(frozen=True)
class FigureOutput:
    """The figures' format (:data:`FORMATS`), their resolution (dots per inch; None: each figure's own, 100 for
    the plots, 110 for the robustness plots and the overlays) and the formats written beside (a PNG for a page
    that shows a PDF figure)."""

    format: str = "png"
    dpi: int | None = None
    beside: tuple[str, ...] = ()


_OUTPUT: ContextVar[FigureOutput | None] = ContextVar("figure_output", default=None)


def current() -> FigureOutput:
    """The figure output in effect (PNG at each figure's own resolution unless :func:`figure_output` says)."""
    return _OUTPUT.get() or FigureOutput()


@contextmanager
def figure_output(fmt: str | None = None, dpi: int | None = None, beside: tuple[str, ...] = ()) -> Iterator[None]:
    """Within it, figures are written as ``fmt`` (default png) at ``dpi`` (default: each figure's own), with a
    copy in each of ``beside``."""
    if (fmt or "png") not in FORMATS:
        raise ValueError(f"figure format {fmt!r}: one of {', '.join(FORMATS)}")
    token = _OUTPUT.set(FigureOutput(fmt or "png", dpi, tuple(f for f in beside if f != (fmt or "png"))))
    try:
        yield
    finally:
        _OUTPUT.reset(token)


@contextmanager
def viewable_in_a_browser() -> Iterator[None]:
    """The figure output in effect, with a PNG beside each PDF (an HTML page shows PNG and SVG, not PDF)."""
    out = current()
    with figure_output(out.format, out.dpi, out.beside + (("png",) if out.format == "pdf" else ())):
        yield


def figure_path(path: Path) -> Path:
    """``path`` with the suffix of the figure format in effect (``pq_bars.png`` -> ``pq_bars.pdf``; ``A.SVG``
    stays as it is for SVG)."""
    path, suffix = Path(path), "." + current().format
    return path if path.suffix.lower() == suffix else path.with_suffix(suffix)


def write_figure(fig: Any, path: Path, dpi: int, **savefig: Any) -> Path:
    """Write ``fig`` at ``path`` in the format in effect (its suffix replaced by the format's; the formats
    beside too), at the resolution in effect or else ``dpi``, text kept as text in PDF and SVG; the folder is
    made.  ``savefig``: more of matplotlib's ``savefig`` arguments.  Returns the path of the figure in the
    format in effect."""
    import matplotlib

    out = current()
    path = figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(TEXT_AS_TEXT):
        for fmt in (out.format, *out.beside):
            fig.savefig(path if fmt == out.format else path.with_suffix("." + fmt), format=fmt, dpi=out.dpi or dpi,
                        **savefig)
    return path


def listed(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder`` (empty where there is none or it cannot be read: then nothing there is
    known to be panbench's)."""
    try:
        manifest = json.loads((Path(folder) / FIGURES_MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), list) else {}


def _own_files(folder: Path, manifest: dict[str, Any]) -> list[Path]:
    """The files a manifest lists that are in its folder (a plain name each: never a path out of it), each once."""
    names = [n for n in dict.fromkeys(f for f in manifest.get("files", []) if isinstance(f, str))
             if n and "/" not in n and "\\" not in n and not n.startswith(".")]
    return [Path(folder) / n for n in names if (Path(folder) / n).is_file()]


def replace_figures(folder: Path, written: list[Path], **about: Any) -> list[Path]:
    """Make ``written`` (figures in ``folder``, and the copies of each in the formats beside) the figures
    panbench keeps in ``folder``: remove those its manifest listed that are not among them (files panbench
    wrote there earlier and no longer writes; nothing else), then write the manifest (with ``about``: the
    dataset and image set the figures show).  Returns the paths removed."""
    folder = Path(folder)
    out = current()
    names = {p.with_suffix("." + f).name for p in map(Path, written) if p.parent == folder
             for f in (p.suffix[1:], *out.beside)}
    removed = [p for p in _own_files(folder, listed(folder)) if p.name not in names]
    for p in removed:
        p.unlink(missing_ok=True)  # another panbench run may have removed it a moment ago
    if names or folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {"written_by": f"panbench {__version__}", **about, "files": sorted(names)}
        from panbench.records.io import atomic_write_text  # numpy: not at the import of --help's options

        atomic_write_text(folder / FIGURES_MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return removed


def retire_folder(folder: Path) -> list[Path]:
    """Remove the figures panbench wrote in ``folder`` and its subfolders (each manifest's files and the
    manifest), and each folder left empty; the files panbench did not write stay.  Returns the paths removed."""
    removed: list[Path] = []
    for manifest in sorted(Path(folder).rglob(FIGURES_MANIFEST), key=lambda m: -len(m.parts)):  # the innermost first
        own = _own_files(manifest.parent, listed(manifest.parent))
        for p in own:
            p.unlink(missing_ok=True)  # another panbench run may have removed it a moment ago
        removed += own
        manifest.unlink(missing_ok=True)
        if not any(manifest.parent.iterdir()):
            manifest.parent.rmdir()
    return removed
