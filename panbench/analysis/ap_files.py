"""A COCO instance results JSON from any system (``panbench score --instances FILE.json``) read by image; its AP
against the panoptic ground truth, converted as :mod:`panbench.analysis.ap` converts it, comes from ``score``'s one
pass over the PNGs (``score --instances``: panbench.evaluators.files)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis.ap import Instances
from panbench.errors import InputError

INSTANCES_FORMAT = "give COCO instance results: a list of {image_id, category_id, segmentation: {size, counts}, score}"


def read_instances(path: str | os.PathLike[str], image_ids: set[int]) -> dict[int, Instances]:
    """The COCO instance results in ``path`` by image (one-line errors naming the file and the fix)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: instance results not found; check the --instances path")
    try:
        data = json.loads(p.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not valid JSON ({e}); {INSTANCES_FORMAT}") from e
    if not isinstance(data, list):
        raise InputError(f"{p}: a JSON {type(data).__name__}, not a list; {INSTANCES_FORMAT}")
    by_image: dict[int, tuple[list[dict[str, Any]], list[float], list[int]]] = {}
    for k, r in enumerate(data):
        _check_result(p, k, r, image_ids)
        rles, scores, cats = by_image.setdefault(r["image_id"], ([], [], []))
        seg = r["segmentation"]
        rles.append({"size": [int(s) for s in seg["size"]], "counts": seg["counts"]})
        scores.append(float(r["score"]))
        cats.append(int(r["category_id"]))
    return {i: Instances(r, np.array(s, np.float64), np.array(c, np.int64)) for i, (r, s, c) in by_image.items()}


def _check_result(p: Path, k: int, r: Any, image_ids: set[int]) -> None:
    seg = r.get("segmentation") if isinstance(r, dict) else None
    ok = (isinstance(r, dict) and all(isinstance(r.get(f), int) and not isinstance(r.get(f), bool)
                                      for f in ("image_id", "category_id"))
          and isinstance(r.get("score"), int | float) and isinstance(seg, dict)
          and isinstance(seg.get("counts"), str) and isinstance(seg.get("size"), list) and len(seg["size"]) == 2)
    if not ok:
        raise InputError(f"{p}: result {k} is not a COCO instance result with an RLE mask (counts as a string); "
                         f"{INSTANCES_FORMAT}")
    if r["image_id"] not in image_ids:
        raise InputError(f"{p}: result {k} is for image {r['image_id']}, which the ground truth does not annotate; "
                         "leave it out or score against the ground truth of those images")
