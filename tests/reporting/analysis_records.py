"""Result records with the analysis fields of schema 2, made for real: generated ground truth
(panbench.data.synth), predictions perturbed from it, each image scored through the analysis path
(`score_pair`), `panbench.analysis.analyze()` on the AnalysisSet, which is saved as the record's
`analysis_file`. Nothing is invented but the run settings (model names, device, date)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from panbench.analysis import AnalysisSet, analyze
from panbench.data.synth import PanopticImage, coco_like_categories, perturb, random_image, write_panoptic
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import METRIC_KEYS, CategoryTable
from panbench.pq.sums import PQStats, pq_summary
from panbench.records.io import make_record, write_record
from panbench.records.schema import RunRecord

CATS = coco_like_categories(4, 3)
TABLE = CategoryTable.from_coco(CATS)


def ground_truth(root: Path, n_images: int = 16, seed: int = 0) -> tuple[Path, list[tuple[int, PanopticImage]]]:
    """``n_images`` generated images (96 x 128) written as a COCO panoptic set; the JSON path and the images."""
    rng = np.random.default_rng(seed)
    images = [(1000 + k, random_image(rng, 96, 128, CATS, n_things=(2, 6))) for k in range(n_images)]
    js, _ = write_panoptic(root, "gt", images, CATS)
    return js, images


def add_run(results: Path, model: str, gt_json: Path, images: list[tuple[int, PanopticImage]],
            pred_seed: int | None, boundary: bool = False, fingerprint: str = "f1a2b3c4d5e6f7a8",
            date: str = "2001-01-01T00:00:00+00:00", **fields: Any) -> dict[str, Any]:
    """Score predictions (perturbed from the ground truth with ``pred_seed``; the ground truth itself when
    None) and write the run's record and analysis file under ``results``; returns the record."""
    rng = np.random.default_rng(pred_seed)
    ev, bev = PanopticAccumulator(TABLE), PQStats.zeros(len(TABLE))
    matches = []
    for image_id, gt in images:
        pred = gt if pred_seed is None else perturb(rng, gt, CATS)
        result = score_pair(TABLE, gt.ids, gt.segments_info, pred.ids, pred.segments_info, f"image {image_id}",
                            boundary=boundary)
        ev.add(result)
        matches.append(result.match)
        if boundary:
            bev.add_image(result.boundary)
    aset = AnalysisSet.from_images(matches, len(TABLE), [i for i, _ in images])
    rel = f"analysis/{model}.npz"
    aset.save(results / rel)
    res = ev.evaluate()
    prov = {"dataset": {"name": "synth", "ann_file": str(gt_json), "fingerprint": fingerprint,
                        "image_ids": [i for i, _ in images]},
            "category_names": {str(c["id"]): c["name"] for c in CATS}, "command": f"panbench eval --model {model}"}
    record: dict[str, Any] = dict(make_record(
        res, model=model, architecture="Mask2Former", backbone="R-50", dataset="synth", postprocess="default",
        published={}, delta_to_published={}, params=1000, device="test (generated predictions, not timed)",
        world_size=1, batch_size=1, amp="fp32", timings={"images_per_s": None}, memory={}, provenance=prov))
    record.update(analyze(aset, TABLE.isthing))
    if boundary:
        b = pq_summary(bev, TABLE.ids, TABLE.isthing)
        record["boundary"] = {k: b[k] for k in METRIC_KEYS}
    record.update({"date": date, "analysis_file": rel, "schema": 2, **fields})
    written = write_record(results, RunRecord.from_json(record))
    return json.loads((results / str(written.record)).read_text())
