"""scripts/pq_bench_data.py: the real-PNG benchmark set is COCO's own ground truth, each file cropped, rolled and
re-encoded (distinct bytes), and predictions whose segments_info agrees with their pixels; panbench and panopticapi
score it alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from panbench.package import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from pq_bench_data import SAMPLE, make_real_set, perturb_real  # noqa: E402

pytestmark = pytest.mark.skipif(not (SAMPLE / "panoptic_val2017.json").is_file(),
                                reason=f"the COCO panoptic sample is not at {SAMPLE}")


@pytest.fixture(scope="module")
def real_set(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("real")
    make_real_set(work, 12)
    return work


def test_ground_truth_files_are_distinct_reshaped_coco_pngs(real_set: Path) -> None:
    """Every ground-truth file its own bytes (no decode can be skipped by content), each a crop and roll of a
    COCO PNG whose segments_info areas are its pixel counts."""
    from panbench.pq.png import read_ids

    gt = json.loads((real_set / "gt.json").read_text())
    src = json.loads((SAMPLE / "panoptic_val2017.json").read_text())
    sources = {p.read_bytes() for p in (SAMPLE / "panoptic_val2017").glob("*.png")}
    files = [(real_set / "gt" / a["file_name"]).read_bytes() for a in gt["annotations"]]
    assert len(gt["annotations"]) == 12 and len(set(files)) == 12 and not set(files) & sources
    seg_ids = {i: {s["id"] for s in a["segments_info"]} for i, a in enumerate(src["annotations"])}
    by_id = {im["id"]: (im["height"], im["width"]) for im in src["images"]}
    sizes = {i: by_id[a["image_id"]] for i, a in enumerate(src["annotations"])}
    for k, (a, im) in enumerate(zip(gt["annotations"], gt["images"])):
        ids = read_ids(real_set / "gt" / a["file_name"], "gt")
        h, w = sizes[k % 2]  # the sources are cycled
        assert ids.shape == (im["height"], im["width"]) and h - 48 <= ids.shape[0] <= h and w - 48 <= ids.shape[1] <= w
        present, counts = np.unique(ids, return_counts=True)
        assert set(present.tolist()) - {0} <= seg_ids[k % 2]
        assert {s["id"]: s["area"] for s in a["segments_info"]} == {int(i): int(c) for i, c in zip(present, counts)
                                                                    if i}


def test_predictions_areas_are_their_pixels(real_set: Path) -> None:
    from panbench.pq.png import read_ids

    pred = json.loads((real_set / "pred.json").read_text())
    for a in pred["annotations"]:
        ids = read_ids(real_set / "pred" / a["file_name"], "pred")
        present, counts = np.unique(ids, return_counts=True)
        want = {int(i): int(c) for i, c in zip(present, counts) if i}
        assert {s["id"]: s["area"] for s in a["segments_info"]} == want


def test_every_kind_of_error_occurs() -> None:
    ids = np.zeros((60, 80), np.uint32)
    ids[:, :40], ids[:30, 40:], ids[30:, 40:] = 1, 2, 3
    segs = [{"id": 1, "category_id": 100}, {"id": 2, "category_id": 1}, {"id": 3, "category_id": 1}]
    rng = np.random.default_rng(0)
    outs = [perturb_real(rng, ids, segs, things=[1, 2], stuff=[100, 101]) for _ in range(200)]
    assert any(len({s["id"] for s in info} & {1, 2, 3}) < 3 for _, info in outs)  # dropped or merged
    assert any(any(s["id"] > 3 for s in info) for _, info in outs)  # split or hallucinated
    assert any(any(s["id"] == 1 and s["category_id"] == 101 for s in info) for _, info in outs)  # relabelled
    assert any((out == 0).sum() > 0 for out, _ in outs)  # shifted or eroded: VOID appears


def test_panbench_scores_it_as_panopticapi(real_set: Path) -> None:
    pytest.importorskip("panopticapi")
    from panopticapi.evaluation import pq_compute

    f = [str(real_set / n) for n in ("gt.json", "gt", "pred.json", "pred")]
    r = subprocess.run([sys.executable, "-m", "panbench", "score", "--gt-json", f[0], "--gt-dir", f[1],
                        "--pred-json", f[2], "--pred-dir", f[3], "--json", "--procs", "1"],
                       capture_output=True, text=True, check=True)
    ours = json.loads(r.stdout)
    ref = pq_compute(f[0], f[2], gt_folder=f[1], pred_folder=f[3])
    assert abs(ours["PQ"] - 100 * ref["All"]["pq"]) < 1e-9


def test_workers_and_analyses_leave_the_numbers_bit_identical_on_real_pngs(real_set: Path) -> None:
    f = [str(real_set / n) for n in ("gt.json", "gt", "pred.json", "pred")]
    base = [sys.executable, "-m", "panbench", "score", "--gt-json", f[0], "--gt-dir", f[1], "--pred-json", f[2],
            "--pred-dir", f[3], "--json"]
    out = {}
    for name, extra in (("1", ["--procs", "1"]), ("2", ["--procs", "2"]), ("2 plain", ["--procs", "2",
                        "--no-analysis"])):
        r = subprocess.run([*base, *extra], capture_output=True, text=True, check=True)
        out[name] = json.loads(r.stdout)
    assert out["1"] == out["2"]  # every metric and analysis, per class included
    assert {k: out["2"][k] for k in out["2 plain"]} == out["2 plain"]
