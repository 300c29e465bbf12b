"""Plots of result records (matplotlib, written as PNG files under ``results/plots``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from panbench.reporting.records import measured_speed

GROUPS = (("All", ""), ("Things", "_th"), ("Stuff", "_st"))


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pq_bars(records: list[dict[str, Any]], out: Path) -> Path:
    """Grouped bars: PQ, SQ, RQ for All / Things / Stuff, one bar per model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    width = 0.8 / max(len(records), 1)
    for ax, (title, sfx) in zip(axes, GROUPS):
        for k, r in enumerate(records):
            vals = [r["metrics"][m + sfx] for m in ("PQ", "SQ", "RQ")]
            bars = ax.bar(np.arange(3) + k * width, vals, width, label=r["model"])
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(np.arange(3) + width * (len(records) - 1) / 2, ["PQ", "SQ", "RQ"])
        ax.set_title(title)
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("score (0-100)")
    axes[-1].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{records[0]['dataset']}: PQ / SQ / RQ")
    return _save(fig, out / "pq_bars.png")


def speed_points(records: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], float]], list[str]]:
    """The records with a measured speed, each with its images/s, and the models left out for want of one."""
    points = [(r, v) for r in records if (v := measured_speed(r)) is not None]
    return points, [r["model"] for r in records if measured_speed(r) is None]


def pq_vs_speed(records: list[dict[str, Any]], out: Path) -> Path:
    """PQ against images/s, each point labelled with the model and its device; a model whose speed was not
    measured is left out (named under the plot), never drawn at 0 images/s."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points, missing = speed_points(records)
    for r, x in points:
        y = r["metrics"]["PQ"]
        ax.scatter(x, y, s=60)
        ax.annotate(f"{r['model']}\n{r.get('device', '')}", (x, y), fontsize=7, xytext=(5, 5),
                    textcoords="offset points")
    ax.set_xlabel("images / s")
    ax.set_ylabel("PQ")
    ax.grid(alpha=0.3)
    ax.set_title("PQ against speed")
    if missing:
        ax.set_xlabel("images / s\nnot measured, left out: " + ", ".join(missing))
    if not points:
        ax.text(0.5, 0.5, "no measured speed", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, out / "pq_vs_speed.png")


def per_class_differences(records: list[dict[str, Any]], out: Path, top: int = 15) -> Path:
    """Per-class PQ of the models for the classes where they differ most."""
    plt = _plt()
    names = {}
    for r in records:
        names.update(r.get("provenance", {}).get("category_names", {}))
    cids = sorted({c for r in records for c in r["per_class"]}, key=lambda c: int(c) if c.isdigit() else c)
    table = np.array([[r["per_class"].get(c, {}).get("PQ", 0.0) for c in cids] for r in records])
    spread = table.max(0) - table.min(0) if len(records) > 1 else table[0]
    order = np.argsort(-spread, kind="stable")[:top]
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(order) + 2), 4.5))
    width = 0.8 / max(len(records), 1)
    for k, r in enumerate(records):
        ax.bar(np.arange(len(order)) + k * width, table[k, order], width, label=r["model"])
    ax.set_xticks(np.arange(len(order)) + width * (len(records) - 1) / 2,
                  [names.get(cids[i], cids[i]) for i in order], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("PQ")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title("per-class PQ where the models differ most")
    return _save(fig, out / "per_class_pq.png")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def make_plots(records: list[dict[str, Any]], out: Path) -> list[Path]:
    """All three plots for ``records`` (the latest run of each model on one dataset)."""
    return [pq_bars(records, out), pq_vs_speed(records, out), per_class_differences(records, out)]
