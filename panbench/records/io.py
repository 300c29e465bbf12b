"""Building, writing and reading records: :func:`record_run`, the one way a run becomes a written record (``eval``
and ``score --name``), atomic writes (an interrupted write never leaves half a file), the JSON record and its
``runs.csv`` row, and :func:`load_record`, the one place that reads older records (schema 1 and records written
before a field was kept) into today's :class:`RunRecord`."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import itertools
import json
import os
import re
import shlex
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from panbench.errors import InputError
from panbench.interrupts import sigint_deferred
from panbench.locks import exclusive
from panbench.pq.matching import METRIC_KEYS
from panbench.records.provenance import git_commit, now_iso, versions
from panbench.records.rows import CSV_FIELDS, SEMANTIC_KEYS, csv_row
from panbench.records.schema import RECORD_FIELDS, SCHEMA_VERSION, RunRecord

if TYPE_CHECKING:  # the ground truth score --name read (its reader: panbench.pq.coco_format)
    from panbench.pq.coco_format import GroundTruthJSON


def make_record(res: dict[str, Any], **fields: Any) -> RunRecord:
    """The record of a scored run: ``res`` (``PanopticAccumulator.evaluate()``) gives the metric
    fields, ``fields`` the others (every :class:`RunRecord` field but those and ``record``)."""
    given = {"schema": SCHEMA_VERSION, "date": now_iso(), "n_images": res["n_images"],
             "metrics": {k: res[k] for k in METRIC_KEYS}, "semantic": {k: res[k] for k in SEMANTIC_KEYS},
             "n_categories": res["n_categories"], "per_class": res["per_class"],
             **({"unlisted_gt": res["unlisted_gt"]} if "unlisted_gt" in res else {}), **fields}
    if unknown := set(given) - set(RECORD_FIELDS):
        raise TypeError(f"make_record: unknown record fields {sorted(unknown)}")
    return RunRecord(**given, written=frozenset(given))


def record_run(results_dir: Path | None, res: dict[str, Any], analysis: Any = None,
               show: Callable[[RunRecord], None] | None = None, **fields: Any) -> RunRecord:
    """The record of a scored run (:func:`make_record`), written with ``analysis`` beside it (:func:`write_record`;
    ``results_dir`` None: not written, as on a rank other than 0) and returned as written; ``show`` is handed it
    before it is written, so that a write that fails loses none of the numbers."""
    rec = make_record(res, **fields)
    if show is not None:
        show(rec)
    return rec if results_dir is None else write_record(results_dir, rec, analysis=analysis)


def external_fields(name: str, dataset: str, truth: GroundTruthJSON, gt_dir: str | Path, pred_json: str | Path,
                    pred_dir: str | Path, seconds: float, fingerprint: str | None = None) -> dict[str, Any]:
    """The record fields (all but the metrics and the analyses) of predictions made elsewhere and scored with
    ``panbench score --name``: ``name`` the system, its predictions ``pred_json``/``pred_dir`` scored against the
    ground truth ``truth`` (its PNGs in ``gt_dir``; ``fingerprint``: of those images) in ``seconds``."""
    doc = truth.data
    provenance = {
        "predictions": {"json": str(Path(pred_json).resolve()), "dir": str(Path(pred_dir).resolve())},
        "dataset": {"ann_file": str(truth.path.resolve()), "png_dir": str(Path(gt_dir).resolve()),
                    **({"fingerprint": fingerprint} if fingerprint else {})},
        "versions": versions(()), "git_commit": git_commit(),  # scoring runs no model: no model stack
        "category_names": {str(c["id"]): c.get("name", str(c["id"])) for c in doc.get("categories", [])
                           if isinstance(c, dict)},
    }
    return dict(model=name, framework="external", architecture="external", backbone="?", dataset=dataset,
                postprocess="external", fusion=None, published={}, delta_to_published={}, published_source=None,
                params=None, flops=None, device="external", world_size=1, batch_size=None, largest_batch=None,
                timings={"scoring_s": seconds, "images_per_s": None}, memory={}, provenance=provenance)


def atomic_write(path: Path, data: bytes, tmp: Path | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file (``tmp``, in the same folder; default
    ``<path>.tmp<PID>``), fsync and ``os.replace``: never half a file.  An error names ``path``, not the temporary
    file; a folder at ``path`` is refused in one line (move it away)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)  # a full disk or a folder in the way: no stray temporary file
        if not isinstance(e, OSError):
            raise
        if path.is_dir():
            raise folder_in_the_way(path) from e
        if e.filename is not None and os.fspath(e.filename) == os.fspath(tmp):  # the file the user knows, not its tmp
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def folder_in_the_way(path: Path) -> InputError:
    """The one-line refusal of a folder where panbench writes (or reads and rewrites) the file ``path``."""
    return InputError(f"{path}: a folder where panbench writes a file; move it away and run this command again")


def unwritable(folder: str | Path) -> str | None:
    """Why ``folder`` cannot be made or written into, or None: the nearest part of it that exists must be a
    folder in which a file can be created (probed by creating and removing one, which holds for root, read-only
    mounts and pseudo file systems alike; errors found only when writing, such as a full disk, are not seen)."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".panbench-probe-", dir=probe)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return f"no write permission on {probe}"
        return f"a file cannot be created in {probe}: {e.strerror}"
    os.close(fd)
    os.unlink(name)
    return None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode())


def record_path(results_dir: Path, model: str, dataset: str, date: str, folder: str = "runs") -> Path:
    """``results/runs/<date>_<model>_<dataset>.json`` (``folder``: ``speed`` for the speed records)."""
    stamp = date.replace(":", "").replace("-", "").replace("+0000", "Z")
    return results_dir / folder / f"{stamp}_{_record_stem(model, dataset)}.json"


def _record_stem(model: str, dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}_{dataset}").strip("_")


def record_files(results_dir: Path, model: str, dataset: str) -> list[Path]:
    """The record files :func:`write_record` wrote for ``model`` on ``dataset`` (the ``dataset`` a record holds:
    ``demo+fog-3`` for a corrupted run) under ``results_dir``, oldest first: the names of :func:`record_path`
    (and their ``~k`` twins, in the order of ``k``)."""
    name = re.compile(r"(\d{8}T\d{6}Z?)_" + re.escape(_record_stem(model, dataset)) + r"(?:~(\d+))?\.json")
    found = [(m, p) for p in (results_dir / "runs").glob("*.json") if (m := name.fullmatch(p.name))]
    return [p for m, p in sorted(found, key=lambda mp: (mp[0][1], int(mp[0][2] or 0), mp[1].name))]


def write_record(results_dir: Path, record: RunRecord, analysis: Any = None) -> RunRecord:
    """Write the run's JSON record under :func:`record_path`'s name or its first free ``~k`` twin (docs/eval.md, "The
    result record"), ``analysis`` saved beside it, and append its row to ``runs.csv``; returns it as written."""
    def named(path: Path) -> RunRecord:  # the record as it reads under the name ``path``
        npz = {"analysis_file": str(_analysis_path(path).relative_to(results_dir))} if analysis is not None else {}
        return record.with_fields(**npz, record=str(path.relative_to(results_dir)))

    def write(tmp: Path, path: Path) -> None:
        atomic_write_text(tmp, json.dumps(named(path).to_json(), indent=1, default=str) + "\n")

    written = named(_claim_names(record_path(results_dir, record.model, record.dataset, record.date), write,
                                 results_dir / "runs.csv.lock", analysis, claimed=_WRITTEN.append))
    append_csv(results_dir / "runs.csv", csv_row(written))
    return written


_WRITTEN: list[Path] = []  # the records this process wrote, in order: each noted as its name is claimed


def records_written() -> int:
    """How many records this process has written: a Ctrl-C line's count of the models finished (a record whose
    name is claimed is counted before a Ctrl-C can land, :func:`_claim_names`)."""
    return len(_WRITTEN)


def _analysis_path(record_file: Path) -> Path:
    return record_file.with_name(record_file.stem + ".analysis.npz")


def _temp_beside(path: Path, suffix: str) -> Path:
    """A fresh hidden temporary name beside ``path`` (in its folder, so that it can be linked into place), ending
    ``.tmp<PID>``: the globs of records (``*.json``) and analysis files (``*.analysis.npz``) never see it."""
    return path.with_name(f".{path.stem}{suffix}.{uuid.uuid4().hex[:12]}.tmp{os.getpid()}")


def _candidates(first: Path) -> Iterator[Path]:
    yield first
    for k in itertools.count(1):
        yield first.with_name(f"{first.stem}~{k}.json")


RECORDS_LOCK_S = 120.0  # a record's name or a row of runs.csv: milliseconds of work under the lock

# os.link's errors on a file system without hard links (FAT, some network and FUSE file systems)
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _claim_names(first: Path, write: Callable[[Path, Path], None], lock_path: Path, analysis: Any = None,
                 claimed: Callable[[Path], None] | None = None) -> Path:
    """Write a file under the first free name of ``first`` and its ``~1``, ``~2``, ... twins and return that name:
    ``write(tmp, path)`` writes it into a temporary file (``analysis`` saved beside it too), each name claimed with
    ``os.link`` (atomic; fails where the name exists), else under an exclusive ``flock`` of ``lock_path``.
    The analysis file, the record and ``claimed(path)`` are claimed in one step (:func:`_claim`): a Ctrl-C finds all
    three done or none."""
    first.parent.mkdir(parents=True, exist_ok=True)
    npz_tmp = _temp_beside(first, ".analysis.npz") if analysis is not None else None
    tmp = _temp_beside(first, first.suffix)
    try:
        if analysis is not None:
            analysis.save(npz_tmp)
        for path in _candidates(first):
            write(tmp, path)
            if linked := _claim(_link, tmp, path, npz_tmp, claimed):
                return path
            if linked is None:
                break
        with exclusive(lock_path, RECORDS_LOCK_S, "naming a record"):  # no hard links here
            for path in _candidates(first):
                npz = _analysis_path(path)
                if path.exists() or (npz_tmp is not None and npz.exists()):
                    continue
                write(tmp, path)
                _claim(_replace, tmp, path, npz_tmp, claimed)
                return path
        raise AssertionError("unreachable: the candidate names never run out")
    finally:
        for t in filter(None, (npz_tmp, tmp)):
            t.unlink(missing_ok=True)


def _claim(link: Callable[[Path, Path], bool | None], tmp: Path, path: Path, npz_tmp: Path | None,
           claimed: Callable[[Path], None] | None) -> bool | None:
    """``path``'s analysis file (from ``npz_tmp``), then ``path`` itself (from ``tmp``) claimed with ``link`` (True:
    claimed; False: taken; None: no hard links here), the analysis file taken back where the record is not claimed,
    and ``claimed(path)`` where it is: one step, Ctrl-C deferred over it."""
    with sigint_deferred():
        npz = _analysis_path(path)
        if npz_tmp is not None and not (done := link(npz_tmp, npz)):
            return done
        done = False
        try:
            done = link(tmp, path)
        finally:
            if npz_tmp is not None and not done:
                npz.unlink(missing_ok=True)
        if done and claimed is not None:
            claimed(path)
    return done


def write_new(first: Path, content: Callable[[Path], bytes]) -> Path:
    """``content(path)`` written under ``first`` or its first ``~k`` twin not taken yet, claimed as a record's name
    is (:func:`_claim_names`, without an analysis file): never over another file, never half a file; returns the
    path written (the speed records and the robustness summaries)."""
    return _claim_names(first, lambda tmp, path: atomic_write(tmp, content(path)), first.parent / ".names.lock")


def _replace(src: Path, dst: Path) -> bool:
    os.replace(src, dst)
    return True


def _link(src: Path, dst: Path) -> bool | None:
    """Whether ``dst`` now names ``src``'s file (a hard link): False when ``dst`` exists (it is left as it is),
    None on a file system without hard links."""
    try:
        os.link(src, dst)
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno in _NO_HARD_LINKS:
            return None
        raise
    return True


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append one row atomically (the whole file rewritten through a temporary file), under an exclusive ``flock`` of
    ``<path>.lock`` (:data:`RECORDS_LOCK_S`); a file written with other columns (an older panbench) is rewritten under
    today's columns plus its own others, so that every row stays under its own header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path.with_name(path.name + ".lock"), RECORDS_LOCK_S, f"adding a row to {path.name}"):
        old = _csv_text(path)
        have = next(csv.reader([old.splitlines()[0]])) if old else []
        fields = CSV_FIELDS + [c for c in have if c not in CSV_FIELDS]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        if have != fields:
            w.writeheader()
            w.writerows(csv.DictReader(io.StringIO(old)))
            old = ""
        w.writerow(row)
        atomic_write_text(path, old + buf.getvalue())


def _csv_text(path: Path) -> str:
    """The text of the table ``path`` (``runs.csv``), '' where there is none; a damaged one (no text, or a first line
    with none of :data:`CSV_FIELDS`) is moved aside as ``runs.csv.damaged``, said in one line, and '' returned: a new
    table starts with the run's row (every run's numbers are in its record under runs/)."""
    if not path.exists():
        return ""
    if path.is_dir():
        raise folder_in_the_way(path)
    try:
        text = path.read_text()
        header = next(csv.reader([text.splitlines()[0]])) if text.strip() else list(CSV_FIELDS)
        if not set(header) & set(CSV_FIELDS):
            raise ValueError("its first line names none of panbench's columns")
        return text if text.strip() else ""
    except (UnicodeDecodeError, csv.Error, ValueError) as e:
        names = (path.with_name(f"{path.name}.damaged{k or ''}") for k in itertools.count())
        aside = next(p for p in names if not p.exists())
        os.replace(path, aside)  # an earlier damaged one kept too
        note_skipped(f"{path}: not panbench's table of runs ({e}); kept as {aside.name}, a new {path.name} begun with "
                     "this run's row (each run's numbers are in its record under runs/)")
        return ""


def _command_selection(command: str, n_images: int) -> dict[str, Any]:
    """``selection`` read from a recorded command line (``--limit N``, ``--subset FILE``)."""
    try:
        cmd = shlex.split(command)  # written with shlex.join (records before that: joined with spaces)
    except ValueError:
        cmd = command.split()
    opts = {o[2:]: cmd[i + 1] for i, o in enumerate(cmd[:-1]) if o in ("--limit", "--subset")}
    limit = opts.get("limit")
    return {"limit": int(limit) if limit is not None and limit.isdigit() else limit, "subset": opts.get("subset"),
            "images": n_images}


# the blocks every record holds (a null one reads as empty)
BLOCKS = ("metrics", "semantic", "n_categories", "per_class", "published", "delta_to_published", "timings", "memory",
          "provenance")


#: the sources of the registered models' published numbers and the rules each computed them under (the MMDetection
#: zoo's CocoPanopticMetric and detectron2's and DETR's evaluations run panopticapi)
_SOURCE_RULES = (("tue-mps/eomt", "eomt"), ("MMDetection model zoo", "panopticapi"),
                 ("facebookresearch/", "panopticapi"), ("SHI-Labs/", "panopticapi"),
                 ("original release", "panopticapi"))


def rules_of_source(source: str) -> str | None:
    """The rules of a published number by its source (None: a source panbench does not register)."""
    return next((rule for part, rule in _SOURCE_RULES if part in source), None)


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields of a record as today's schema holds them: a record without ``framework`` ran ``mmdet``
    (``external`` for ``score --name``), one without ``selection`` ran what its command line says, one without
    ``published_source`` has the model zoo's numbers (an mmdet model) or the original release's (an hf: model), one
    with published numbers and no ``published_rules`` has those of its source (:data:`_SOURCE_RULES`; unknown for a
    source panbench does not register), an hf: run without ``provenance.pipeline`` ran transformers' pipeline (its
    published numbers, the originals' pipeline's), and a speed of 0 was not measured."""
    rec = {k: ({} if v is None and k in BLOCKS else v) for k, v in raw.items()}
    external = rec.get("architecture") == "external"
    if not rec.get("framework"):
        rec["framework"] = "external" if external else "mmdet"
    if "selection" not in rec and not external:
        rec["selection"] = _command_selection((rec.get("provenance") or {}).get("command") or "",
                                              rec.get("n_images", 0))
    if not rec.get("published_source") and any(v is not None for v in (rec.get("published") or {}).values()):
        rec["published_source"] = ("MMDetection model zoo" if rec["framework"] == "mmdet"
                                   else "original release (docs/huggingface.md)")
    if "published_rules" not in rec and any(v is not None for v in (rec.get("published") or {}).values()):
        rec["published_rules"] = rules_of_source(str(rec.get("published_source")))
    if rec["framework"] == "transformers" and "pipeline" not in (rec.get("provenance") or {}):
        # an hf: run from before --pipeline ran transformers' stock pipeline; the published numbers, the originals'
        rec["provenance"] = {**(rec.get("provenance") or {}), "pipeline": "transformers"}
        if "published_pipeline" not in rec and any(v is not None for v in (rec.get("published") or {}).values()):
            rec["published_pipeline"] = "original"
    timings = rec.get("timings") or {}
    if isinstance(timings.get("images_per_s"), int | float) and not timings["images_per_s"] > 0:
        rec["timings"] = {**timings, "images_per_s": None}
    return rec


def load_record(path: Path, fix: str | None = None) -> RunRecord:
    """The record in ``path`` (:func:`migrate`); a file that is not a result record (unreadable, or without ``model``
    and ``metrics`` with its ``PQ``) is a one-line error naming it and ``fix`` (default: move it out)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raw = e
    if not isinstance(raw, dict) or (why := _not_a_record(raw)):
        why = f"({raw})" if isinstance(raw, Exception) else why if isinstance(raw, dict) else "(not a JSON object)"
        raise InputError(f"{path}: not a panbench result record {why}; " + (fix or f"move it out of {path.parent} "
                         "(it holds the records of `panbench eval` and `score --name` only)"))
    return record_from_json(raw)


def _not_a_record(raw: dict[str, Any]) -> str:
    """Why a JSON object is not a result record ('' if it is one)."""
    if missing := [k for k in ("model", "metrics") if k not in raw]:
        return f"(no {' and '.join(repr(k) for k in missing)})"
    metrics = raw["metrics"]
    if not isinstance(metrics, dict) or not isinstance(metrics.get("PQ"), int | float):
        return "('metrics' without a number 'PQ')"
    kinds = {"model": str, "dataset": str, "date": str, "n_images": int, "per_class": dict, "provenance": dict}
    if wrong := [k for k, kind in kinds.items() if raw.get(k) is not None and not isinstance(raw[k], kind)]:
        return f"({', '.join(repr(k) for k in wrong)} of another type than a record's)"
    wrong = [k for k in METRIC_KEYS if k in metrics and not isinstance(metrics[k], int | float | None)]
    return f"('metrics' with {', '.join(map(repr, wrong))} not a number)" if wrong else ""


def record_from_json(raw: dict[str, Any]) -> RunRecord:
    """The record of a JSON object as read from a file (:func:`migrate`; no ``schema``: schema 1)."""
    return RunRecord.from_json({"schema": 1, **migrate(raw)})


def load_records(results_dir: Path) -> list[RunRecord]:
    """Every JSON record under ``results_dir/runs`` (:func:`load_record`), oldest first; a damaged file, or a damaged
    per-image analysis file of a run, left out with one line on stderr (:func:`note_skipped`)."""
    out = []
    for p in sorted((Path(results_dir) / "runs").glob("*.json")):
        try:
            out.append(_without_damaged_analysis(Path(results_dir), load_record(p)))
        except InputError as e:
            note_skipped(str(e))
    return sorted(out, key=lambda r: r.date)


_SKIPPED: set[str] = set()  # the lines note_skipped printed in this command


def note_skipped(message: str) -> None:
    """One line on stderr, ``panbench: skipped <message>`` (the message names the file and the fix), once per
    command however many times its file is read (``panbench.cli.main`` empties :data:`_SKIPPED` for each)."""
    if message not in _SKIPPED:
        _SKIPPED.add(message)
        print(f"panbench: skipped {message}", file=sys.stderr, flush=True)


def _without_damaged_analysis(results_dir: Path, rec: RunRecord) -> RunRecord:
    """``rec``, or ``rec`` without its per-image analysis file (one line on stderr) where that is not one as
    :meth:`~panbench.analysis.collect.AnalysisSet.save` writes it (only its table of contents is read)."""
    import zipfile

    if not rec.analysis_file or not (path := results_dir / rec.analysis_file).is_file():
        return rec
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
        missing = [n for n in ("format.npy", "n_categories.npy", "image_ids.npy") if n not in names]
        why = f"no {', '.join(m[:-4] for m in missing)} array" if missing else None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
        why = str(e) or type(e).__name__
    if why is None:
        return rec
    note_skipped(f"{path}: not a panbench per-image analysis file ({why}); {rec.model}'s run is read without its "
                 "per-image analyses; rerun its `panbench eval` (or `score --name`) to write it again")
    return dataclasses.replace(rec, analysis_file=None)

