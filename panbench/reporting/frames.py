"""What the tables, plots and report read from a record beyond its metrics: the framework, how its images
were chosen, its per-image analysis file, and the paired-bootstrap difference of runs on the same images.

Every reader accepts old (schema 1) records and runs without the analysis: a missing field is ``None``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError


def framework(r: dict[str, Any]) -> str:
    """``mmdet``, ``transformers`` or ``external``; records without the field: ``external`` for a
    ``score --name`` run, else ``mmdet`` (the only framework before schema 2)."""
    if r.get("framework"):
        return str(r["framework"])
    return "external" if r.get("architecture") == "external" else "mmdet"


def ops_backend(r: dict[str, Any]) -> str | None:
    """What served mmcv's compiled ops in the run (``provenance.versions.mmcv_ops``): "mmcv" or "panbench"
    (:mod:`panbench.ops`); None for a run that reached none (``hf:``, ``score``).  An mmdet record without the
    field ran compiled mmcv: there was no other backend before the field was written."""
    v = ((r.get("provenance") or {}).get("versions") or {})
    if "mmcv_ops" in v:
        return v["mmcv_ops"]
    return "mmcv" if framework(r) == "mmdet" and v.get("mmcv") else None


def fingerprint(r: dict[str, Any]) -> str | None:
    """The full fingerprint of the run's dataset (annotation file and selected image ids), if recorded."""
    return ((r.get("provenance") or {}).get("dataset") or {}).get("fingerprint")


def selection(r: dict[str, Any]) -> str:
    """How the run's images were chosen: 'all', 'limit N', 'subset FILE' (and both); 'external' for a
    ``score --name`` record without the field. Records that do not store ``selection`` (before schema 2)
    are read from their recorded command."""
    sel = r.get("selection")
    if isinstance(sel, dict):
        parts = [f"limit {sel['limit']}" if sel.get("limit") is not None else "",
                 f"subset {sel['subset']}" if sel.get("subset") else ""]
        return ", ".join(p for p in parts if p) or "all"
    if sel:
        return str(sel)
    if r.get("architecture") == "external":
        return "external"
    cmd = ((r.get("provenance") or {}).get("command") or "").split()
    parts = [f"{o[2:]} {cmd[i + 1]}" for i, o in enumerate(cmd[:-1]) if o in ("--limit", "--subset")]
    return ", ".join(parts) or "all"


def cfg_words(r: dict[str, Any]) -> list[str]:
    """The run's ``--cfg-options`` (``provenance.cfg_options``) as KEY=VALUE words, in key order."""
    cfg = (r.get("provenance") or {}).get("cfg_options") or {}
    return [f"{k}={v}" for k, v in sorted(cfg.items())]


def settings(r: dict[str, Any]) -> str:
    """The run's settings beyond model, post-processing and dataset that change its numbers or speed, as a
    label: a batch size above 1, AMP other than fp32 and the ``--cfg-options`` (:func:`cfg_words`); '' for
    a run with none.  Runs that differ in them are different rows of a table
    (:func:`panbench.reporting.tables.latest_runs`)."""
    parts = [f"batch {b}"] if isinstance(b := r.get("batch_size"), int) and b > 1 else []
    if r.get("amp") not in (None, "fp32"):
        parts.append(f"amp {r['amp']}")
    return "; ".join(parts + cfg_words(r))


def analysis_path(results_dir: Path, r: dict[str, Any]) -> Path | None:
    """The run's per-image analysis file (``analysis_file``, relative to the results folder), when the
    record names one and it exists."""
    rel = r.get("analysis_file")
    if not rel:
        return None
    p = Path(results_dir) / rel
    return p if p.is_file() else None


def isthing_of(r: dict[str, Any], n_categories: int) -> list[bool] | None:
    """The thing/stuff flag of every category in the order of the run's category table, read from the
    run's annotation file (``provenance.dataset.ann_file``); None when it cannot be read or does not
    have ``n_categories`` categories."""
    ann = ((r.get("provenance") or {}).get("dataset") or {}).get("ann_file")
    flags = _isthing(str(ann)) if ann and Path(ann).is_file() else None
    return list(flags) if flags is not None and len(flags) == n_categories else None


@functools.lru_cache(maxsize=8)
def _isthing(ann: str) -> tuple[bool, ...] | None:
    """The thing flags of an annotation file's categories (read once per file: COCO's is large)."""
    from panbench.pq.coco_format import read_json
    from panbench.pq.matching import CategoryTable

    try:
        return tuple(CategoryTable.from_coco(read_json(ann, "ground-truth JSON").get("categories", [])).isthing)
    except (PanbenchError, KeyError, TypeError, ValueError, AttributeError):
        return None


def settings_match(r: dict[str, Any], wanted: str | None) -> bool:
    """Whether the run's :func:`settings` are ``wanted``: the same words in any order, separated by spaces or
    ``;`` (``"batch 2; a.b=1"`` is ``"a.b=1 batch 2"``); ``default`` or ``''`` names a run without settings."""
    import re

    def words(text: str) -> list[str]:
        return sorted(w for w in re.split(r"[;\s]+", text) if w)

    want = "" if wanted in (None, "default") else str(wanted)
    return words(settings(r)) == words(want)


def paired_difference(x: Any, ref: Any, isthing: list[bool], n_resamples: int = 1000, seed: int = 0,
                      per_class: bool = False, category_ids: list[int] | None = None) -> dict[str, Any]:
    """The paired image bootstrap of run ``x`` minus run ``ref`` (:class:`panbench.analysis.RunSums`): the one
    rule behind ``table --ci``, the verdict and ``compare`` (there B - A), so that they print the same
    interval for the same pair.  Defaults: 1000 resamples, seed 0."""
    from panbench.analysis import paired_bootstrap

    return paired_bootstrap(x, ref, isthing, n_resamples=n_resamples, seed=seed, per_class=per_class,
                            category_ids=category_ids)


def is_reference(r: dict[str, Any], reference: str, records: list[dict[str, Any]]) -> bool:
    """Whether ``--reference`` names the run: its model name, or its label in the tables (with settings)."""
    from panbench.reporting.tables import model_label, run_label

    return reference in (r["model"], model_label(r, records), run_label(r, records))


def pick_reference(group: list[int], records: list[dict[str, Any]], reference: str | None) -> int | None:
    """The reference run of a group of runs on the same images (indices into ``records``): the run that
    ``reference`` names (of several, the one without settings, then the best PQ), else the run with the best
    PQ (the first of equals); None when ``reference`` names no run of the group."""
    cands = group
    if reference is not None:
        cands = [k for k in group if is_reference(records[k], reference, records)]
        cands = [k for k in cands if not settings(records[k])] or cands
    if not cands:
        return None
    return max(cands, key=lambda k: (records[k]["metrics"]["PQ"], -group.index(k)))


def paired_differences(records: list[dict[str, Any]], results_dir: Path, reference: str | None = None
                       ) -> tuple[list[dict[str, Any] | None], list[str]]:
    """For each record: the paired bootstrap of (this run - the reference run of its group) or None, and notes.

    A group is the records that share a dataset fingerprint (same annotation file, same images) and have a
    readable per-image analysis file.  Its reference (``{"reference": True}``) is the run ``reference`` names
    (:func:`is_reference`) or, by default or where it names no run of the group, the run with the best PQ.
    Each other record gets ``{"vs": label, "diff": {metric: point difference}, "interval": {metric: [low,
    high]}, "excludes_zero": {metric: bool}}`` from :func:`paired_difference` (1000 resamples, seed 0)."""
    from panbench.analysis import AnalysisSet, RunSums
    from panbench.reporting.tables import run_label

    out: list[dict[str, Any] | None] = [None] * len(records)
    notes: list[str] = []
    loaded: dict[int, tuple[Any, Any]] = {}
    groups: dict[str, list[int]] = {}
    for k, r in enumerate(records):
        fp, path = fingerprint(r), analysis_path(results_dir, r)
        label = run_label(r, records)
        if fp is not None and path is None and r.get("analysis_file"):
            notes.append(f"{label}: no paired difference (its analysis file {Path(results_dir) / r['analysis_file']} "
                         "is missing; re-run it to write it again)")
        if fp is None or path is None:
            continue
        try:
            a = AnalysisSet.load(path)
        except PanbenchError as e:
            notes.append(f"{label}: {e}")
            continue
        loaded[k] = (a, RunSums.from_analysis(a, fingerprint=fp, name=label))
        groups.setdefault(fp, []).append(k)
    if reference is not None and not any(is_reference(r, reference, records) for r in records):
        names = ", ".join(dict.fromkeys(r["model"] for r in records))
        raise PanbenchError(f"--reference {reference}: no such run among these records; use one of: {names}")
    for group in groups.values():
        ref_k = pick_reference(group, records, reference)
        if ref_k is None:
            ref_k = pick_reference(group, records, None)
            notes.append(f"--reference {reference}: no run of it on the images of "
                         f"{run_label(records[group[0]], records)}; that group's reference is the best PQ")
        assert ref_k is not None
        out[ref_k] = {"reference": True}
        ref = loaded[ref_k][1]
        for k in group:
            if k == ref_k:
                continue
            r, (a, sums) = records[k], loaded[k]
            label = run_label(r, records)
            isthing = getattr(a, "isthing", None) or isthing_of(r, a.n_categories)  # newer analysis files carry it
            if isthing is None:
                notes.append(f"{label}: no paired difference (the annotation file "
                             f"{((r.get('provenance') or {}).get('dataset') or {}).get('ann_file')} that gives the "
                             "thing/stuff classes cannot be read)")
                continue
            try:
                res = paired_difference(sums, ref, isthing)
            except PanbenchError as e:
                notes.append(f"{label}: no paired difference ({e})")
                continue
            m, m_ref = r["metrics"], records[ref_k]["metrics"]
            out[k] = {"vs": run_label(records[ref_k], records),
                      "diff": {x: m[x] - m_ref[x] for x in res["metrics"]},
                      "interval": res["metrics"], "excludes_zero": res["excludes_zero"]}
    return out, notes
