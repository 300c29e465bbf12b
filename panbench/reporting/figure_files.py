"""Where and how figures are written: format and resolution, the manifest of a command's own figures in a folder,
the folder's lock (docs/reporting.md)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.locks import exclusive
from panbench.package import __version__

FORMATS = ("png", "pdf", "svg")
FIGURES_MANIFEST = ".panbench-figures.json"  # in each folder of figures panbench replaces as a set
REPORT_FILES = "report_files"  # RESULTS/report_files/: the report's own figures, beside RESULTS/report.html
TEXT_AS_TEXT: Any = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}  # matplotlib's rc settings
MAX_DPI = 1200
LOCK_TIMEOUT_S = 600.0  # how long a command waits for another one writing the same plots folder


@dataclass(frozen=True)
class FigureOutput:
    """The figures' format, resolution (None: each figure's own), formats beside, command and its start time."""

    format: str = "png"
    dpi: int | None = None
    beside: tuple[str, ...] = ()
    command: str = "python"  # who writes: a command's name (plot, report, robustness), else the Python API
    started: float = 0.0  # time.time() when the command set its output: a figure newer than that is not its own

    @property
    def key(self) -> str:
        """The manifest's name for this command's figures in this format (``plot svg``)."""
        return f"{self.command} {self.format}"


_OUTPUT: ContextVar[FigureOutput | None] = ContextVar("figure_output", default=None)


def current() -> FigureOutput:
    """The figure output in effect (PNG at each figure's own resolution unless :func:`figure_output` says)."""
    return _OUTPUT.get() or FigureOutput()


@contextmanager
def figure_output(fmt: str | None = None, dpi: int | None = None, beside: tuple[str, ...] = (),
                  command: str | None = None) -> Iterator[None]:
    """Within it, figures are written as ``fmt`` at ``dpi``, a copy in each of ``beside``, by ``command``."""
    if (fmt or "png") not in FORMATS:
        raise ValueError(f"figure format {fmt!r}: one of {', '.join(FORMATS)}")
    was = current()
    token = _OUTPUT.set(FigureOutput(fmt or "png", dpi, tuple(f for f in beside if f != (fmt or "png")),
                                     command or was.command, was.started if was.started and not command
                                     else time.time()))
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
    """``path`` with the suffix of the figure format in effect."""
    path, suffix = Path(path), "." + current().format
    return path if path.suffix.lower() == suffix else path.with_suffix(suffix)


def write_figure(fig: Any, path: Path, dpi: int, **savefig: Any) -> Path:
    """Write ``fig`` at ``path`` in the format in effect (and those beside), at its resolution or ``dpi``; the path."""
    import matplotlib

    out = current()
    path = figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(TEXT_AS_TEXT):
        for fmt in (out.format, *out.beside):
            final = path if fmt == out.format else path.with_suffix("." + fmt)
            tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")  # hidden: no manifest or glob lists it
            try:
                fig.savefig(tmp, format=fmt, dpi=out.dpi or dpi, **savefig)
                os.replace(tmp, final)  # a page or a reader sees the old figure or the new, never half of one
            finally:
                tmp.unlink(missing_ok=True)
    return path


def listed(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder``: ``files`` and ``by`` (command and format); empty where none can be read."""
    path = Path(folder) / FIGURES_MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):  # no manifest, or no folder (a file in plots/)
        return {}
    except (OSError, ValueError) as e:
        manifest = e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        from panbench.records.io import note_skipped  # numpy: not at the import of --help's options

        if path.exists() and not path.is_file():  # a folder in the way: no list can be written there either
            note_skipped(f"{path}: a folder, not panbench's list of the figures it wrote; the files beside it are "
                         "kept, none known to be panbench's; move it away")
            return {}
        why = manifest if isinstance(manifest, Exception) else "no list 'files'"
        note_skipped(f"{path}: not panbench's list of the figures it wrote ({why}); the files there are kept, "
                     "none known to be panbench's, and the list written anew")
        return {}
    by = manifest.get("by")
    if not isinstance(by, dict) or not all(isinstance(v, list) for v in by.values()):
        by = {}
        for name in _plain(manifest["files"]):
            by.setdefault(f"any {Path(name).suffix[1:].lower()}", []).append(name)
    by = {str(k): _plain(v) for k, v in by.items()}
    held = manifest.get("digests")
    digests = {k: v for k, v in held.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(held, dict) else {}
    return {**manifest, "by": by, "files": sorted({n for names in by.values() for n in names}), "digests": digests}


def _plain(names: list[Any]) -> list[str]:
    """The plain file names of a manifest's list (never a path out of its folder, nor a hidden file), each once."""
    return [n for n in dict.fromkeys(f for f in names if isinstance(f, str))
            if n and "/" not in n and "\\" not in n and not n.startswith(".")]


def _mine(by: dict[str, list[str]], out: FigureOutput) -> set[str]:
    """The keys of ``by`` of ``out``'s command in its format (an older manifest's ``any <format>`` too)."""
    return {k for k in by if k == out.key or k == f"any {out.format}"}


def _digest(path: Path) -> str | None:
    """What a file holds, as a manifest keeps it (the first 16 hex digits of its sha256); None where it is unread."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _remove_stale(folder: Path, manifest: dict[str, Any], keep: set[str], out: FigureOutput) -> list[Path]:
    """Remove ``out``'s own files of ``manifest`` not in ``keep``, listed by no other entry, older than the command,
    and holding what panbench wrote there (a file of that name that someone overwrote is theirs: kept)."""
    by, digests = manifest.get("by", {}), manifest.get("digests") or {}
    mine = _mine(by, out)
    others = {n for k, names in by.items() if k not in mine for n in names}
    found = []
    for name in sorted({n for k in mine for n in by[k]} - keep - others):
        p = Path(folder) / name
        try:
            if p.is_file() and not (out.started and p.stat().st_mtime > out.started) and \
                    digests.get(name, _digest(p)) == _digest(p):  # an older manifest, without digests: by name
                found.append(p)
        except OSError:
            continue
    for p in found:
        p.unlink(missing_ok=True)  # another panbench run may have removed it a moment ago
    return found


def _write_manifest(folder: Path, manifest: dict[str, Any], by: dict[str, list[str]],
                    digests: dict[str, str | None] | None = None, **about: Any) -> None:
    """The manifest of ``folder``: the files each command wrote (``by``) and what each held when written
    (``digests``: these, and the older manifest's for the files it keeps)."""
    from panbench.records.io import atomic_write_text  # numpy: not at the import of --help's options

    by = {k: sorted(v) for k, v in sorted(by.items()) if v}
    files = sorted({n for names in by.values() for n in names})
    held = {**(manifest.get("digests") or {}), **(digests or {})}
    text = {"written_by": f"panbench {__version__}", **{k: v for k, v in manifest.items()
                                                        if k not in ("written_by", "files", "by", "digests")},
            **about, "files": files, "by": by, "digests": {n: held[n] for n in files if held.get(n)}}
    atomic_write_text(Path(folder) / FIGURES_MANIFEST, json.dumps(text, indent=1) + "\n")


def replace_figures(folder: Path, written: list[Path], **about: Any) -> list[Path]:
    """Make ``written`` the command's own figures in ``folder``, its earlier ones removed; returns the paths removed."""
    folder = Path(folder)
    out = current()
    names = {p.with_suffix("." + f).name for p in map(Path, written) if p.parent == folder
             for f in (p.suffix[1:], *out.beside)}
    manifest = listed(folder)
    removed = _remove_stale(folder, manifest, names, out)
    if names or folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        by = {k: v for k, v in manifest.get("by", {}).items() if k not in _mine(manifest.get("by", {}), out)}
        gone = {p.name for p in removed}
        for k in _mine(manifest.get("by", {}), out) - {out.key}:  # an older manifest's files of no command yet
            by[k] = [n for n in manifest["by"][k] if n not in names and n not in gone]
        _write_manifest(folder, manifest, {**by, out.key: sorted(names)},
                        {n: _digest(folder / n) for n in names}, **about)
    return removed


def retire_folder(folder: Path) -> list[Path]:
    """Remove the figures the command in effect wrote in its format in ``folder`` and below, with their manifests."""
    out = current()
    removed: list[Path] = []
    for path in sorted(Path(folder).rglob(FIGURES_MANIFEST), key=lambda m: -len(m.parts)):  # the innermost first
        here = path.parent
        manifest = listed(here)
        removed += _remove_stale(here, manifest, set(), out)
        mine = _mine(manifest.get("by", {}), out)
        left = {k: v for k, v in manifest.get("by", {}).items() if k not in mine}
        if any(left.values()):
            _write_manifest(here, manifest, left)
        else:
            path.unlink(missing_ok=True)
            if not any(here.iterdir()):
                here.rmdir()
    return removed


@contextmanager
def writing_figures(plots: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Within it, this process alone of the panbench commands writes figures under ``plots`` (a lock beside it)."""
    plots = Path(plots)
    plots.mkdir(parents=True, exist_ok=True)
    with exclusive(plots.parent / f".{plots.name}.lock", timeout, f"writing the figures in {plots}"):
        yield
