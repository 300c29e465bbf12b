"""The record of ``panbench score --name``: predictions made elsewhere, scored, filed under the dataset their ground
truth is (docs/analysis.md, "From the command line")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.data.catalog import DATASETS
from panbench.data.datasets import dataset_fingerprint
from panbench.errors import InputError, PanbenchError
from panbench.pq.coco_format import GroundTruthJSON
from panbench.records import io as records_io
from panbench.records.io import load_records
from panbench.records.schema import RunRecord


def record_scored(results: Path, name: str, dataset_name: str | None, res: dict[str, Any], analysis: Any,
                  fields: dict[str, Any], files: dict[str, Any], seconds: float) -> RunRecord:
    """The written record of a ``score --name`` run: ``res`` and ``fields`` scored from ``files`` (``truth``, the
    ground truth read, ``gt_dir``, ``pred_json``, ``pred_dir``) in ``seconds``; ``analysis`` (None with
    ``--no-analysis``) saved beside it; its images' fingerprint is eval's of the same images (with or without the
    analyses); filed under :func:`record_dataset`."""
    fingerprint = dataset_fingerprint(files["truth"].raw, files["truth"].image_ids())  # eval's, of the same images
    dataset = record_dataset(files["truth"], fingerprint, results, dataset_name)
    about = records_io.external_fields(name, dataset, seconds=seconds, fingerprint=fingerprint, **files)
    return records_io.record_run(results, res, analysis=analysis, **about, **fields)


def record_dataset(truth: GroundTruthJSON, fingerprint: str | None, results: Path, given: str | None) -> str:
    """The dataset a ``score --name`` record is filed under: the one its ground truth is, by the rule of
    docs/analysis.md, "From the command line"; ``given`` is ``--dataset-name``."""
    try:
        seen = {r.dataset for r in load_records(results)
                if fingerprint and (r.provenance.get("dataset") or {}).get("fingerprint") == fingerprint}
    except PanbenchError:  # a stray file in the runs folder: `table` names it; scoring goes on
        seen = set()
    if len(seen) == 1:
        (known,) = seen
        if given is not None and given != known:
            raise InputError(f"--dataset-name {given}: {truth.path} is the ground truth of the '{known}' records in "
                             f"{results / 'runs'} (same fingerprint {fingerprint}); leave out --dataset-name or "
                             f"pass --dataset-name {known}")
        return str(known)
    if given is not None:
        return given
    path = truth.path.resolve()
    root = path.parent.parent if path.parent.name == "annotations" else path.parent
    if root.name in DATASETS:
        return root.name
    stem = path.stem.removesuffix("_panoptic_val")
    if stem in DATASETS and DATASETS[stem].converted:
        return stem
    if path.name == "panoptic_val2017.json" and len(truth.categories) == 133:
        return "coco"
    return root.name or "dataset"
