"""The paired difference of runs on the same images: the one rule of ``table --ci``, the verdict and ``compare``."""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis import AnalysisSet, RunSums, ScoreSums, paired_bootstrap
from panbench.analysis.bootstrap import too_few
from panbench.analysis.paired import PAIRED_COLUMNS, SparseRun, paired_sparse, threshold_rows
from panbench.analysis.scores import threshold_sums
from panbench.errors import PanbenchError
from panbench.pq.matching import CategoryTable
from panbench.records.io import note_skipped
from panbench.records.schema import RunRecord
from panbench.reporting.labels import fingerprint, model_label, run_label, settings, short_label


def analysis_path(results_dir: Path, r: RunRecord) -> Path | None:
    """The run's per-image analysis file, where the record names one and it exists."""
    if not r.analysis_file:
        return None
    p = Path(results_dir) / r.analysis_file
    return p if p.is_file() else None


def ann_file(r: RunRecord) -> str | None:
    """The run's annotation file (``provenance.dataset.ann_file``), if recorded."""
    return (r.provenance.get("dataset") or {}).get("ann_file")


def isthing_of(r: RunRecord, n_categories: int) -> list[bool] | None:
    """The thing flag of each of the run's ``n_categories`` categories, from its annotation file; else None."""
    ann = ann_file(r)
    flags = _isthing(str(ann)) if ann and Path(ann).is_file() else None
    return list(flags) if flags is not None and len(flags) == n_categories else None


@functools.lru_cache(maxsize=8)
def _isthing(ann: str) -> tuple[bool, ...] | None:
    """The thing flags of an annotation file's categories (read once per file: COCO's is large)."""
    from panbench.pq.coco_format import read_json
    try:
        doc = read_json(ann, "ground-truth JSON", scan=True)  # its segments_info kept packed: only categories read
        return tuple(CategoryTable.from_coco(doc.get("categories", [])).isthing)
    except (PanbenchError, KeyError, TypeError, ValueError, AttributeError):
        return None


def pair_key(r: RunRecord) -> tuple[str | None, int]:
    """What two runs on the same images share: the dataset fingerprint and the image count."""
    return fingerprint(r), r.n_images


def same_images(a: RunRecord, b: RunRecord) -> bool:
    """Whether two runs scored the same images: the same dataset fingerprint and image count (as :func:`pick_pair`
    and ``compare`` pair them; an annotation file's path, relative or absolute, says nothing), or, for records
    without a fingerprint, the same annotation file."""
    if fingerprint(a) and fingerprint(b):
        return pair_key(a) == pair_key(b)
    return ann_file(a) is not None and ann_file(a) == ann_file(b)


def pick_pair(runs_a: list[RunRecord], runs_b: list[RunRecord]) -> tuple[RunRecord, RunRecord]:
    """The latest A with a B on the same images, and the latest such B; else the latest of each."""
    for ra in reversed(runs_a):
        same = [rb for rb in runs_b if pair_key(rb) == pair_key(ra)]
        if same:
            return ra, same[-1]
    return runs_a[-1], runs_b[-1]


def paired_difference(x: Any, ref: Any, isthing: list[bool], n_resamples: int = 1000, seed: int = 0,
                      per_class: bool = False, category_ids: list[int] | None = None) -> dict[str, Any]:
    """The paired image bootstrap of run ``x`` minus run ``ref``: of their sparse rows where both are
    :class:`SparseRun` (:func:`panbench.analysis.paired.paired_sparse`), else of their dense
    :class:`RunSums` (:func:`panbench.analysis.paired_bootstrap`); the same numbers either way, on every available
    core (the resampled sums are exact: the same on any number of threads)."""
    from panbench.pq.score import available_cores

    pair = paired_sparse if isinstance(x, SparseRun) and isinstance(ref, SparseRun) else paired_bootstrap
    return pair(x, ref, isthing, n_resamples=n_resamples, seed=seed, per_class=per_class, category_ids=category_ids,
                threads=available_cores())


def sums_at_threshold(a: AnalysisSet, threshold: float, run_fingerprint: str | None = None, name: str = "run"
                      ) -> RunSums:
    """Per-image sums of run ``a`` with its segments scoring below ``threshold`` removed: ``score_threshold``'s rule
    (:func:`panbench.analysis.scores.threshold_sums`) with each image's categories counted apart."""
    n, c = a.n_images, a.n_categories
    cols = {**a.cols, **{g + "_cats": a.cols[g + "_img"] * c + a.cols[g + "_cats"] for g in ("tp", "fp", "fn")}}
    s = ScoreSums(n * c)
    s.add(cols, n)
    tp, iou, fp, fn = (np.asarray(v, np.float64)[0].reshape(n, c)
                       for v in threshold_sums(s, np.array([threshold], np.float64)))
    return RunSums(iou, tp, fp, fn, image_ids=list(a.image_ids), fingerprint=run_fingerprint, name=name)


def sparse_at_threshold(a: AnalysisSet, threshold: float, run_fingerprint: str | None = None, name: str = "run"
                        ) -> SparseRun:
    """:func:`sums_at_threshold` as a :class:`SparseRun` (its rows: only the cells with a TP, FP or FN; the dense
    sums made only where the fixed point refuses them)."""
    return SparseRun(a.n_categories, list(a.image_ids), threshold_rows(a, threshold),
                     lambda: sums_at_threshold(a, threshold, run_fingerprint, name), run_fingerprint, name)


def is_reference(r: RunRecord, reference: str, records: list[RunRecord]) -> bool:
    """Whether ``--reference`` names the run: its model name or one of its labels."""
    return reference in (r.model, model_label(r, records), short_label(r, records), run_label(r, records))


def pick_reference(group: list[int], records: list[RunRecord], reference: str | None) -> int | None:
    """The reference run of a group (indices into ``records``): the one ``reference`` names, else the best PQ."""
    cands = group
    if reference is not None:
        cands = [k for k in group if is_reference(records[k], reference, records)]
        cands = [k for k in cands if not settings(records[k])] or cands
    return max(cands, key=lambda k: (records[k].metrics["PQ"], -group.index(k))) if cands else None


def _load_groups(records: list[RunRecord], results_dir: Path, notes: list[str]
                 ) -> tuple[dict[int, tuple[Any, Any, Any]], dict[tuple[str | None, int], list[int]]]:
    """Each record's (AnalysisSet without its columns, SparseRun, its file's identity) by index and the indices by
    :func:`pair_key`; a note for a missing file.  Each run's columns are read, made into its sparse rows and let go
    before the next's."""
    loaded: dict[int, tuple[Any, Any, Any]] = {}
    groups: dict[tuple[str | None, int], list[int]] = {}
    for k, r in enumerate(records):
        fp, path = fingerprint(r), analysis_path(results_dir, r)
        label = short_label(r, records)
        if fp is not None and path is None and r.analysis_file:
            notes.append(f"{label}: no paired difference (its analysis file {Path(results_dir) / r.analysis_file} "
                         "is missing; re-run it to write it again)")
        if fp is None or path is None:
            continue
        try:
            a = AnalysisSet.load(path, PAIRED_COLUMNS)
        except PanbenchError as e:  # "PATH: not a panbench per-image analysis file (why); rerun ..."
            note_skipped(str(e) if str(e).startswith(str(path)) else f"{path}: {e}")
            continue
        sparse = SparseRun.of(a, fp, label, dense=_dense_of(path, fp, label))
        loaded[k] = (dataclasses.replace(a, cols={}), sparse, _identity(path))
        groups.setdefault(pair_key(r), []).append(k)
    return loaded, groups


def _dense_of(path: Path, run_fingerprint: str | None, name: str) -> Callable[[], RunSums]:
    """The dense sums of the run whose analysis file is ``path``, read again when asked for."""
    return lambda: RunSums.from_analysis(AnalysisSet.load(path, PAIRED_COLUMNS), fingerprint=run_fingerprint,
                                         name=name)


def _identity(path: Path) -> tuple[Any, ...]:
    """What tells a file from another and from itself rewritten: its path, inode, size and modification time."""
    st = path.stat()
    return str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns


BOOTSTRAPS_KEPT = 64  # the paired bootstraps kept by their runs' files (a report reads each pair twice)
_BOOTSTRAPS: dict[tuple[Any, ...], dict[str, Any]] = {}


def _bootstrap_once(x: tuple[Any, Any, Any], ref: tuple[Any, Any, Any], isthing: list[bool]) -> dict[str, Any]:
    """:func:`paired_difference` of the loaded runs ``x`` minus ``ref``, made once per pair of their files (the
    same files give the same numbers)."""
    key = (x[2], ref[2], tuple(isthing))
    if key not in _BOOTSTRAPS:
        res = paired_difference(x[1], ref[1], isthing)
        if len(_BOOTSTRAPS) >= BOOTSTRAPS_KEPT:
            _BOOTSTRAPS.pop(next(iter(_BOOTSTRAPS)))
        _BOOTSTRAPS[key] = res
    return copy.deepcopy(_BOOTSTRAPS[key])


def _difference(k: int, ref_k: int, records: list[RunRecord], loaded: dict[int, tuple[Any, Any, Any]],
                notes: list[str]) -> dict[str, Any] | None:
    """Run ``k`` minus the reference run ``ref_k``; None and a note when it cannot be computed."""
    r, a = records[k], loaded[k][0]
    label = short_label(r, records)
    isthing = getattr(a, "isthing", None) or isthing_of(r, a.n_categories)  # newer analysis files carry it
    if isthing is None:
        notes.append(f"{label}: no paired difference (the annotation file {ann_file(r)} that gives the "
                     "thing/stuff classes cannot be read)")
        return None
    if (why := too_few(a.n_images)) is not None:
        notes.append(f"{label}: no paired difference ({why})")
        return None
    try:
        res = _bootstrap_once(loaded[k], loaded[ref_k], isthing)
    except PanbenchError as e:
        notes.append(f"{label}: no paired difference ({e})")
        return None
    m, m_ref = r.metrics, records[ref_k].metrics
    diff = {x: m[x] - m_ref[x] if m.get(x) is not None and m_ref.get(x) is not None else None  # one lacking: blank
            for x in res["metrics"]}
    return {"vs": short_label(records[ref_k], records), "diff": diff,
            "interval": res["metrics"], "excludes_zero": res["excludes_zero"]}


def paired_differences(records: list[RunRecord], results_dir: Path, reference: str | None = None
                       ) -> tuple[list[dict[str, Any] | None], list[str]]:
    """Each record's paired difference to its group's reference run (or None), and the notes (docs/analysis.md)."""
    out: list[dict[str, Any] | None] = [None] * len(records)
    notes: list[str] = []
    loaded, groups = _load_groups(records, results_dir, notes)
    if reference is not None and not any(is_reference(r, reference, records) for r in records):
        names = ", ".join(dict.fromkeys(r.model for r in records))
        raise PanbenchError(f"--reference {reference}: no such run among these records; use one of: {names}")
    for group in groups.values():
        ref_k = pick_reference(group, records, reference)
        if ref_k is None:
            ref_k = pick_reference(group, records, None)
            notes.append(f"--reference {reference}: no run of it on the images of "
                         f"{short_label(records[group[0]], records)}; that group's reference is the best PQ")
        assert ref_k is not None
        out[ref_k] = {"reference": True}
        for k in group:
            if k != ref_k:
                out[k] = _difference(k, ref_k, records, loaded, notes)
    return out, notes
