"""A grid's summary (``RESULTS/grids/<date>_<model>_<dataset>.json``; docs/eval.md, "Grids"): its settings, each
with its record and headline numbers, the model's own setting and the best on these images.  The records are the
results; the summary says which belong together.  No torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.records.io import atomic_write_text, record_path
from panbench.records.provenance import now_iso

GRIDS = "grids"  # RESULTS/grids/ (apart from RESULTS/sweeps/, submit's)
HEADLINE = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")
BEST_NOTE = "chosen on these images: a setting picked on val is not a test result"


@dataclass(frozen=True)
class GridRow:
    """One setting of a grid as its summary holds it."""

    label: str  # "object_mask_thr=0.7 postprocess=maskwise"
    values: dict[str, Any]  # full key -> value
    default: bool  # every value the model's own
    record: str  # the record's path under the results folder
    metrics: dict[str, float]


def grid_summary(model: str, dataset: str, grid: dict[str, list[Any]], rows: list[GridRow],
            command: str | None) -> dict[str, Any]:
    """A grid's summary document: its settings in order, the default's and the best's positions (best: highest PQ,
    the first of equals)."""
    best = max(range(len(rows)), key=lambda k: (rows[k].metrics["PQ"], -k)) if rows else None
    default = next((k for k, r in enumerate(rows) if r.default), None)
    return {"kind": "panbench grid", "model": model, "dataset": dataset, "date": now_iso(), "command": command,
            "grid": grid, "default": default, "best": best, "best_note": BEST_NOTE,
            "settings": [{"label": r.label, "values": r.values, "default": r.default, "record": r.record,
                          "metrics": {k: r.metrics[k] for k in HEADLINE}} for r in rows]}


def write_grid_summary(results_dir: Path, doc: dict[str, Any]) -> Path:
    """``doc`` written as ``RESULTS/grids/<date>_<model>_<dataset>.json`` (a free ``~k`` twin if taken)."""
    first = record_path(Path(results_dir), doc["model"], doc["dataset"], doc["date"], folder=GRIDS)
    first.parent.mkdir(parents=True, exist_ok=True)
    path, k = first, 0
    while path.exists():
        k += 1
        path = first.with_name(f"{first.stem}~{k}.json")
    atomic_write_text(path, json.dumps(doc, indent=1, default=str) + "\n")
    return path


def load_summaries(results_dir: Path) -> list[dict[str, Any]]:
    """The grid summaries of a results folder, oldest first (a file that is not one left out)."""
    out = []
    for p in sorted((Path(results_dir) / GRIDS).glob("*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("kind") == "panbench grid":
            out.append({**doc, "path": str(p)})
    return out
