#!/usr/bin/env python
"""Record EoMT's own panoptic evaluation on the image sets of ``tests/pq/rule_sets.py`` (``images``, the synthetic
set, and ``coco_images``, the COCO sample with predictions made from it), the reference
that ``rules=["eomt"]`` is checked against (``tests/fixtures/eomt_rules.json``).

EoMT's functions are run as EoMT wrote them: ``init_metrics_panoptic``, ``update_metrics_panoptic``,
``to_per_pixel_targets_panoptic`` and ``_on_eval_epoch_end_panoptic`` are taken from the source of its
``training/lightning_module.py`` (a checkout of github.com/tue-mps/eomt) and run on a stand-in for its Lightning
module (its ``log`` records the values, ``block_postfix`` is empty), with torchmetrics' functions that they import.
The input is built as EoMT's data and post-processing build it: a target's masks and labels in the order of its
segment ids (``target.unique()``), its crowd flags beside them, a class index for each COCO category (its position
among the sorted ids), a predicted VOID pixel as class ``num_classes`` with instance -1. EoMT cannot evaluate an image
without segments (it indexes the image's crowd flags), so that image is left out and the fixture lists the images
used.

    .venv/bin/python scripts/record_eomt_fixture.py EOMT/training/lightning_module.py tests/fixtures/eomt_rules.json

(``tests/fixtures/eomt_rules.json``: EoMT at 7bd19dd, ``git show 7bd19dd:training/lightning_module.py``, with
``--commit 7bd19dd``.)
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torchmetrics
from torch import nn
from torchmetrics.detection import PanopticQuality
from torchmetrics.functional.detection._panoptic_quality_common import (
    _calculate_iou,
    _Color,
    _get_color_areas,
    _prepocess_inputs,
)

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("init_metrics_panoptic", "update_metrics_panoptic", "to_per_pixel_targets_panoptic",
             "_on_eval_epoch_end_panoptic")


def eomt_module(source: Path) -> type:
    """A class holding EoMT's four functions, as its source defines them (their decorators too)."""
    text = source.read_text()
    found = {node.name: node for node in ast.walk(ast.parse(text))
             if isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS}
    if missing := [f for f in FUNCTIONS if f not in found]:
        raise SystemExit(f"{source}: no {', '.join(missing)}; give EoMT's training/lightning_module.py")
    methods = []
    for f in FUNCTIONS:
        node = found[f]
        code = textwrap.dedent(ast.get_source_segment(text, node, padded=True) or "")
        methods.append("".join(f"@{ast.unparse(d)}\n" for d in node.decorator_list) + code)
    body = "class EoMT(nn.Module):\n" + "".join(textwrap.indent(m, "    ") + "\n" for m in methods)
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "cast": cast, "PanopticQuality": PanopticQuality,
                                 "_prepocess_inputs": _prepocess_inputs, "_Color": _Color,
                                 "_get_color_areas": _get_color_areas, "_calculate_iou": _calculate_iou}
    exec(compile(body, str(source), "exec"), namespace)  # noqa: S102 - EoMT's own code, the reference
    return cast(type, namespace["EoMT"])


def record(cls: type, imgs: list, cats: list[dict]) -> dict[str, Any]:
    """EoMT's evaluation of ``imgs`` (ground truth and prediction) over ``cats``: the images used, the class ids,
    its metric's per-class counts and what it logs."""
    ids = sorted(c["id"] for c in cats)
    class_of = {cid: k for k, cid in enumerate(ids)}
    things = [class_of[c["id"]] for c in cats if c["isthing"]]
    stuffs = [class_of[c["id"]] for c in cats if not c["isthing"]]
    logged: dict[str, float] = {}
    eomt = cls()
    eomt.num_classes = len(cats)
    eomt.log = lambda name, value: logged.__setitem__(name, float(value))
    eomt.block_postfix = lambda i: ""
    eomt.init_metrics_panoptic(things, stuffs, 1)
    used = []
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        by_id = {s["id"]: s for s in segs}
        listed = [int(v) for v in np.unique(gt_ids) if int(v) in by_id]
        if not listed:  # EoMT indexes the image's crowd flags: an image without segments raises
            continue
        masks = torch.from_numpy(np.stack([gt_ids == v for v in listed]))
        labels = torch.tensor([class_of[by_id[v]["category_id"]] for v in listed])
        is_crowd = torch.tensor([bool(by_id[v].get("iscrowd", 0)) for v in listed])
        target = eomt.to_per_pixel_targets_panoptic([{"masks": masks, "labels": labels}])[0]
        pred = torch.full((*p_ids.shape, 2), -1, dtype=torch.long)
        pred[:, :, 0] = eomt.num_classes
        for k, s in enumerate(p_segs):
            m = torch.from_numpy(p_ids == s["id"])
            pred[:, :, 0][m], pred[:, :, 1][m] = class_of[s["category_id"]], k
        eomt.update_metrics_panoptic([pred], [target], [is_crowd], 0)
        used.append(i)
    metric = eomt.metrics[0]
    state = {k: getattr(metric, k).tolist() for k in ("true_positives", "false_positives", "false_negatives",
                                                       "iou_sum")}
    eomt._on_eval_epoch_end_panoptic("val", log_per_class=True)
    return {"images": used, "class_ids": ids, "state": state, "logged": logged}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lightning_module", type=Path, help="EoMT's training/lightning_module.py")
    ap.add_argument("out", type=Path, help="the fixture to write")
    ap.add_argument("--commit", help="EoMT's commit the file is from (default: git's, where it is in a checkout)")
    a = ap.parse_args()
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "pq")]
    from rule_sets import CATS, coco_images, images  # the tests' image sets

    cls = eomt_module(a.lightning_module)
    sets = {"synthetic": record(cls, images(), CATS), "coco_sample": record(cls, *coco_images())}
    commit = a.commit or subprocess.run(["git", "-C", str(a.lightning_module.parent), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip() or None
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({
        "what": "EoMT's own panoptic evaluation of tests/pq/test_rules.py's image sets, recorded by "
                "scripts/record_eomt_fixture.py (a reference output, not a measurement)",
        "eomt_commit": commit, "torchmetrics": torchmetrics.__version__, **sets}, indent=1) + "\n")
    for name, got in sets.items():
        print(f"{a.out}: {name}, {len(got['images'])} images, PQ {got['logged']['metrics/val_pq_all']:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
