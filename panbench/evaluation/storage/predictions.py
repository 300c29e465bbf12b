"""``eval --save-predictions DIR``: a model's predictions in the COCO panoptic format, as panopticapi, ``panbench
score`` and COCO's test-dev server read them (mmdet's ``outfile_prefix``, detectron2's inference output).

For one model on a dataset whose annotation file is ``<stem>.json`` (``panoptic_val2017``, or
``panoptic_test-dev2017`` for test-dev's image info), DIR gets, named as COCO's upload page asks::
    <prefix>_<model>_results.json     images, annotations (segments_info: id, category_id, iscrowd 0,
                                      area, bbox), categories of the dataset
    <prefix>_<model>_results/*.png    one id map per image (R + 256 G + 256^2 B), named after the image

Every process (forked CPU processes, torchrun ranks) writes the PNGs of its images and appends their ``segments_info``
to its own part file under ``DIR/.panbench/<name>/``; rank 0 assembles the JSON once every image is there, and refuses
to write one that lacks an image. Until then the part files stay: a resumed run re-runs only the images whose
prediction (PNG) is not saved yet, and ``key.json`` beside them names the run (the resume cache's key), so that
predictions of another run are never mixed in. Once the JSON is written the staging folder is removed
(``DIR/.panbench`` too when nothing else is in it); a rerun of the same run reads the JSON (``info.run_key``).

While it saves, a run holds ``DIR/.panbench/<name>.lock`` (a ``flock`` rank 0 takes as eval starts, kept until
the JSON is written or the process ends; the forked CPU processes inherit it): a second run saving the same
predictions into DIR then is refused in one line (:meth:`PredictionWriter.claim`); other models share DIR.

:func:`prediction_writer` makes a run's writer, its folders made and checked once per node (and, under torchrun,
seen by every rank); :func:`predictions_info` is the ``info`` block of its JSON, and :func:`unsaved_error` the
one-line error of a JSON that could not be written after the record was.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.datasets import PanopticDataset
from panbench.data.synth import id2rgb
from panbench.errors import InputError, PanbenchError
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.runtime import barrier, dist_any, dist_gather, dist_info, local_rank
from panbench.models.registry import ModelSpec
from panbench.records.io import atomic_write
from panbench.records.provenance import now_iso

STATE = ".panbench"  # DIR/.panbench/<name>/: key.json and the part files of every process
_HELD: dict[Path, Any] = {}  # lock file -> its open file, for the predictions this process saves now


def results_name(prefix: str, model: str) -> str:
    """``<prefix>_<model>_results``: COCO's naming (``panoptic_test-dev2017_<method>_results``)."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9.-]+', '-', model).strip('-')}_results"


def segment_boxes(ids: np.ndarray, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``segments`` with ``area`` (pixels) and ``bbox`` ([x, y, width, height], COCO's, inclusive
    pixel extents) of each segment's pixels in the id map ``ids``; ``iscrowd`` 0."""
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
    return out


def encode_png(ids: np.ndarray) -> bytes:
    """An id map as an RGB PNG (``id = R + 256 G + 256^2 B``, COCO's encoding)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(id2rgb(ids)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class PredictionWriter:
    """One model's predictions on one image set, saved under ``root`` (see the module docstring)."""

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
        """Take :attr:`lock_file` (an exclusive ``flock``, non-blocking): False when another run holds it.  Held
        until :meth:`release` or the end of this process and those forked from it (after a kill too); this process
        takes it once.  Not held on a file system without locks, where the run goes on."""
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
            try:  # the file locked is still the one of that name (not removed by the run that released it)
                st, now = os.fstat(f.fileno()), os.stat(self.lock_file)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    break
            except FileNotFoundError:
                pass
            f.close()
        f.truncate(0)
        f.write(f"{socket.gethostname()} {os.getpid()}\n")  # who holds it, for the refusal of another run
        f.flush()
        _HELD[self.lock_file] = f
        return True

    def release(self) -> None:
        """Let go of :attr:`lock_file` (removed first, so that nothing else is left in DIR/.panbench)."""
        f = _HELD.pop(self.lock_file, None)
        if f is not None:
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
        """Make the folders (once per node, before the other ranks read them).  Predictions of another
        run (another key) are refused unless ``fresh`` (``--no-resume``), which starts afresh."""
        key_file = self.state / "key.json"
        if not key_file.is_file() and self.json_path.is_file():
            done = self._finished_key()
            if done is not None and done != self.key and not fresh:
                raise PanbenchError(f"{self.root}: holds predictions {self.name} of another run (other config, "
                                    "weights, images or settings); pass --no-resume to replace them, or choose "
                                    "another --save-predictions DIR")
        if key_file.is_file() and json.loads(key_file.read_text()).get("key") != self.key:
            if not fresh:
                raise PanbenchError(f"{self.root}: holds predictions {self.name} of another run (other config, "
                                    "weights, images or settings); pass --no-resume to replace them, or choose "
                                    "another --save-predictions DIR")
        if fresh:
            for p in [*self.state.glob("part-*.jsonl"), self.json_path]:
                p.unlink(missing_ok=True)  # stale PNGs are overwritten; the JSON lists only this run's
        self.png_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(key_file, json.dumps({"key": self.key}).encode())

    def mark(self, token: str) -> Path:
        """Leave a mark named ``token`` in the state folder (torchrun: each rank checks that it sees every
        rank's mark, i.e. that all ranks share the folder rank 0 assembles the JSON from)."""
        path = self.state / f"seen-{token}"
        atomic_write(path, b"")
        return path

    def sees(self, tokens: list[str]) -> bool:
        """Whether the marks of all ``tokens`` are in this process's view of the folder."""
        return all((self.state / f"seen-{t}").is_file() for t in tokens)

    def _finished_key(self) -> str | None:
        """The ``run_key`` of the assembled JSON (None when it is unreadable or names none)."""
        try:
            return (json.loads(self.json_path.read_text()).get("info") or {}).get("run_key")
        except (OSError, ValueError, AttributeError):
            return None

    def _finished_entries(self) -> dict[Any, dict[str, Any]]:
        """The entries of the assembled JSON when it is this run's (``info.run_key``), as the part files hold them."""
        try:
            data = json.loads(self.json_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or (data.get("info") or {}).get("run_key") != self.key:
            return {}
        images = {im["id"]: im for im in data.get("images", [])}
        return {a["image_id"]: {"image_id": a["image_id"], "file_name": a["file_name"],
                                "height": images[a["image_id"]]["height"], "width": images[a["image_id"]]["width"],
                                "image_file": images[a["image_id"]]["file_name"], "segments_info": a["segments_info"]}
                for a in data.get("annotations", []) if a.get("image_id") in images}

    def _entries(self) -> dict[Any, dict[str, Any]]:
        """Every saved image's annotation entry, by image id (the last line of a cut-off write is skipped):
        the assembled JSON's when it is this run's, then the part files'."""
        out: dict[Any, dict[str, Any]] = self._finished_entries() if self.json_path.is_file() else {}
        for part in sorted(self.state.glob("part-*.jsonl")):
            for line in part.read_text().splitlines():
                try:
                    e = json.loads(line)
                except ValueError:  # a line cut by a kill: that image is run again
                    continue
                out[e["image_id"]] = e
        return out

    def load_saved(self) -> set[int]:
        """The dataset indices whose PNG and entry are both on disk (they need not run again)."""
        entries = self._entries()
        self.saved = {i for i, s in enumerate(self.samples)
                      if s.image_id in entries and (self.png_dir / entries[s.image_id]["file_name"]).is_file()}
        return self.saved

    def write(self, sample: Any, ids: np.ndarray, segments: list[dict[str, Any]]) -> None:
        """Save one image: its PNG (atomically), then its entry in this process's part file."""
        name = self.png_name(sample)
        atomic_write(self.png_dir / name, encode_png(ids))
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
        images, annotations = [], []
        for s in self.samples:
            e = entries[s.image_id]
            images.append({"id": s.image_id, "file_name": e["image_file"], "height": e["height"],
                           "width": e["width"]})
            annotations.append({"image_id": s.image_id, "file_name": e["file_name"],
                                "segments_info": e["segments_info"]})
        data = {"info": info, "images": images, "annotations": annotations, "categories": self.categories}
        atomic_write(self.json_path, json.dumps(data).encode())
        self.clean_up()
        return self.json_path

    def clean_up(self) -> None:
        """Remove the staging folder of this run and its lock (:meth:`release`), and ``DIR/.panbench`` when
        nothing else is in it."""
        import shutil

        shutil.rmtree(self.state, ignore_errors=True)
        self.release()
        try:
            self.state.parent.rmdir()  # only when empty: another model's staging may be under way
        except OSError:
            pass


def prediction_writer(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                      key: str) -> PredictionWriter | None:
    """The writer of ``--save-predictions`` (None without it), claimed by rank 0 (every rank stops in one line
    when another run holds it), its folders made and checked once per node; its ``saved`` set holds the images
    whose prediction an earlier run of the same key saved."""
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
    """As ``eval --save-predictions`` starts: each model's lock taken by rank 0 (:meth:`PredictionWriter.claim`),
    or the run refused in one line when another run saves the same predictions into ``root`` now."""
    if os.environ.get("RANK", "0") != "0":
        return
    for model in models:
        writer = _writer(model, dataset, root, "")
        if not writer.claim():
            raise writer.busy_error()


def check_shared(writer: PredictionWriter) -> None:
    """Under torchrun, before any image runs: every rank sees the folder of ``--save-predictions`` that
    rank 0 sees (rank 0 assembles the JSON from every rank's files); else each rank stops in one line."""
    if dist_info()[1] == 1:
        return
    import uuid

    mark = writer.mark(uuid.uuid4().hex)  # a fresh name: no stale mark of another job, no cached lookup
    blind = not writer.sees(dist_gather(mark.name[len("seen-"):]))  # the gather: every mark is written
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
