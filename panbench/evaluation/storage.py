"""What a run writes beside its record: the resume cache (:class:`StatsCache`; docs/eval.md, "The resume cache")
and the ``--save-predictions`` files (:class:`PredictionWriter`; docs/eval.md, "Saving predictions")."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.datasets import PanopticDataset
from panbench.data.synth import id2rgb
from panbench.errors import InputError, PanbenchError
from panbench.evaluation.context import pid_alive
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.runtime import barrier, dist_any, dist_gather, dist_info, local_rank
from panbench.evaluators.builtin import RulesEvaluator
from panbench.evaluators.contract import BuiltIn, cache_key_of, name_of
from panbench.models.registry import ModelSpec
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
from panbench.records.provenance import now_iso

CACHE_FORMAT = 9  # part of every cache key and of every chunk: a cache written by another format is never read
# an image's result and its evaluators' shares as JSON by name@version (panbench.evaluators)
Entry = tuple[ImageResult, "dict[str, Any] | None"]


@dataclass(frozen=True)
class Cached:
    """The images a run folder's chunks hold: dataset indices, :mod:`panbench.pq.result`'s columns, JSON shares."""

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
    """The speed stored with the cached images of ``tag`` (``{"device", "timed_images", "wall_s", "overlapped"}``),
    if any (docs/eval.md, "The resume cache")."""
    with suppress(OSError, ValueError, KeyError, TypeError):  # absent or unreadable: no stored speed, never a guess
        t = json.loads((Path(run_dir) / f"timing-{tag}.json").read_text())
        if int(t["timed_images"]) > 0 and float(t["wall_s"]) > 0 and isinstance(t.get("device"), str):
            return {"device": t["device"], "timed_images": int(t["timed_images"]), "wall_s": float(t["wall_s"]),
                    "overlapped": bool(t.get("overlapped"))}
    return None


def write_timing(run_dir: Path, tag: str, timing: dict[str, Any]) -> None:
    _write(Path(run_dir) / f"timing-{tag}.json", json.dumps(timing, sort_keys=True).encode())


def _host() -> str:  # as temporary files carry it
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "unknown"


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, data, tmp=path.with_name(f"{path.name}.tmp{os.getpid()}@{_host()}"))


STALE_S = 3600.0  # a temporary file of another machine untouched this long is stale (one is written in one go)
_TEMP = re.compile(r".+\.tmp(\d+)(?:@(.+))?")


def remove_stale_temps(run_dir: Path) -> None:
    """Remove the temporary files (``*.tmp<PID>@<host>``) that killed processes left in ``run_dir``: of this machine
    once no process of its PID is alive, of another (or without a host) once untouched for :data:`STALE_S` s."""
    for f in Path(run_dir).glob("*.tmp*"):
        if (m := _TEMP.fullmatch(f.name)) is None:
            continue
        with suppress(FileNotFoundError):  # renamed into place or removed by another process meanwhile
            stale = not pid_alive(int(m[1])) if m[2] == _host() else time.time() - f.stat().st_mtime > STALE_S
            if stale:
                f.unlink()


def older_format(run_dir: Path, key_parts: dict[str, Any]) -> Path | None:
    """A folder beside ``run_dir`` with images of the same run (same ``key.json``) in another :data:`CACHE_FORMAT`."""
    run_dir = Path(run_dir)
    same = json.dumps(key_parts, sort_keys=True, default=str, indent=1)
    prefix = run_dir.name.rsplit("-", 1)[0] + "-"
    for other in sorted(run_dir.parent.glob(prefix + "*")):
        if other != run_dir and other.name.rsplit("-", 1)[0] + "-" == prefix and any(other.glob("chunk-*.npz")):
            with suppress(OSError):
                if (other / "key.json").read_text() == same:
                    return other
    return None


def clear(run_dir: Path) -> None:
    """Forget a run directory's cached images and the speed stored with them."""
    for old in [*Path(run_dir).glob("chunk-*.npz"), *Path(run_dir).glob("timing-*.json")]:
        old.unlink(missing_ok=True)  # nodes sharing a results folder may race here


_OPENED: list[Path] = []  # the run folders of the caches opened in this process, in order


def opened() -> int:
    """How many caches this process has opened (the last one is the run now going)."""
    return len(_OPENED)


def cached_images() -> int | None:
    """How many images the cache opened last in this process holds on disk now (forked processes' too), said after
    an interrupt; None when no cache was opened."""
    if not _OPENED:
        return None
    return sum(len(c.indices) for f in sorted(_OPENED[-1].glob("chunk-*.npz")) if (c := _read_chunk(f)) is not None)


class StatsCache:
    """The resume cache of one run folder: :meth:`load` reads the images it holds (:class:`Cached`), :meth:`add`
    writes one through (in chunks of ``flush_every``); opening it calls :func:`remove_stale_temps`."""

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
        chunks = [c for f in sorted(self.dir.glob("chunk-*.npz"), key=_written_order)
                  if (c := _read_chunk(f)) is not None]
        if chunks:  # one run's chunks share their columns (with boundary PQ or without): those most images have
            held = Counter[frozenset[str]]()
            for c in chunks:
                held[frozenset(c.columns)] += len(c.indices)
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


#: the built-in evaluators as a resume line names them
_SHOWN = {"PQ": "PQ", "Analyses": "the analyses", "AP": "AP", "SemanticConfusion": "mIoU"}


def share_name(member: Any) -> str:
    """An evaluator's name in a resume line: the rules as the run asks for them (``--rules torchmetrics``: ``rules
    torchmetrics``, not the cache's key ``Rules@2:torchmetrics/7``), a built-in by what it measures, a user's
    evaluator by the key the cache keeps its shares under (its own ``name@version``, docs/api.md)."""
    if isinstance(member, RulesEvaluator):
        return "rules " + ",".join(member.rules)
    return _SHOWN.get(name_of(member), name_of(member)) if isinstance(member, BuiltIn) else cache_key_of(member)


def share_names(members: Iterable[Any]) -> dict[str, str]:
    """:func:`share_name` of each member, by its cache key."""
    return {cache_key_of(m): share_name(m) for m in members}


def _written_order(f: Path) -> tuple[int, str]:
    """A chunk's place among its folder's: by its number (an image cached again replaces itself), then by name."""
    seq = f.stem.rsplit("-", 1)[-1]
    return (int(seq) if seq.isdigit() else -1, f.name)


def _write_chunk(path: Path, items: list[tuple[int, Entry]]) -> None:
    arrays: dict[str, Any] = {"format": np.int64(CACHE_FORMAT), "index": np.array([i for i, _ in items], np.int64),
                              **results_to_columns([e[0] for _, e in items])}
    extras = [e[1] for _, e in items]
    if any(x is not None for x in extras):
        arrays["x_json"] = np.array([json.dumps(x) for x in extras])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _write(path, buf.getvalue())


def _read_chunk(path: Path) -> Cached | None:
    """The images of one chunk; None when unreadable or of another :data:`CACHE_FORMAT` (recomputed, never trusted)."""
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
    """Whether a chunk's columns are those of ``n`` images' results (:func:`~panbench.pq.result.results_to_columns`'
    keys), each field as long as its group's image column, whose values run from 0 below ``n`` and never decrease."""
    if frozenset(cols) not in (_KEYS, _KEYS | _BOUNDARY_KEYS):
        return False
    for k, img in cols.items():
        if k.endswith("_img") and len(img) and (int(img[0]) < 0 or int(img[-1]) >= n or (np.diff(img) < 0).any()):
            return False
    return all(g is not None and len(cols[k]) == len(cols[g + "_img"]) for k, g in column_groups(cols).items())


STATE = ".panbench"  # DIR/.panbench/<name>/: key.json and the part files of every process
_HELD: dict[Path, Any] = {}  # lock file -> its open file, for the predictions this process saves now


def results_name(prefix: str, model: str) -> str:
    """``<prefix>_<model>_results``: COCO's naming (``panoptic_test-dev2017_<method>_results``)."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9.-]+', '-', model).strip('-')}_results"


def segment_boxes(ids: np.ndarray, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``segments`` with COCO's ``area``, ``bbox`` (inclusive pixel extents) and ``iscrowd`` 0 of their pixels, and
    the model's ``score`` where a segment has one."""
    h, w = ids.shape
    seg_ids = np.array([s["id"] for s in segments], np.int64)
    if not len(seg_ids):
        return []
    lut = np.full(int(max(seg_ids.max(), ids.max())) + 1, len(seg_ids), np.int64)
    lut[seg_ids] = np.arange(len(seg_ids))
    k = lut[ids]  # segment index per pixel, len(seg_ids) for pixels of no listed segment
    n = len(seg_ids) + 1
    area = np.bincount(k.ravel(), minlength=n)
    rows = np.bincount((k * h + np.arange(h)[:, None]).ravel(), minlength=n * h).reshape(n, h) > 0
    cols = np.bincount((k * w + np.arange(w)[None, :]).ravel(), minlength=n * w).reshape(n, w) > 0
    out = []
    for j, s in enumerate(segments):
        if not area[j]:
            raise PanbenchError(f"internal: predicted segment {s['id']} has no pixels; please report")
        y0, x0 = int(rows[j].argmax()), int(cols[j].argmax())
        y1, x1 = h - 1 - int(rows[j][::-1].argmax()), w - 1 - int(cols[j][::-1].argmax())
        out.append({"id": int(s["id"]), "category_id": int(s["category_id"]), "iscrowd": 0,
                    "area": int(area[j]), "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1]})
        if "score" in s:
            out[-1]["score"] = float(s["score"])
    return out


class PredictionWriter:
    """One model's predictions on one image set, saved under ``root`` (docs/eval.md, "Saving predictions")."""

    def __init__(self, root: Path, prefix: str, model: str, key: str, samples: list[Any],
                 categories: list[dict[str, Any]]) -> None:
        self.root, self.key, self.samples, self.categories = Path(root), key, samples, categories
        self.name = results_name(prefix, model)
        self.png_dir = self.root / self.name
        self.json_path = self.root / f"{self.name}.json"
        self.state = self.root / STATE / self.name
        self.lock_file = self.root / STATE / f"{self.name}.lock"
        self.saved: set[int] = set()  # dataset indices whose prediction is on disk (set by load_saved)
        owner: dict[str, Any] = {}
        for s in samples:  # an image-info JSON may list x/1.jpg and y/1.jpg: one PNG would overwrite the other
            other = owner.setdefault(self.png_name(s), s)
            if other is not s:
                raise InputError(f"{s.image_path}: its prediction would be saved as {self.png_name(s)}, as that of "
                                 f"{other.image_path} (image {other.image_id}); give the images distinct file names")

    def png_name(self, sample: Any) -> str:
        return Path(sample.image_path.name).with_suffix(".png").name

    def claim(self) -> bool:
        """Take :attr:`lock_file` (an exclusive non-blocking ``flock``, once per process; docs/eval.md, "Saving
        predictions"): False when another run holds it; True, unheld, on a file system without locks."""
        if self.lock_file in _HELD:
            return True
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.lock_file, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                return False
            except OSError as e:
                f.close()
                if e.errno in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    return True
                raise
            # the file locked is still the one of that name (not removed by the run that released it)
            with suppress(FileNotFoundError):
                st, now = os.fstat(f.fileno()), os.stat(self.lock_file)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    break
            f.close()
        f.truncate(0)
        f.write(f"{socket.gethostname()} {os.getpid()}\n")  # who holds it, for the refusal of another run
        f.flush()
        _HELD[self.lock_file] = f
        return True

    def release(self) -> None:
        """Let go of :attr:`lock_file` (removed first, so that nothing else is left in DIR/.panbench)."""
        if (f := _HELD.pop(self.lock_file, None)) is not None:
            self.lock_file.unlink(missing_ok=True)
            f.close()

    def busy_error(self) -> PanbenchError:
        """The one-line refusal of a run whose predictions another run saves into DIR now."""
        try:
            host, pid = self.lock_file.read_text().split()
            who = f" (process {pid} on {host})"
        except (OSError, ValueError):
            who = ""
        return PanbenchError(f"{self.root}: another panbench run{who} is saving the predictions {self.name} into "
                             "it now; wait for it to finish, or pass another --save-predictions folder (nothing "
                             "was run)")

    def prepare(self, fresh: bool) -> None:
        """Make the folders; predictions of another run (another key) are refused unless ``fresh``."""
        key_file = self.state / "key.json"
        if key_file.is_file():
            other = json.loads(key_file.read_text()).get("key") != self.key
        else:
            other = self._finished()[1] not in (None, self.key)
        if other and not fresh:
            raise PanbenchError(f"{self.root}: holds predictions {self.name} of another run (other config, weights, "
                                "images or settings); pass --no-resume to replace them, or choose another "
                                "--save-predictions DIR")
        if fresh:
            for p in [*self.state.glob("part-*.jsonl"), self.json_path]:
                p.unlink(missing_ok=True)  # stale PNGs are overwritten; the JSON lists only this run's
        self.png_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(key_file, json.dumps({"key": self.key}).encode())

    def _finished(self) -> tuple[dict[Any, dict[str, Any]], str | None]:
        """The assembled JSON's entries, as the part files hold them, when it is this run's (else none), and its
        ``info.run_key`` (({}, None) when it is unreadable or names none)."""
        try:
            data = json.loads(self.json_path.read_text())
        except (OSError, ValueError):
            return {}, None
        info = data.get("info") if isinstance(data, dict) else None
        if not isinstance(info, dict) or info.get("run_key") != self.key:
            return {}, info.get("run_key") if isinstance(info, dict) else None
        images = {im["id"]: im for im in data.get("images", [])}
        return {a["image_id"]: {"image_id": a["image_id"], "file_name": a["file_name"],
                                "height": images[a["image_id"]]["height"], "width": images[a["image_id"]]["width"],
                                "image_file": images[a["image_id"]]["file_name"], "segments_info": a["segments_info"]}
                for a in data.get("annotations", []) if a.get("image_id") in images}, self.key

    def _entries(self) -> dict[Any, dict[str, Any]]:
        """Every saved image's entry by image id: the assembled JSON's (this run's), then the part files'."""
        out = self._finished()[0]
        for part in sorted(self.state.glob("part-*.jsonl")):
            for line in part.read_text().splitlines():
                with suppress(ValueError):  # a line that does not parse: that image is run again
                    e = json.loads(line)
                    out[e["image_id"]] = e
        return out

    def load_saved(self) -> set[int]:
        """The dataset indices whose PNG and entry are both on disk (they need not run again)."""
        entries = self._entries()
        self.saved = {i for i, s in enumerate(self.samples)
                      if s.image_id in entries and (self.png_dir / entries[s.image_id]["file_name"]).is_file()}
        return self.saved

    def write(self, sample: Any, ids: np.ndarray, segments: list[dict[str, Any]]) -> None:
        """Save one image: its PNG (atomically, COCO's id encoding), then its entry in this process's part file."""
        from PIL import Image

        name, png = self.png_name(sample), io.BytesIO()
        Image.fromarray(id2rgb(ids)).save(png, format="PNG", compress_level=1)
        atomic_write(self.png_dir / name, png.getvalue())
        h, w = ids.shape
        entry = {"image_id": sample.image_id, "file_name": name, "height": h, "width": w,
                 "image_file": sample.image_path.name, "segments_info": segment_boxes(ids, segments)}
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / f"part-{socket.gethostname()}-{os.getpid()}.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def finish(self, info: dict[str, Any]) -> Path:
        """Write the JSON of every image (rank 0, after every process has written its images)."""
        entries = self._entries()
        missing = [s.image_id for s in self.samples
                   if s.image_id not in entries or not (self.png_dir / entries[s.image_id]["file_name"]).is_file()]
        if missing:
            raise PanbenchError(f"{self.root}: the predictions of {len(missing)} image(s) are missing (e.g. image "
                                f"{missing[0]}), so no {self.json_path.name} was written; under torchrun on several "
                                "machines --save-predictions must be a folder they share; rerun to complete it")
        es = [(s.image_id, entries[s.image_id]) for s in self.samples]
        images = [{"id": i, "file_name": e["image_file"], "height": e["height"], "width": e["width"]} for i, e in es]
        annotations = [{"image_id": i, "file_name": e["file_name"], "segments_info": e["segments_info"]} for i, e in es]
        data = {"info": info, "images": images, "annotations": annotations, "categories": self.categories}
        atomic_write(self.json_path, json.dumps(data).encode())
        self.clean_up()
        return self.json_path

    def clean_up(self) -> None:
        """Remove the staging folder of this run, its lock (:meth:`release`) and ``DIR/.panbench`` when empty."""
        shutil.rmtree(self.state, ignore_errors=True)
        self.release()
        with suppress(OSError):
            self.state.parent.rmdir()  # only when empty: another model's staging may be under way


def prediction_writer(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                      key: str) -> PredictionWriter | None:
    """The writer of ``--save-predictions`` (None without it), claimed, prepared and its ``saved`` set read."""
    if opts.save_predictions is None:
        return None
    writer = _writer(spec.name, dataset, opts.save_predictions, key)
    if dist_any(os.environ.get("RANK", "0") == "0" and not writer.claim()):  # rank 0 of the job claims
        raise writer.busy_error()
    if local_rank() == 0:
        writer.prepare(fresh=not opts.resume)
    barrier()
    check_shared(writer)
    writer.load_saved()
    return writer


def _writer(model: str, dataset: PanopticDataset, root: Path, key: str) -> PredictionWriter:
    c = dataset.categories  # the JSON's categories
    cats = [{"id": i, "name": n, "isthing": int(t)} for i, n, t in zip(c.ids, c.names, c.isthing)]
    prefix = getattr(dataset, "prefix", None) or dataset.ann_file.stem  # panoptic_val2017, panoptic_test-dev2017
    return PredictionWriter(root, prefix, model, key, dataset.samples, cats)


def claim_up_front(models: list[str], dataset: PanopticDataset, root: Path) -> None:
    """As ``eval --save-predictions`` starts: each model's lock taken by rank 0, or the run refused in one line."""
    if os.environ.get("RANK", "0") != "0":
        return
    for model in models:
        writer = _writer(model, dataset, root, "")
        if not writer.claim():
            raise writer.busy_error()


def check_shared(writer: PredictionWriter) -> None:
    """Under torchrun: every rank sees rank 0's ``--save-predictions`` folder, else each rank stops in one line."""
    if dist_info()[1] == 1:
        return
    mark = writer.state / f"seen-{uuid.uuid4().hex}"  # a fresh name: no stale mark of another job, no cached lookup
    atomic_write(mark, b"")
    blind = not all((writer.state / m).is_file() for m in dist_gather(mark.name))  # the gather: every mark is written
    stop = dist_any(blind)  # and the barrier before the marks go
    mark.unlink(missing_ok=True)
    if stop:
        raise PanbenchError(f"{writer.root}: --save-predictions under torchrun on several machines needs a folder "
                            "that every rank sees (a shared file system), and this one is not shared; choose a "
                            "shared folder (nothing was run)")


def predictions_info(spec: ModelSpec, opts: EvalOptions, key: str) -> dict[str, Any]:
    """The ``info`` block of a saved prediction JSON: what made it."""
    return {"description": f"{spec.name} predictions ({opts.postprocess.label()}) written by panbench",
            "model": spec.name, "postprocess": opts.postprocess.label(), "cfg_options": opts.cfg_options,
            "run_key": key, "date": now_iso(), "command": opts.command}


def unsaved_error(writer: PredictionWriter, e: PanbenchError | OSError, record: Path) -> PanbenchError:
    """The one-line error of a predictions JSON that could not be written, after the record was."""
    what = str(e) if isinstance(e, PanbenchError) else (f"{writer.json_path}: could not be written "
                                                       f"({e.strerror or e}); free space or choose another "
                                                       "--save-predictions folder, and rerun")
    return PanbenchError(f"{what} (the scores are in {record}; a rerun takes the cached images)")
