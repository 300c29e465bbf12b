"""Per-image PQ statistics cached on disk as they are made, for resuming interrupted runs.

A run directory is named by a key that hashes everything a per-image result depends on (config,
checkpoint, dataset and subset, post-processing, device type, AMP, batch size and, for batches
above 1, the process layout, and the versions of panbench, mmdet, mmcv and torch), so a cache
made with another setting is never reused.  Beside the chunks, ``timing-<rank>.json`` keeps the
speed measured for the cached images, so that a resumed run can report it.  Chunks are written
atomically (temporary file, then ``os.replace``): a kill loses at most the images of the chunk
being filled, never a finished chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from panbench.pq.matching import ImageStats
from panbench.reporting.records import atomic_write

CACHE_FORMAT = 2  # part of every cache key: a cache written by another format is never read
FIELDS = ("tp_cats", "tp_ious", "fn_cats", "fp_cats", "sem_gt", "sem_pred", "sem_px")


def cache_key(parts: dict[str, Any]) -> str:
    """A 16-hex key of the JSON-serialised ``parts`` (and the cache format)."""
    parts = {**parts, "cache_format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_timing(run_dir: Path, tag: str) -> dict[str, Any] | None:
    """The speed stored with the cached images of ``tag`` (``{"device", "timed_images", "wall_s"}``), if any."""
    try:
        t = json.loads((Path(run_dir) / f"timing-{tag}.json").read_text())
        if int(t["timed_images"]) > 0 and float(t["wall_s"]) > 0 and isinstance(t.get("device"), str):
            return {"device": t["device"], "timed_images": int(t["timed_images"]), "wall_s": float(t["wall_s"])}
    except (OSError, ValueError, KeyError, TypeError):  # absent or unreadable: no stored speed, never a guess
        pass
    return None


def write_timing(run_dir: Path, tag: str, timing: dict[str, Any]) -> None:
    atomic_write(Path(run_dir) / f"timing-{tag}.json", json.dumps(timing, sort_keys=True).encode())


def clear(run_dir: Path) -> None:
    """Forget a run directory's cached images and the speed stored with them."""
    for old in [*Path(run_dir).glob("chunk-*.npz"), *Path(run_dir).glob("timing-*.json")]:
        old.unlink(missing_ok=True)  # nodes sharing a results folder may race here


class StatsCache:
    """Per-image :class:`ImageStats` keyed by the image's index in the dataset."""

    def __init__(self, run_dir: Path, flush_every: int = 16, tag: str = "r0", key_parts: dict | None = None) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if key_parts is not None:
            atomic_write(self.dir / "key.json", json.dumps(key_parts, sort_keys=True, default=str, indent=1).encode())
        self.flush_every, self.tag = flush_every, tag
        self.done: dict[int, ImageStats] = {}
        self._pending: list[tuple[int, ImageStats]] = []
        self._lock = threading.Lock()
        self._seq = 0
        for f in sorted(self.dir.glob("chunk-*.npz")):
            self.done.update(_read_chunk(f))
            self._seq += 1

    def add(self, index: int, stats: ImageStats) -> None:
        with self._lock:
            self.done[index] = stats
            self._pending.append((index, stats))
            full = len(self._pending) >= self.flush_every
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            self._seq += 1
            name = self.dir / f"chunk-{self.tag}-{os.getpid()}-{self._seq:06d}.npz"
        _write_chunk(name, pending)


def _write_chunk(path: Path, items: list[tuple[int, ImageStats]]) -> None:
    import io

    arrays: dict[str, np.ndarray] = {"index": np.array([i for i, _ in items], np.int64)}
    for name in FIELDS:
        parts = [getattr(s, name) for _, s in items]
        arrays[name] = np.concatenate(parts) if parts else np.zeros(0)
        arrays[name + "_len"] = np.array([len(p) for p in parts], np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def _read_chunk(path: Path) -> dict[int, ImageStats]:
    try:
        z = np.load(path)
        idx = z["index"]
        cols = {}
        for name in FIELDS:
            lens = z[name + "_len"]
            cols[name] = np.split(z[name], np.cumsum(lens)[:-1]) if len(lens) else []
    except Exception:  # an unreadable chunk is recomputed, never trusted
        return {}
    out = {}
    for k, i in enumerate(idx.tolist()):
        out[i] = ImageStats(**{name: cols[name][k].astype(np.float64 if name == "tp_ious" else np.int64)
                               for name in FIELDS})
    return out
