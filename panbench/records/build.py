"""Building a record: :func:`make_record` from a scored run and the run's other fields, and
:func:`external_record` for predictions made elsewhere (``panbench score --name``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.pq.matching import METRIC_KEYS
from panbench.records.provenance import git_commit, now_iso, versions
from panbench.records.rows import SEMANTIC_KEYS
from panbench.records.schema import RECORD_FIELDS, SCHEMA_VERSION, RunRecord


def make_record(res: dict[str, Any], **fields: Any) -> RunRecord:
    """The record of a scored run: ``res`` (``PanopticEvaluator.evaluate()``) gives the metric
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


def external_record(name: str, dataset: str, res: dict[str, Any], args: Any, seconds: float,
                    fingerprint: str | None = None, **analyses: Any) -> RunRecord:
    """A result record for predictions made elsewhere and scored with ``panbench score --name``;
    ``analyses``: the analysis fields (``ci`` ... ``boundary``)."""
    from panbench.pq.coco_format import read_json

    cats = read_json(args.gt_json, "ground-truth JSON").get("categories", [])
    provenance = {
        "predictions": {"json": str(Path(args.pred_json).resolve()), "dir": str(Path(args.pred_dir).resolve())},
        "dataset": {"ann_file": str(Path(args.gt_json).resolve()), "png_dir": str(Path(args.gt_dir).resolve()),
                    **({"fingerprint": fingerprint} if fingerprint else {})},
        "versions": versions(()), "git_commit": git_commit(),  # scoring runs no model: no model stack
        "category_names": {str(c["id"]): c.get("name", str(c["id"])) for c in cats if isinstance(c, dict)},
    }
    return make_record(
        res, model=name, framework="external", architecture="external", backbone="?", dataset=dataset,
        postprocess="external", fusion=None,
        published={}, delta_to_published={}, published_source=None, params=None, flops=None, device="external",
        world_size=1,
        batch_size=None,
        timings={"scoring_s": seconds, "images_per_s": None}, memory={}, provenance=provenance, **analyses,
    )
