"""Record compiled mmcv 2.1.0's outputs of the ops panbench re-implements (``panbench.ops``), as test fixtures.

    .venv/bin/python scripts/record_mmcv_ops.py [--out tests/fixtures/mmcv_ops]

Needs compiled mmcv (``mmcv._ext``): exits 2 with the fix when it is absent.  Writes, under ``--out``:

* ``nms.npz``: for each case, the inputs (``<case>/boxes``, ``scores``, ``idxs`` for ``batched_nms``, the
  IoU threshold and offset) and mmcv's answer (``<case>/keep``).  Cases:
  tied scores, exact duplicates, zero-size boxes, IoUs exactly at the threshold, offset 0 and 1, class
  offsets on large coordinates (``batched_nms``, whose ``keep`` is stored), empty input, a random set.
* ``roi_align.npz``: features and RoIs (some outside the image, some of zero or sub-pixel size) in float32 and
  float64, and mmcv's ``roi_align_forward`` outputs (``output``, and ``argmax_y``/``argmax_x`` for max
  pooling) for aligned True/False, avg/max, sampling_ratio 0 and 2, spatial scales 1/4 and 1/3.
* ``demo_predictions.json``: with ``--demo`` (runs ``panbench eval --model all --dataset demo`` with
  ``PANBENCH_OPS=mmcv``, a few minutes), the sha256 of each demo model's predicted segment map and segment
  list per image, and its PQ.

Every input comes from ``numpy.random.RandomState`` with fixed seeds (a frozen stream), and the files are
small.  tests/ops/test_ops_mmcv_parity.py compares panbench's ops with these files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIX = "install compiled mmcv (PANBENCH_MMCV=compiled make setup, docs/setup.md)"


def _boxes(rs: np.random.RandomState, n: int, extent: float, size: float) -> np.ndarray:
    xy = rs.uniform(0, extent, (n, 2))
    wh = rs.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def _clustered(rs: np.random.RandomState, n: int, extent: float, clusters: int) -> np.ndarray:
    """``n`` boxes around ``clusters`` objects in [0, extent]: heavily overlapping, as detector proposals are."""
    which = rs.randint(0, clusters, n)
    centre = rs.uniform(0, extent, (clusters, 2))[which]
    size = rs.uniform(20, 300, (clusters, 2))[which] * rs.uniform(0.85, 1.15, (n, 2))
    xy = centre + rs.uniform(-10, 10, (n, 2)) - size / 2
    return np.concatenate([xy, xy + size], 1).astype(np.float32)


def nms_cases() -> dict[str, dict]:
    """name -> {boxes, scores, thr, offset[, idxs]} (float32 boxes and scores)."""
    rs = np.random.RandomState(0)
    cases: dict[str, dict] = {}
    for off in (0, 1):
        b = _boxes(rs, 300, 100, 30)
        cases[f"ties_offset{off}"] = {"boxes": b, "scores": (rs.randint(0, 5, 300) / 4).astype(np.float32),
                                      "thr": 0.5, "offset": off}
        base = _boxes(rs, 40, 100, 30)
        b = np.concatenate([base, base, base])
        s = np.concatenate([rs.randint(0, 3, 40) / 2] * 3).astype(np.float32)
        s[::7] = rs.uniform(0, 1, len(s[::7]))
        cases[f"duplicates_offset{off}"] = {"boxes": b, "scores": s, "thr": 0.5, "offset": off}
        b = _boxes(rs, 120, 50, 10)
        b[::3, 2] = b[::3, 0]  # zero width
        b[1::4, 3] = b[1::4, 1]  # zero height
        b[:10] = b[10:20]
        b[:10, 2:] = b[:10, :2]  # points, duplicated positions
        cases[f"zero_size_offset{off}"] = {"boxes": b, "scores": (rs.randint(0, 4, 120) / 3).astype(np.float32),
                                           "thr": 0.3, "offset": off}
        # pairs whose IoU is exactly k/10 (areas 100 and 10*k with this offset), at thresholds k/10 and nearby
        rows, scores = [], []
        for i, k in enumerate(range(1, 10)):
            x0 = 30.0 * i
            rows += [[x0, 0, x0 + 10 - off, 10 - off], [x0, 0, x0 + 10 - off, k - off]]
            scores += [0.9, 0.8]
        b = np.array(rows, np.float32)
        s = np.array(scores, np.float32)
        for thr in (0.3, 0.5, 0.7, 0.29999998, 0.70000005):
            cases[f"iou_at_threshold_{thr}_offset{off}"] = {"boxes": b, "scores": s, "thr": thr, "offset": off}
    cases["empty"] = {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32), "thr": 0.5,
                      "offset": 0}
    b = _clustered(rs, 1000, 1333, 40)
    cases["rpn_random"] = {"boxes": b, "scores": rs.uniform(0, 1, 1000).astype(np.float32), "thr": 0.7,
                           "offset": 0}
    # batched_nms: mmcv shifts each class by idxs * (max coordinate + 1); 80 classes on COCO-sized boxes reach
    # coordinates near 1e5, where float32 keeps 1/128 of a pixel (inputs on a 1/64 grid: a smaller file)
    n = 1500
    b = np.round(_clustered(rs, n, 1300, 60) * 64) / 64
    s = np.round(rs.uniform(0, 1, n), 2).astype(np.float32)
    cases["batched_large_coordinates"] = {"boxes": b, "scores": s, "idxs": rs.randint(0, 80, n), "thr": 0.5,
                                          "offset": 0}
    b = np.round(_clustered(rs, n, 1300, 60) * 64) / 64
    cases["batched_large_coordinates_offset1"] = {"boxes": b, "scores": s, "idxs": rs.randint(0, 80, n),
                                                  "thr": 0.6, "offset": 1}
    return cases


def roi_inputs(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Features (2, 2, 20, 28) and 16 RoIs in image coordinates: inside, across and outside the borders,
    of zero and sub-pixel size."""
    rs = np.random.RandomState(1 if dtype == np.float32 else 2)
    feat = rs.standard_normal((2, 2, 20, 28)).astype(dtype)
    xy = rs.uniform(-30, 130, (16, 2))
    wh = rs.uniform(0, 70, (16, 2))
    wh[0] = 0  # zero size
    wh[1] = rs.uniform(0, 3, 2)  # below one feature pixel at scale 1/3 and 1/4
    xy[2] = [150, 100]  # entirely outside (right, below)
    xy[3] = [-80, -60]  # entirely outside (left, above)
    rois = np.concatenate([rs.randint(0, 2, (16, 1)), xy, xy + wh], 1).astype(dtype)
    return feat, rois


ROI_CONFIGS = [(dt, aligned, mode, sr, scale) for dt in ("float32", "float64") for aligned in (True, False)
               for mode in (0, 1) for sr in (0, 2) for scale in (0.25, 1 / 3)]
ROI_OUT = (5, 4)


def roi_key(dt: str, aligned: bool, mode: int, sr: int, scale: float) -> str:
    return f"{dt}_aligned{int(aligned)}_{'max' if mode == 0 else 'avg'}_sr{sr}_scale{scale:.4f}"


def record_ops(out: Path) -> None:
    import torch
    from mmcv.ops import batched_nms, nms
    from mmcv.ops.roi_align import ext_module

    arrays: dict[str, np.ndarray] = {}
    for name, c in nms_cases().items():
        b, s = torch.from_numpy(c["boxes"]), torch.from_numpy(c["scores"])
        arrays[f"{name}/boxes"], arrays[f"{name}/scores"] = c["boxes"], c["scores"]
        arrays[f"{name}/thr"], arrays[f"{name}/offset"] = np.float64(c["thr"]), np.int64(c["offset"])
        if "idxs" in c:
            cfg = {"type": "nms", "iou_threshold": c["thr"], "offset": c["offset"]}
            _, keep = batched_nms(b, s, torch.from_numpy(c["idxs"]), cfg)
            arrays[f"{name}/idxs"] = c["idxs"]
        else:
            _, keep = nms(b, s, c["thr"], c["offset"])
        arrays[f"{name}/keep"] = keep.numpy()
    np.savez_compressed(out / "nms.npz", **arrays)

    arrays = {}
    for dt in (np.float32, np.float64):
        feat, rois = roi_inputs(dt)
        arrays[f"{np.dtype(dt).name}/input"], arrays[f"{np.dtype(dt).name}/rois"] = feat, rois
    for dt, aligned, mode, sr, scale in ROI_CONFIGS:
        x, r = torch.from_numpy(arrays[f"{dt}/input"]), torch.from_numpy(arrays[f"{dt}/rois"])
        shape = (r.shape[0], x.shape[1], *ROI_OUT)
        o = x.new_zeros(shape)  # what mmcv's RoIAlignFunction allocates
        ay, ax = (x.new_zeros(shape), x.new_zeros(shape)) if mode == 0 else (x.new_zeros(0), x.new_zeros(0))
        ext_module.roi_align_forward(x, r, o, ay, ax, aligned_height=ROI_OUT[0], aligned_width=ROI_OUT[1],
                                     spatial_scale=scale, sampling_ratio=sr, pool_mode=mode, aligned=aligned)
        key = roi_key(dt, aligned, mode, sr, scale)
        arrays[f"{key}/output"] = o.numpy()
        if mode == 0:
            arrays[f"{key}/argmax_y"], arrays[f"{key}/argmax_x"] = ay.numpy(), ax.numpy()
    np.savez_compressed(out / "roi_align.npz", **arrays)


def prediction_digests(preds: Path, model: str) -> dict[str, str]:
    """file name -> sha256 (16 hex) of the decoded segment-id map and the segment list (id, category) of each
    prediction of ``model`` in a ``--save-predictions`` folder: the same for the same predictions whatever
    encoded the PNG."""
    import hashlib

    from panbench.pq.png import read_ids

    stem = preds / f"panoptic_val2017_{model}_results"
    data = json.loads(stem.with_suffix(".json").read_text())
    out = {}
    for ann in data["annotations"]:
        ids = read_ids(stem / ann["file_name"], "prediction")
        segs = sorted((s["id"], s["category_id"]) for s in ann["segments_info"])
        h = hashlib.sha256(np.ascontiguousarray(ids, np.uint32).tobytes())
        h.update(json.dumps(segs).encode())
        out[ann["file_name"]] = h.hexdigest()[:16]
    return out


def demo_digests(results: Path, preds: Path) -> dict[str, dict]:
    """model -> {"PQ", "images": {file: digest}} of a ``panbench eval --model all --dataset demo`` run."""
    out = {}
    for rec in sorted((results / "runs").glob("*.json")):
        r = json.loads(rec.read_text())
        out[r["model"]] = {"PQ": r["metrics"]["PQ"], "images": prediction_digests(preds, r["model"])}
    return out


def record_demo(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        res, preds = Path(tmp) / "results", Path(tmp) / "preds"
        cmd = [sys.executable, "-m", "panbench", "eval", "--model", "all", "--dataset", "demo", "--results",
               str(res), "--save-predictions", str(preds), "--no-progress", "--no-resume"]
        env = {**os.environ, "PANBENCH_OPS": "mmcv", "PYTHONPATH": str(ROOT)}
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
        digests = demo_digests(res, preds)
    (out / "demo_predictions.json").write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "mmcv_ops")
    ap.add_argument("--demo", action="store_true", help="also record the demo models' predictions (minutes)")
    a = ap.parse_args(argv)
    from panbench.ops import compiled_mmcv

    if not compiled_mmcv():
        print(f"record_mmcv_ops: mmcv has no compiled ops (mmcv._ext) to record; {FIX}", file=sys.stderr)
        return 2
    os.environ["PANBENCH_OPS"] = "mmcv"
    from panbench.ops import install

    install()
    a.out.mkdir(parents=True, exist_ok=True)
    record_ops(a.out)
    if a.demo:
        record_demo(a.out)
    for p in sorted(a.out.iterdir()):
        print(f"{p} ({p.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
