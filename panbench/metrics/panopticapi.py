"""panopticapi's entry point, :func:`pq_compute` (``from panbench import pq_compute``): a folder of COCO-panoptic
predictions scored into the one composite of evaluators (:class:`~panbench.evaluators.Evaluators`, as ``score``
and the metrics score), its result given as panopticapi's dict."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from panbench.evaluators import Evaluators
from panbench.evaluators.files import score_folder
from panbench.pq.coco_format import png_folder
from panbench.pq.diagnosis import warn_findings
from panbench.pq.paths import not_a_folder
from panbench.pq.rule_names import rule_list
from panbench.pq.score import read_truth, with_pq_if_fixed
from panbench.pq.sums import panopticapi_summary


def pq_compute(gt_json_file: str | os.PathLike[str], pred_json_file: str | os.PathLike[str],
               gt_folder: str | os.PathLike[str] | None = None,
               pred_folder: str | os.PathLike[str] | None = None, rules: str | Sequence[str] = ()) -> dict[str, Any]:
    """panopticapi's ``pq_compute``: the same arguments, dict (:func:`panbench.pq.sums.panopticapi_summary`) and
    numbers; what differs: docs/api.md, "pq_compute".  ``rules`` (names of :data:`panbench.pq.rule_names.RULES`)
    adds ``rules`` and ``rules_attribution`` to the dict, as ``score --rules --json`` gives them
    (docs/pq-rules.md)."""
    names = rule_list(rules)
    gt_folder = png_folder(gt_json_file) if gt_folder is None else gt_folder
    pred_folder = png_folder(pred_json_file) if pred_folder is None else pred_folder
    for folder, name, js in ((gt_folder, "gt_folder", gt_json_file), (pred_folder, "pred_folder", pred_json_file)):
        fix = f"pass {name} (the PNGs of {js})"
        if (err := not_a_folder(folder, name, fix, f"{folder}: no such folder of panoptic PNGs; {fix}")) is not None:
            raise err
    truth = read_truth(gt_json_file)
    evaluators = Evaluators.for_run(truth.categories, analyses=False, semantic=False, diagnose=True, rules=names)
    score_folder(evaluators, truth, gt_folder, pred_json_file, pred_folder)
    result = evaluators.evaluate()
    if found := result.get("diagnosis"):
        warn_findings(with_pq_if_fixed(found, truth, gt_folder, pred_json_file, pred_folder), stacklevel=2)
    stats, cats = evaluators.columns().stats, truth.categories
    out = panopticapi_summary(stats, cats.ids, cats.isthing)
    out.update({k: result[k] for k in ("rules", "rules_attribution") if k in result})  # as score --json gives them
    return out
