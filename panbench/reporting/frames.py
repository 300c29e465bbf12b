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


def paired_differences(records: list[dict[str, Any]], results_dir: Path) -> tuple[list[dict[str, Any] | None],
                                                                                   list[str]]:
    """For each record: the paired bootstrap of (this run - the first run of its group) or None, and notes.

    A group is the records that share a dataset fingerprint (same annotation file, same images), in the
    order given; its first record with an analysis file is the reference (``{"reference": True}``).
    Each other record with an analysis file gets ``{"vs": label, "diff": {metric: point difference},
    "interval": {metric: [low, high]}, "excludes_zero": {metric: bool}}`` from
    :func:`panbench.analysis.paired_bootstrap` (1000 resamples, seed 0)."""
    from panbench.analysis import AnalysisSet, RunSums, paired_bootstrap
    from panbench.reporting.tables import run_label

    out: list[dict[str, Any] | None] = [None] * len(records)
    notes: list[str] = []
    refs: dict[str, tuple[int, RunSums]] = {}
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
        sums = RunSums.from_analysis(a, fingerprint=fp, name=label)
        if fp not in refs:
            refs[fp] = (k, sums)
            out[k] = {"reference": True}
            continue
        ref_k, ref = refs[fp]
        isthing = getattr(a, "isthing", None) or isthing_of(r, a.n_categories)  # newer analysis files carry it
        if isthing is None:
            notes.append(f"{label}: no paired difference (the annotation file "
                         f"{((r.get('provenance') or {}).get('dataset') or {}).get('ann_file')} that gives the "
                         "thing/stuff classes cannot be read)")
            continue
        try:
            res = paired_bootstrap(sums, ref, isthing, per_class=False)  # the defaults: 1000 resamples, seed 0
        except PanbenchError as e:
            notes.append(f"{label}: no paired difference ({e})")
            continue
        m, m_ref = r["metrics"], records[ref_k]["metrics"]
        out[k] = {"vs": run_label(records[ref_k], records),
                  "diff": {x: m[x] - m_ref[x] for x in res["metrics"]},
                  "interval": res["metrics"], "excludes_zero": res["excludes_zero"]}
    return out, notes
