"""The grids of ``eval --grid`` as ``table``, ``compare``, ``plot`` and ``report`` read them (docs/reporting.md,
"Grids"): each summary under ``RESULTS/grids/`` (:mod:`panbench.records.grids`) with its settings' records, the
model's own setting (``default``) and the best on these images (``best``) marked.  A grid is named by its keys
(``object_mask_thr+postprocess``); of a model's grids with the same name on the same images the latest counts, so a
model has one ``best`` per grid.  No matplotlib, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.records.grids import BEST_NOTE, HEADLINE, load_summaries
from panbench.reporting.columns import rule_column, rule_columns
from panbench.reporting.labels import dataset_key, shown_rules

if TYPE_CHECKING:
    from panbench.records.schema import RunRecord

MARKS = ("default", "best")  # the settings a grid's summary points at by position
GRID_NOTE = ("grid (`eval --grid`, RESULTS/grids/): default marks the model's own setting, best the grid's highest PQ, "
             f"{BEST_NOTE}")
NAMED_NOTE = ("a model with grids of different keys: each mark names its grid by its keys, e.g. best (postprocess); "
              "`compare --settings best:KEYS` takes that grid's best")


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

    @property
    def name(self) -> str:
        """The grid's keys joined by '+', as its figure's file names them: 'object_mask_thr+postprocess'."""
        return "+".join(self.keys)

    def image_set(self) -> str:
        """The dataset and image count of the grid's first record found (its summary's dataset where none is)."""
        rec = next((r for r in self.records if r is not None), None)
        return f"{dataset_key(rec)} {rec.n_images}" if rec is not None else str(self.doc.get("dataset"))

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


def latest_grids(grids: list[Grid]) -> list[Grid]:
    """The latest of ``grids`` (oldest first) of each model, name and image set, in first-seen order."""
    out = {(g.doc.get("model"), g.name, g.image_set()): g for g in grids}
    return list(out.values())


def several_names(grids: list[Grid]) -> set[str]:
    """The models with grids of more than one name among ``grids``."""
    names: dict[str, set[str]] = {}
    for g in grids:
        names.setdefault(str(g.doc.get("model")), set()).add(g.name)
    return {m for m, n in names.items() if len(n) > 1}


def grid_marks(grids: list[Grid]) -> dict[str, str]:
    """Each marked setting's record path -> its marks (:meth:`Grid.marks`) in the latest grids
    (:func:`latest_grids`), the grid's name after them where its model has grids of several names:
    'best (postprocess)'."""
    kept = latest_grids(grids)
    named = several_names(kept)
    return {g.settings[k]["record"]: f"{g.marks(k)} ({g.name})" if str(g.doc.get("model")) in named else g.marks(k)
            for g in kept for k in range(len(g.settings)) if g.marks(k)}


def marked_records(results_dir: Path, runs: list[RunRecord]) -> dict[str, dict[str, str]]:
    """Each mark (``default``, ``best``) -> the record paths of the settings it marks, each with its grid's name, in
    the latest grids (:func:`latest_grids`) of ``results_dir`` with a setting among ``runs``."""
    out: dict[str, dict[str, str]] = {m: {} for m in MARKS}
    for g in latest_grids(grids_of(results_dir, runs)):
        for m in MARKS:
            if (k := g.at(m)) is not None:
                out[m][g.settings[k]["record"]] = g.name
    return out


def same_name(name: str, asked: str) -> bool:
    """Whether the grid ``name`` is the one ``asked`` names: its keys joined by '+' in any order, a key by its full
    or its short name (the part after the last dot)."""
    def short(keys: str) -> list[str]:
        return sorted(k.strip().rsplit(".", 1)[-1] for k in keys.split("+"))

    return short(name) == short(asked)


def grid_frame(g: Grid) -> Any:
    """The settings of grid ``g`` as a table (pandas): its marks, PQ with its 95% interval where the record has one,
    the headline metrics of the summary and PQ under each rule a setting's record computed (``--rules``)."""
    import pandas as pd

    rules = shown_rules([r for r in g.records if r is not None])
    rows = []
    for k, s in enumerate(g.settings):
        rec = g.records[k]
        low, high = ((rec.ci or {}).get("PQ") or (None, None)) if rec is not None else (None, None)
        m = s.get("metrics") or {}
        ruled = rule_columns(rec, rules) if rec is not None else {}
        rows.append({"setting": s["label"], "grid": g.marks(k) or None, "PQ": m.get("PQ"), "PQ_low": low,
                     "PQ_high": high, **{x: m.get(x) for x in HEADLINE if x != "PQ"},
                     **{(c := rule_column("PQ", rule)): ruled.get(c) for rule in rules}})
    df = pd.DataFrame(rows).set_index("setting")
    if df["PQ_low"].isna().all():
        df = df.drop(columns=["PQ_low", "PQ_high"])
    return df
