"""Building a record: :func:`record_run`, the one way a run becomes a written record (``eval`` and
``score --name``): :func:`make_record` from the scored run and the run's other fields, then written
(:func:`panbench.records.io.write_record`); :func:`external_fields` are the fields of predictions made
elsewhere (``panbench score --name``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from panbench.pq.matching import METRIC_KEYS
from panbench.records.io import write_record
from panbench.records.provenance import git_commit, now_iso, versions
from panbench.records.rows import SEMANTIC_KEYS
from panbench.records.schema import RECORD_FIELDS, SCHEMA_VERSION, RunRecord


def make_record(res: dict[str, Any], **fields: Any) -> RunRecord:
    """The record of a scored run: ``res`` (``PanopticAccumulator.evaluate()``) gives the metric
    fields, ``fields`` the others (every :class:`RunRecord` field but those and ``record``)."""
    metric = {"n_images": res["n_images"], "metrics": {k: res[k] for k in METRIC_KEYS},
              "semantic": {k: res[k] for k in SEMANTIC_KEYS}, "n_categories": res["n_categories"],
              "per_class": res["per_class"]}
    if "unlisted_gt" in res:
        metric["unlisted_gt"] = res["unlisted_gt"]
    given = {"schema": SCHEMA_VERSION, "date": now_iso(), **metric, **fields}
    unknown = set(given) - set(RECORD_FIELDS)
    if unknown:
        raise TypeError(f"make_record: unknown record fields {sorted(unknown)}")
    return RunRecord(**given, written=frozenset(given))


def record_run(results_dir: Path | None, res: dict[str, Any], analysis: Any = None,
               show: Callable[[RunRecord], None] | None = None, **fields: Any) -> RunRecord:
    """The record of a scored run (:func:`make_record`), written under ``results_dir`` (its JSON, its ``runs.csv``
    row and ``analysis``, an :class:`panbench.analysis.AnalysisSet`, beside it: :func:`write_record`) and
    returned as written; ``results_dir`` None: built, not written (a rank other than 0 of a distributed run).
    ``show`` is handed the record before it is written (its ``record`` still None): a command prints the numbers
    first, so that a write that fails loses none of them.  ``panbench eval`` and ``panbench score --name`` make
    their records here and nowhere else."""
    rec = make_record(res, **fields)
    if show is not None:
        show(rec)
    return rec if results_dir is None else write_record(results_dir, rec, analysis=analysis)


def external_fields(name: str, dataset: str, gt_json: str | Path, gt_dir: str | Path, pred_json: str | Path,
                    pred_dir: str | Path, seconds: float, fingerprint: str | None = None) -> dict[str, Any]:
    """The record fields (all but the metrics and the analyses) of predictions made elsewhere and scored with
    ``panbench score --name``: ``name`` the system, its predictions ``pred_json``/``pred_dir`` scored against
    ``gt_json``/``gt_dir`` (``fingerprint``: of those images) in ``seconds``."""
    from panbench.pq.coco_format import read_json

    cats = read_json(gt_json, "ground-truth JSON").get("categories", [])
    provenance = {
        "predictions": {"json": str(Path(pred_json).resolve()), "dir": str(Path(pred_dir).resolve())},
        "dataset": {"ann_file": str(Path(gt_json).resolve()), "png_dir": str(Path(gt_dir).resolve()),
                    **({"fingerprint": fingerprint} if fingerprint else {})},
        "versions": versions(()), "git_commit": git_commit(),  # scoring runs no model: no model stack
        "category_names": {str(c["id"]): c.get("name", str(c["id"])) for c in cats if isinstance(c, dict)},
    }
    return dict(model=name, framework="external", architecture="external", backbone="?", dataset=dataset,
                postprocess="external", fusion=None, published={}, delta_to_published={}, published_source=None,
                params=None, flops=None, device="external", world_size=1, batch_size=None, largest_batch=None,
                timings={"scoring_s": seconds, "images_per_s": None}, memory={}, provenance=provenance)
