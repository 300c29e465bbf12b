"""``pq_compute``: panopticapi's entry point with panbench's scoring behind it.

``from panbench import pq_compute`` replaces ``from panopticapi.evaluation import pq_compute``: the same
arguments (the folders default to the JSON paths without ``.json``, as panopticapi's), the same returned dict
(:func:`panbench.pq.sums.panopticapi_summary`), the same numbers (to 1e-9).  It differs in what it does not do:
it prints nothing, scores on every available core (as panopticapi's ``pq_compute_multi_core``; threads) without
holding the images, and a bad input raises :class:`panbench.errors.InputError` with a one-line message naming
the file and the fix, where panopticapi raises a bare ``Exception`` or a ``KeyError``.
"""

from __future__ import annotations

import os
from typing import Any

from panbench.errors import InputError
from panbench.pq.coco_format import png_folder
from panbench.pq.score import score_stream
from panbench.pq.sums import panopticapi_summary


def pq_compute(gt_json_file: str | os.PathLike[str], pred_json_file: str | os.PathLike[str],
               gt_folder: str | os.PathLike[str] | None = None,
               pred_folder: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """PQ, SQ and RQ of the predictions ``pred_json_file`` (+ ``pred_folder`` of PNGs) against the ground
    truth ``gt_json_file`` (+ ``gt_folder``) as panopticapi's ``pq_compute`` returns them:
    ``{"All" | "Things" | "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id: {"pq", "sq", "rq"}}}``,
    fractions 0-1.  Every ground-truth image needs a prediction (predictions of other images are ignored)."""
    gt_folder = png_folder(gt_json_file) if gt_folder is None else gt_folder
    pred_folder = png_folder(pred_json_file) if pred_folder is None else pred_folder
    for folder, name, js in ((gt_folder, "gt_folder", gt_json_file), (pred_folder, "pred_folder", pred_json_file)):
        if not os.path.isdir(folder):
            raise InputError(f"{folder}: no such folder of panoptic PNGs; pass {name} (the PNGs of {js})")
    ev = score_stream(gt_json_file, gt_folder, pred_json_file, pred_folder)[0]
    return panopticapi_summary(ev.stats, ev.categories.ids, ev.categories.isthing)

