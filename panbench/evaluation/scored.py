"""The record of predictions made elsewhere and scored with ``panbench score --name``: the dataset it is filed
under (:func:`record_dataset`) and the record itself (:func:`record_scored`), made and written by the one maker
of records, :func:`panbench.records.build.record_run`, as an ``eval`` run's is.

numpy, :mod:`panbench.data` and :mod:`panbench.records` only: ``panbench score`` never imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.records.schema import RunRecord


def record_scored(results: Path, name: str, dataset_name: str | None, res: dict[str, Any], analysis: Any,
                  fields: dict[str, Any], files: dict[str, str], seconds: float) -> RunRecord:
    """The written record of a ``score --name`` run: ``res`` and ``fields`` (the analyses, mask AP) scored from
    ``files`` (``gt_json``, ``gt_dir``, ``pred_json``, ``pred_dir``) in ``seconds``; ``analysis`` (an
    :class:`panbench.analysis.AnalysisSet`, None with ``--no-analysis``) saved beside it and giving the images'
    fingerprint; filed under :func:`record_dataset` (``dataset_name``: ``--dataset-name``)."""
    from panbench.records.build import external_fields, record_run

    fingerprint = None
    if analysis is not None:
        from panbench.data.datasets import dataset_fingerprint

        fingerprint = dataset_fingerprint(files["gt_json"], analysis.image_ids)
    dataset = record_dataset(Path(files["gt_json"]), fingerprint, results, dataset_name)
    return record_run(results, res, analysis=analysis,
                      **external_fields(name, dataset, seconds=seconds, fingerprint=fingerprint, **files), **fields)


def record_dataset(gt_json: Path, fingerprint: str | None, results: Path, given: str | None) -> str:
    """The dataset a ``score --name`` record is filed under: the one its ground truth is.  The dataset of the
    records in ``results`` scored on the same images (same fingerprint); else the known dataset (a row of
    :data:`panbench.data.catalog.DATASETS`) that the ground truth's root folder (``ROOT/annotations/FILE.json``)
    or file names (``panoptic_val2017.json`` with COCO's 133 categories is coco); else the root folder's name.
    ``given`` (``--dataset-name``) is taken unless records of the same images name another dataset (refused in
    one line)."""
    from panbench.data.catalog import DATASETS
    from panbench.errors import InputError, PanbenchError
    from panbench.records.io import load_records

    try:
        seen = {r.dataset for r in load_records(results)
                if fingerprint and (r.provenance.get("dataset") or {}).get("fingerprint") == fingerprint}
    except PanbenchError:  # a stray file in the runs folder: `table` names it; scoring goes on
        seen = set()
    if len(seen) == 1:
        (known,) = seen
        if given is not None and given != known:
            raise InputError(f"--dataset-name {given}: {gt_json} is the ground truth of the '{known}' records in "
                             f"{results / 'runs'} (same fingerprint {fingerprint}); leave out --dataset-name or "
                             f"pass --dataset-name {known}")
        return str(known)
    if given is not None:
        return given
    gt_json = gt_json.resolve()
    root = gt_json.parent.parent if gt_json.parent.name == "annotations" else gt_json.parent
    if root.name in DATASETS:
        return root.name
    stem = gt_json.stem.removesuffix("_panoptic_val")
    if stem in DATASETS and DATASETS[stem].converted:
        return stem
    if gt_json.name == "panoptic_val2017.json" and _n_categories(gt_json) == 133:
        return "coco"
    return root.name or "dataset"


def _n_categories(path: Path) -> int | None:
    from panbench.errors import PanbenchError
    from panbench.pq.coco_format import read_json

    try:
        return len(read_json(path, "ground-truth JSON").get("categories") or [])
    except (PanbenchError, AttributeError):
        return None
