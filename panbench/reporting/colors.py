"""The figures' colour-blind safe colours and black or white text by contrast (WCAG 2); docs/reporting.md."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.errors import InputError
from panbench.locks import exclusive
from panbench.reporting.labels import dataset_key, model_label

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499")
MODEL_PALETTE = OKABE_ITO + TOL_MUTED

#: the error types of ``errors.png``: Tol's colours at least :data:`ERROR_DISTANCE` from every model's, 25 apart
ERROR_COLORS = {"classification": "#EE8866", "segmentation": "#CCDDAA", "duplicate": "#FFAABB",
                "background": "#222255", "missed": "#663333", "other": "#DDDDDD"}
ERROR_DISTANCE = 20.0  # a colour this far from another (CIE76 delta E) is told apart at a glance
#: the corruption groups (:data:`panbench.robustness.corruptions.CORRUPTION_GROUPS`), dark enough for text
GROUP_COLORS = {"noise": "#004488", "blur": "#AA3377", "weather": "#225555", "digital": "#8A5A00"}

#: the metrics of a grid's figure (``grid_*.png``): Okabe-Ito's black, blue and vermilion, a marker and a line each
GRID_METRICS = {"PQ": ("#000000", "o", "-"), "PQ_th": ("#0072B2", "s", "--"), "PQ_st": ("#D55E00", "^", "-.")}

COLORS_FILE = "colors.json"  # under the results folder, beside runs/

Colors = dict[str, Any]  # a model's label (:func:`panbench.reporting.labels.model_label`) -> its colour


def model_colors(results_dir: Path | str | None, records: list[RunRecord], labels: Iterable[str] = (),
                 keep: bool = True) -> Colors:
    """Each model's colour: the one ``RESULTS/colors.json`` keeps, else a new one, kept there when ``keep``."""
    path = Path(results_dir) / COLORS_FILE if results_dir is not None else None
    try:
        kept = read_colors(path) if path is not None else {}
    except InputError as e:  # damaged: named in one line, the colours of this run assigned afresh, the file left
        from panbench.records.io import note_skipped  # numpy: not at the import of --help's options

        note_skipped(str(e))
        kept, keep = {}, False
    # each model's label within its dataset's runs and within its image set's, as the figures label them
    wanted = sorted({model_label(r, [x for x in records if x.dataset == r.dataset]) for r in records}
                    | {model_label(r, [x for x in records if dataset_key(x) == dataset_key(r)]) for r in records}
                    | set(labels))
    colors = assign(kept, wanted)
    if path is not None and keep and colors != kept:
        try:  # read again and add the colours it lacks under a lock: two commands adding models keep each other's
            with exclusive(path.with_name(path.name + ".lock"), 120.0, "adding model colours"):
                kept = read_colors(path)
                if (fresh := assign(kept, wanted)) != kept:
                    _write(path, fresh)
            colors = fresh
        except OSError:
            pass
    return colors


def assign(kept: Colors, wanted: list[str]) -> Colors:
    """``kept`` and, for each label of ``wanted`` it lacks, the palette's colour fewest labels of ``wanted`` have."""
    out = dict(kept)
    for label in (w for w in wanted if w not in kept):
        near = [out[w] for w in wanted if w in out]
        every = list(out.values())
        out[label] = min(MODEL_PALETTE, key=lambda c: (near.count(c), every.count(c), MODEL_PALETTE.index(c)))
    return out


def read_colors(path: Path) -> dict[str, str]:
    """The colours kept in ``path`` (none without the file); a file that is not one refused in one line."""
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text()).get("models")
        if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
            raise ValueError("no 'models' object of label -> colour")
        from matplotlib.colors import to_rgba

        for v in found.values():
            to_rgba(v)
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not panbench's model colours ({e}); delete it and panbench assigns the "
                         "colours again") from e
    return found


def _write(path: Path, colors: dict[str, str]) -> None:
    """Write the colours at once (a temporary file renamed)."""
    text = json.dumps({"about": "each model's colour in panbench's figures; delete to assign them again",
                       "models": dict(sorted(colors.items()))}, indent=1)
    from panbench.records.io import atomic_write_text  # numpy: not at the import of --help's options

    atomic_write_text(path, text + "\n")


def lab_distance(a: Any, b: Any) -> float:
    """How far apart two colours look: CIE76 delta E of their CIE L*a*b* coordinates (about 2.3 is just noticeable)."""
    import numpy as np

    def lab(color: Any) -> Any:
        from matplotlib.colors import to_rgb

        rgb = np.array(to_rgb(color))
        lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
        t = xyz / np.array([0.95047, 1.0, 1.08883])
        f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
        return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])

    return float(np.linalg.norm(lab(a) - lab(b)))


def luminance(color: Any) -> float:
    """WCAG 2's relative luminance of a matplotlib colour (0 black, 1 white)."""
    from matplotlib.colors import to_rgb

    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: Any, b: Any) -> float:
    """WCAG 2's contrast ratio of two colours, 1 to 21 (text needs 4.5)."""
    la, lb = sorted((luminance(a), luminance(b)))
    return (lb + 0.05) / (la + 0.05)


def text_color(background: Any) -> str:
    """Black or white, whichever contrasts more with ``background`` (either reaches 4.5:1 on any colour)."""
    return "black" if contrast("black", background) >= contrast("white", background) else "white"
