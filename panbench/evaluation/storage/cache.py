"""Per-image PQ statistics cached on disk as they are made, for resuming interrupted runs. A run directory is named
by a key that hashes everything a per-image result depends on (config, checkpoint, dataset and subset,
post-processing, device type, AMP, batch size and, for batches above 1, the process layout, the versions of
panbench, mmdet, mmcv and torch, and mmcv's ops backend), so a cache made with another setting is never reused.
Each image's entry is its :class:`~panbench.pq.result.ImageResult` (the match, the semantic pairs and, with
``--boundary``, part of the key, the boundary-PQ contributions) as the columns of :mod:`panbench.pq.result`,
and, with AP or a semantic output, its AP data (ground truth and instance predictions) and semantic confusion as
JSON (floats as Python writes them), all stored exactly (integers, float64), so a resumed run gives the same
metrics and analyses, bit for bit. A chunk of another :data:`CACHE_FORMAT` is not read; :func:`older_format`
finds the folder an older panbench cached the same run in, so that the run says in one line why it starts
afresh. Beside the chunks, ``timing-<rank>.json`` keeps the speed measured for the cached images, so that a
resumed run can report it. Chunks are written atomically (temporary file, then ``os.replace``): a kill loses at
most the images of the chunk being filled, never a finished chunk. A temporary file is named
``<file>.tmp<PID>@<host>``; one that a killed process left is removed when the cache is next opened
(:func:`remove_stale_temps`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from panbench.pq.matching import MATCH_FIELDS
from panbench.pq.result import (
    BOUNDARY_FIELDS,
    BOUNDARY_PREFIX,
    SEMANTIC_FIELDS,
    ImageResult,
    column_groups,
    column_keys,
    join_columns,
    results_to_columns,
)
from panbench.records.io import atomic_write

CACHE_FORMAT = 6  # part of every cache key and of every chunk: a cache written by another format is never read
# (3: analyses, 4: the record's fn_pair_other, 5: AP data and semantic confusion per image, 6: the columns of
# panbench.pq.result, the PQ contributions read from the match)
# an image's result and its AP data and semantic confusion as JSON (panbench.evaluation.evaluators.CacheWriter)
Entry = tuple[ImageResult, "dict[str, Any] | None"]


@dataclass(frozen=True)
class Cached:
    """The images a run folder's chunks hold: their indices in the dataset, their results as the columns of
    :mod:`panbench.pq.result` (in that order) and each one's AP data and semantic confusion as JSON (None
    without)."""

    indices: np.ndarray
    columns: dict[str, np.ndarray]
    extras: list[dict[str, Any] | None]

    def positions(self) -> dict[int, int]:
        """Each index's position in :attr:`indices`: its last one (an image cached again replaces itself)."""
        return {i: k for k, i in enumerate(self.indices.tolist())}


def cache_key(parts: dict[str, Any]) -> str:
    """A 16-hex key of the JSON-serialised ``parts`` (and the cache format)."""
    parts = {**parts, "cache_format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_timing(run_dir: Path, tag: str) -> dict[str, Any] | None:
    """The speed stored with the cached images of ``tag`` (``{"device", "timed_images", "wall_s", "overlapped"}``:
    ``overlapped``, whether another panbench run shared the machine while it was measured, keeps a resumed run's
    speed marked ``~``), if any."""
    try:
        t = json.loads((Path(run_dir) / f"timing-{tag}.json").read_text())
        if int(t["timed_images"]) > 0 and float(t["wall_s"]) > 0 and isinstance(t.get("device"), str):
            return {"device": t["device"], "timed_images": int(t["timed_images"]), "wall_s": float(t["wall_s"]),
                    "overlapped": bool(t.get("overlapped"))}
    except (OSError, ValueError, KeyError, TypeError):  # absent or unreadable: no stored speed, never a guess
        pass
    return None


def write_timing(run_dir: Path, tag: str, timing: dict[str, Any]) -> None:
    _write(Path(run_dir) / f"timing-{tag}.json", json.dumps(timing, sort_keys=True).encode())


def _host() -> str:
    """This machine's name as temporary files carry it (no ``/``, ``@`` or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "unknown"


def _write(path: Path, data: bytes) -> None:
    """:func:`~panbench.records.io.atomic_write` through ``<path>.tmp<PID>@<host>``."""
    atomic_write(path, data, tmp=path.with_name(f"{path.name}.tmp{os.getpid()}@{_host()}"))


STALE_S = 3600.0  # a temporary file of another machine untouched this long is stale (one is written in one go)
_TEMP = re.compile(r".+\.tmp(\d+)(?:@(.+))?")


def remove_stale_temps(run_dir: Path, stale_s: float = STALE_S) -> list[Path]:
    """Remove the temporary files (``*.tmp<PID>@<host>``) that processes killed while writing left in
    ``run_dir``; returns them.  One of this machine is stale when no process of its PID is alive here
    (``os.kill(pid, 0)``; a process of another user counts as alive).  The results folder, and so the cache,
    may be shared by several machines (Slurm jobs, torchrun nodes) writing into one run folder at once, and a PID
    of another machine says nothing here: a temporary file of another machine, or one without a host (written
    by an older panbench), is stale only when it was not modified for ``stale_s`` seconds."""
    removed = []
    for f in Path(run_dir).glob("*.tmp*"):
        m = _TEMP.fullmatch(f.name)
        if m is None:
            continue
        try:
            if m[2] == _host():
                stale = not _alive(int(m[1]))
            else:
                stale = time.time() - f.stat().st_mtime > stale_s
            if stale:
                f.unlink()
                removed.append(f)
        except FileNotFoundError:  # renamed into place or removed by another process meanwhile
            continue
    return removed


def _alive(pid: int) -> bool:
    """Whether a process of ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    except (OverflowError, ValueError):  # not a PID at all
        return False
    return True


def older_format(run_dir: Path, key_parts: dict[str, Any]) -> Path | None:
    """A folder beside ``run_dir`` that caches the same run (its ``key.json`` says the same) in another
    :data:`CACHE_FORMAT` (so under another key), with images in it; None when there is none."""
    run_dir = Path(run_dir)
    same = json.dumps(key_parts, sort_keys=True, default=str, indent=1)
    prefix = run_dir.name.rsplit("-", 1)[0] + "-"
    for other in sorted(run_dir.parent.glob(prefix + "*")):
        if other != run_dir and other.name.rsplit("-", 1)[0] + "-" == prefix and any(other.glob("chunk-*.npz")):
            try:
                if (other / "key.json").read_text() == same:
                    return other
            except OSError:
                continue
    return None


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
    return sum(len(c.indices) for f in sorted(_OPENED[-1].glob("chunk-*.npz")) if (c := _read_chunk(f)) is not None)


class StatsCache:
    """The resume cache of one run folder: :meth:`load` reads the images it holds (:class:`Cached`),
    :meth:`add` writes one through (in chunks of
    ``flush_every``).  It keeps no entry in memory beyond the chunk being filled.  Opening it removes the
    temporary files that killed processes left in the folder (:func:`remove_stale_temps`)."""

    def __init__(self, run_dir: Path, flush_every: int = 16, tag: str = "r0", key_parts: dict | None = None) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.dir)
        _OPENED.append(self.dir)
        if key_parts is not None:
            _write(self.dir / "key.json", json.dumps(key_parts, sort_keys=True, default=str, indent=1).encode())
        self.flush_every, self.tag = flush_every, tag
        self._pending: list[tuple[int, Entry]] = []
        self._lock = threading.Lock()
        self._seq = len(list(self.dir.glob("chunk-*.npz")))

    def load(self) -> Cached:
        """Every image the folder's chunks hold (an unreadable chunk holds none)."""
        chunks = [c for f in sorted(self.dir.glob("chunk-*.npz")) if (c := _read_chunk(f)) is not None]
        if chunks:  # one run's chunks share their columns (with boundary PQ or without): those most images have
            held: dict[frozenset[str], int] = {}
            for c in chunks:
                held[frozenset(c.columns)] = held.get(frozenset(c.columns), 0) + len(c.indices)
            keys = max(held, key=held.__getitem__)
            chunks = [c for c in chunks if frozenset(c.columns) == keys]
        if not chunks:
            return Cached(np.zeros(0, np.int64), results_to_columns([]), [])
        cols = join_columns([(len(c.indices), c.columns) for c in chunks])
        return Cached(np.concatenate([c.indices for c in chunks]), cols, [x for c in chunks for x in c.extras])

    def add(self, index: int, result: ImageResult, extra: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._pending.append((index, (result, extra)))
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


def _write_chunk(path: Path, items: list[tuple[int, Entry]]) -> None:
    import io

    arrays: dict[str, Any] = {"format": np.int64(CACHE_FORMAT), "index": np.array([i for i, _ in items], np.int64),
                              **results_to_columns([e[0] for _, e in items])}
    extras = [e[1] for _, e in items]
    if any(x is not None for x in extras):
        arrays["x_json"] = np.array([json.dumps(x) for x in extras])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _write(path, buf.getvalue())


def _read_chunk(path: Path) -> Cached | None:
    """The images of one chunk; None when it is unreadable or of another :data:`CACHE_FORMAT` (recomputed,
    never trusted)."""
    try:
        z = np.load(path)
        if "format" not in z.files or int(z["format"]) != CACHE_FORMAT:
            return None
        idx = np.asarray(z["index"], np.int64)
        cols = {k: z[k] for k in z.files if k not in ("format", "index", "x_json")}
        extras = [json.loads(str(x)) for x in z["x_json"]] if "x_json" in z.files else [None] * len(idx)
        if len(extras) != len(idx) or not _well_formed(cols, len(idx)):
            return None
    except Exception:  # an unreadable chunk is recomputed, never trusted
        return None
    return Cached(idx, cols, extras)


_KEYS = frozenset(column_keys(MATCH_FIELDS) + column_keys(SEMANTIC_FIELDS))
_BOUNDARY_KEYS = frozenset(column_keys(BOUNDARY_FIELDS, BOUNDARY_PREFIX))


def _well_formed(cols: dict[str, np.ndarray], n: int) -> bool:
    """Whether a chunk's columns are those of ``n`` images' results: the keys of
    :func:`~panbench.pq.result.results_to_columns` (with boundary PQ's or without), each field as long as its
    group's image column, whose values run from 0 below ``n`` and never decrease."""
    if frozenset(cols) not in (_KEYS, _KEYS | _BOUNDARY_KEYS):
        return False
    for k, img in cols.items():
        if k.endswith("_img") and len(img) and (int(img[0]) < 0 or int(img[-1]) >= n or (np.diff(img) < 0).any()):
            return False
    return all(g is not None and len(cols[k]) == len(cols[g + "_img"]) for k, g in column_groups(cols).items())
