"""The grids of ``eval --grid`` as ``table``, ``compare``, ``plot`` and ``report`` read them (docs/reporting.md,
"Grids"): each summary under ``RESULTS/grids/`` (:mod:`panbench.records.grids`) with its settings' records, the
model's own setting (``default``) and the best on these images (``best``) marked.  No matplotlib, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.records.grids import BEST_NOTE, HEADLINE, load_summaries

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord

MARKS = ("default", "best")  # the settings a grid's summary points at by position
GRID_NOTE = ("grid (`eval --grid`, RESULTS/grids/): default marks the model's own setting, best the grid's highest PQ, "
             f"{BEST_NOTE}")


@dataclass(frozen=True)
class Grid:
    """A grid's summary (``doc``) and each setting's record, in the summary's order (None: the record is gone)."""

    doc: dict[str, Any]
    records: list[RunRecord | None]

    @property
    def settings(self) -> list[dict[str, Any]]:
        return self.doc["settings"]

    @property
    def keys(self) -> list[str]:
        """The grid's keys as ``--grid`` gave them (``object_mask_thr``, ``postprocess``), in its order."""
        return list(self.doc.get("grid") or {})

    def at(self, mark: str) -> int | None:
        """The position of the setting ``mark`` (``default`` or ``best``) names; None where there is none."""
        k = self.doc.get(mark)
        return k if isinstance(k, int) and 0 <= k < len(self.settings) else None

    def marks(self, k: int) -> str:
        """What setting ``k`` is: 'default', 'best', 'default, best' or ''."""
        return ", ".join(m for m in MARKS if self.at(m) == k)

    def varied(self) -> list[str]:
        """The keys the grid gives more than one value."""
        return [key for key in self.keys if len(self.doc["grid"][key]) > 1]

    def value(self, k: int, key: str) -> Any:
        """Setting ``k``'s value of the grid key ``key`` (its full key in the values ends with ``key``)."""
        values = self.settings[k].get("values") or {}
        full = next((f for f in values if f == key or f.endswith("." + key)), None)
        return values[full] if full is not None else None

    def label(self) -> str:
        """'demo-mask2former on demo: object_mask_thr x postprocess (6 settings)'."""
        return (f"{self.doc['model']} on {self.doc['dataset']}: {' x '.join(self.keys)} "
                f"({len(self.settings)} settings)")


def grids_of(results_dir: Path, shown: list[RunRecord], every: list[RunRecord] | None = None) -> list[Grid]:
    """The grids of ``results_dir`` with a setting among the runs ``shown``, oldest first, each setting with its
    record found among ``every`` (default: ``shown``) by its path; a summary without a list of settings left out."""
    by_path = {r.record: r for r in (every if every is not None else shown) if r.record}
    shown_paths = {r.record for r in shown if r.record}
    out = []
    for doc in load_summaries(Path(results_dir)):
        rows = doc.get("settings")
        if not isinstance(rows, list) or not all(isinstance(s, dict) and "label" in s for s in rows):
            continue
        if any(s.get("record") in shown_paths for s in rows):
            out.append(Grid(doc, [by_path.get(s.get("record")) for s in rows]))
    return out


def grid_marks(grids: list[Grid]) -> dict[str, str]:
    """Each marked setting's record path -> its marks (:meth:`Grid.marks`); a later grid's marks win."""
    return {g.settings[k]["record"]: g.marks(k) for g in grids for k in range(len(g.settings)) if g.marks(k)}


def marked_records(results_dir: Path) -> dict[str, set[str]]:
    """Each mark (``default``, ``best``) -> the record paths of the settings it marks in the grids of
    ``results_dir``."""
    out: dict[str, set[str]] = {m: set() for m in MARKS}
    for doc in load_summaries(Path(results_dir)):
        rows = doc.get("settings")
        for m in MARKS:
            k = doc.get(m)
            if isinstance(rows, list) and isinstance(k, int) and 0 <= k < len(rows) and isinstance(rows[k], dict):
                out[m].add(rows[k].get("record"))
    return out


def grid_frame(g: Grid) -> Any:
    """The settings of grid ``g`` as a table (pandas): its marks, PQ with its 95% interval where the record has one,
    and the headline metrics of the summary."""
    import pandas as pd

    rows = []
    for k, s in enumerate(g.settings):
        rec = g.records[k]
        low, high = ((rec.ci or {}).get("PQ") or (None, None)) if rec is not None else (None, None)
        m = s.get("metrics") or {}
        rows.append({"setting": s["label"], "grid": g.marks(k) or None, "PQ": m.get("PQ"), "PQ_low": low,
                     "PQ_high": high, **{x: m.get(x) for x in HEADLINE if x != "PQ"}})
    df = pd.DataFrame(rows).set_index("setting")
    if df["PQ_low"].isna().all():
        df = df.drop(columns=["PQ_low", "PQ_high"])
    return df
