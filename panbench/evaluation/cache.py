"""Per-image PQ statistics cached on disk as they are made, for resuming interrupted runs.

A run directory is named by a key that hashes everything a per-image result depends on (config,
checkpoint, dataset and subset, post-processing, device type, AMP, batch size and, for batches
above 1, the process layout, the versions of panbench, mmdet, mmcv and torch, and mmcv's ops backend), so a cache
made with another setting is never reused.  Each image's entry is its PQ contributions, its
per-image match (:class:`panbench.analysis.ImageMatch`) and, with ``--boundary`` (part
of the key), its boundary-PQ contributions and, with AP or a semantic output, its AP data (ground
truth and instance predictions) and semantic confusion as JSON (floats as Python writes them), all
stored exactly (integers, float64), so a resumed run gives the same metrics and analyses, bit for
bit.  Beside the chunks, ``timing-<rank>.json`` keeps the
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

from panbench.pq.matching import BOOL_FIELDS, FLOAT_FIELDS, ImageMatch, ImageStats
from panbench.pq.matching import FIELDS as ANALYSIS_FIELDS
from panbench.records.io import atomic_write

CACHE_FORMAT = 5  # part of every cache key: a cache written by another format is never read (3: analyses,
# 4: the record's fn_pair_other, 5: AP data and semantic confusion per image)
FIELDS = ("tp_cats", "tp_ious", "fn_cats", "fp_cats", "sem_gt", "sem_pred", "sem_px", "unlisted_px")
BOUNDARY_FIELDS = ("tp_cats", "tp_ious", "fn_cats", "fp_cats")
# PQ contributions, match, boundary PQ, AP data and semantic confusion (panbench.evaluation.sink.ImageSink.score)
Entry = tuple[ImageStats, ImageMatch, "ImageStats | None", "dict[str, Any] | None"]


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


_OPENED: list[Path] = []  # the run folders of the caches opened in this process, in order


def cached_images() -> int | None:
    """How many images the cache opened last in this process (the run an interrupt stopped) holds on disk now
    (read afresh, so that the images that forked processes cached count too); None when no cache was opened.
    Said after an interrupt."""
    if not _OPENED:
        return None
    return sum(len(_read_chunk(f)) for f in sorted(_OPENED[-1].glob("chunk-*.npz")))


class StatsCache:
    """The resume cache of one run folder: :meth:`load` reads the per-image entries (:data:`Entry`)
    keyed by the image's index in the dataset, :meth:`add` writes one through (in chunks of
    ``flush_every``).  It keeps no entry in memory beyond the chunk being filled."""

    def __init__(self, run_dir: Path, flush_every: int = 16, tag: str = "r0", key_parts: dict | None = None) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        _OPENED.append(self.dir)
        if key_parts is not None:
            atomic_write(self.dir / "key.json", json.dumps(key_parts, sort_keys=True, default=str, indent=1).encode())
        self.flush_every, self.tag = flush_every, tag
        self._pending: list[tuple[int, Entry]] = []
        self._lock = threading.Lock()
        self._seq = len(list(self.dir.glob("chunk-*.npz")))

    def load(self) -> dict[int, Entry]:
        """Every image the folder's chunks hold (an unreadable chunk holds none)."""
        out: dict[int, Entry] = {}
        for f in sorted(self.dir.glob("chunk-*.npz")):
            out.update(_read_chunk(f))
        return out

    def add(self, index: int, stats: ImageStats, rec: ImageMatch, bstats: ImageStats | None = None,
            extra: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._pending.append((index, (stats, rec, bstats, extra)))
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


def _columns(arrays: dict[str, Any], prefix: str, names: tuple[str, ...], objs: list[Any]) -> None:
    for name in names:
        parts = [getattr(o, name) for o in objs]
        arrays[prefix + name] = np.concatenate(parts) if parts else np.zeros(0)
        arrays[prefix + name + "_len"] = np.array([len(p) for p in parts], np.int64)


def _split(z: Any, prefix: str, names: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
    cols = {}
    for name in names:
        lens = z[prefix + name + "_len"]
        cols[name] = np.split(z[prefix + name], np.cumsum(lens)[:-1]) if len(lens) else []
    return cols


def _dtype(name: str) -> type:
    return bool if name in BOOL_FIELDS else np.float64 if name in FLOAT_FIELDS else np.int64


def _write_chunk(path: Path, items: list[tuple[int, Entry]]) -> None:
    import io

    arrays: dict[str, Any] = {"index": np.array([i for i, _ in items], np.int64)}
    _columns(arrays, "", FIELDS, [e[0] for _, e in items])
    _columns(arrays, "a_", ANALYSIS_FIELDS, [e[1] for _, e in items])
    bounds = [e[2] for _, e in items]
    if all(b is not None for b in bounds):
        _columns(arrays, "b_", BOUNDARY_FIELDS, bounds)
    extras = [e[3] for _, e in items]
    if any(x is not None for x in extras):
        arrays["x_json"] = np.array([json.dumps(x) for x in extras])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def _read_chunk(path: Path) -> dict[int, Entry]:
    try:
        z = np.load(path)
        idx = z["index"]
        cols = _split(z, "", FIELDS)
        acols = _split(z, "a_", ANALYSIS_FIELDS)
        bcols = _split(z, "b_", BOUNDARY_FIELDS) if "b_tp_cats" in z.files else None
        extras = [json.loads(str(x)) for x in z["x_json"]] if "x_json" in z.files else [None] * len(idx)
    except Exception:  # an unreadable chunk is recomputed, never trusted
        return {}
    out = {}
    for k, i in enumerate(idx.tolist()):
        st = ImageStats(**{name: cols[name][k].astype(np.float64 if name == "tp_ious" else np.int64)
                           for name in FIELDS})
        rec = ImageMatch(**{name: acols[name][k].astype(_dtype(name)) for name in ANALYSIS_FIELDS})
        bst = None if bcols is None else ImageStats(
            **{name: bcols[name][k].astype(np.float64 if name == "tp_ious" else np.int64) for name in BOUNDARY_FIELDS})
        out[i] = (st, rec, bst, extras[k])
    return out
