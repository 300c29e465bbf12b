"""The table's FPS columns: the latest ``panbench speed`` record of each row's model and dataset
(:mod:`panbench.records.speed`), with its protocol named in the column and its footnote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.records.schema import RunRecord
from panbench.records.speed import PROTOCOL, PROTOCOL_TEXT, latest_speed, load_speed_records

FPS = "FPS_fwd_b1"  # forward FPS at batch 1, by the protocol: the column's name says what is timed
FPS_COLUMNS = (FPS, "FPS_e2e_b1", "FPS_setup", "FPS_pub")


def fps_columns(records: list[RunRecord], results_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Per record its FPS columns (empty without a speed record of its model on its dataset), and the footnote
    that names the protocol (none when no row has a speed)."""
    latest = latest_speed(load_speed_records(results_dir))
    rows: list[dict[str, Any]] = []
    for r in records:
        s = latest.get((r.model, r.dataset))
        if s is None:
            rows.append({})
            continue
        rows.append({FPS: s.fps, "FPS_e2e_b1": (s.end_to_end or {}).get("fps"), "FPS_setup": s.setup(),
                     "FPS_pub": s.published_fps if s.published_matches else None})
    if not any(rows):
        return rows, []
    note = (f"{FPS}: frames per second of `panbench speed`, protocol {PROTOCOL} ({PROTOCOL_TEXT}); FPS_e2e_b1 the "
            "same count end to end (image file to segments); FPS_setup: device, precision, compile state, input size "
            "(HxW); FPS_pub: the published FPS, only where it was measured on the same device.")
    return rows, [note]
