"""panbench's PQ equals MMDetection's own metric: mmengine ``Runner.test`` with mmdet's
``CocoPanopticMetric`` on each demo model's stock config (configs/demo/, the committed demo
checkpoint) against ``panbench eval`` on the same demo val images.  All nine metrics agree to
1e-9 and the per-class TP/FP/FN (from the PQStat that mmdet's metric averages) are equal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.data.demo import make_demo
from panbench.models.registry import resolve
from panbench.package import REPO_ROOT
from panbench.pq.matching import METRIC_KEYS

sys.path.insert(0, str(REPO_ROOT / "scripts"))  # MMDetection's own loop is a reference, not part of the package
from mmdet_reference import run_references  # noqa: E402

pytestmark = pytest.mark.slow
N_IMAGES = 16  # the first 16 of the 60 demo val images keep both sides together under half a minute
MODELS = ("mask2former", "maskformer", "panoptic-fpn")


@pytest.fixture(scope="module")
def both_sides(tmp_path_factory) -> tuple[dict, dict, list[int]]:
    root = make_demo(REPO_ROOT / "data" / "demo")
    ids = [im["id"] for im in json.loads((root / "annotations" / "panoptic_val2017.json").read_text())["images"]]
    ids = ids[:N_IMAGES]
    tmp = tmp_path_factory.mktemp("parity")
    subset = tmp / "subset.txt"
    subset.write_text("".join(f"{i}\n" for i in ids))
    specs = [resolve(m, dataset="demo")[0] for m in MODELS]
    ckpts = [sorted((REPO_ROOT / "checkpoints" / "demo").glob(f"{s.name}-*.pth"))[-1] for s in specs]
    refs, _ = run_references(list(zip((s.config for s in specs), ckpts)), root, limit=N_IMAGES, cwd=REPO_ROOT)
    mmdet = {s.name: r for s, r in zip(specs, refs)}
    res = tmp / "results"
    assert main(["eval", "--model", ",".join(MODELS), "--dataset", "demo", "--data-root", str(root), "--subset",
                 str(subset), "--results", str(res), "--no-progress", "--no-resume"]) == 0
    records = [json.loads(p.read_text()) for p in (res / "runs").glob("*.json")]
    ours = {r["model"]: r for r in records}
    for s, ck in zip(specs, ckpts):
        assert Path(ours[s.name]["provenance"]["checkpoint"]["path"]).resolve() == ck.resolve()
    return mmdet, ours, ids


@pytest.mark.parametrize("model", MODELS)
def test_nine_metrics_and_per_class_counts_equal_mmdetection(both_sides, model) -> None:
    mmdet, ours, ids = both_sides
    name = f"demo-{model}"
    ref, rec = mmdet[name], ours[name]
    assert ref.image_ids == ids and rec["n_images"] == len(ids)  # the same images on both sides
    for k in METRIC_KEYS:
        assert ref.metrics[k] == ref.metrics[k], f"{name}: mmdet's {k} is NaN"
        assert abs(rec["metrics"][k] - ref.metrics[k]) <= 1e-9, (name, k, rec["metrics"][k], ref.metrics[k])
    seen = {c for c, s in ref.per_class.items() if s["TP"] + s["FP"] + s["FN"] > 0}
    assert seen and seen == {c for c, s in rec["per_class"].items() if s["TP"] + s["FP"] + s["FN"] > 0}
    for c in seen:
        got, want = rec["per_class"][c], ref.per_class[c]
        assert (got["TP"], got["FP"], got["FN"]) == (want["TP"], want["FP"], want["FN"]), (name, c)
