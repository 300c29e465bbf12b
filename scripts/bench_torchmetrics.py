#!/usr/bin/env python
"""PQ as a torchmetrics metric: torchmetrics' ``PanopticQuality`` against panbench's ``PanbenchPanopticQuality``
(panbench.integrations.torchmetrics) on the same tensors, update + compute.

Two data sets (``--set synthetic|real|both``):

- synthetic: ``--images`` (500) generated 640x480 images of about 20 segments (scripts/bench_pq.py's generator,
  panbench.data.synth), ground truth and perturbed prediction;
- real: scripts/bench_pq.py's set of COCO's own PNGs (``--real-images``, 1000; scripts/pq_bench_data.py).

Each image's ground-truth and prediction PNGs become torchmetrics' ``(1, H, W, 2)`` (category, instance) tensors
outside the timer (a thing segment: its category and its rank among that category's segments; a stuff category:
instance 0; VOID and unlisted ids: a category outside the data set's, i.e. VOID for both metrics, which run with
``allow_unknown_preds_category=True``).  Each side runs in a child process of its own, batches of ``--batch``
images; timed: its ``update`` calls and the final ``compute``.  Peak memory: per ``update``/``compute`` call the
rise of the process's resident set above its size before the call (Linux's VmHWM, reset before each call through
/proc/self/clear_refs), the largest over the run; the same for both sides.

torchmetrics takes seconds per COCO-size image, so it runs on the first ``--tm-images`` images of each set
(default: all); panbench runs on all of them and its time on the same first images gives the ratio.

Numbers: torchmetrics differs from panopticapi by rule (a predicted VOID pixel is taken out of the target's area;
docs/api.md, "torchmetrics / Lightning"), so both are printed; panbench's must equal ``panbench score`` on the
tensors written back as COCO panoptic PNG + JSON (all images) and panopticapi's ``pq_compute_single_core`` (the
first ``--tm-images``) to 1e-9, or the script exits 1 before printing any ratio.

    nice -n 19 .venv/bin/python scripts/bench_torchmetrics.py --tm-images 40
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
PY = sys.executable
TOL = 1e-9


def tensor_form(ids: np.ndarray, segs: list[dict[str, Any]], isthing: dict[int, bool], void: int) -> np.ndarray:
    """One image's id map and segments_info as torchmetrics' HxWx2 (category, instance) int64 (module docstring)."""
    uniq, inv = np.unique(ids, return_inverse=True)
    by_id = {s["id"]: s["category_id"] for s in segs}
    pair = np.zeros((len(uniq), 2), np.int64)
    rank: dict[int, int] = {}
    for k, sid in enumerate(uniq.tolist()):
        cat = by_id.get(sid)
        if cat is None:  # VOID, or an id segments_info does not list
            pair[k] = (void, 0)
        elif isthing[cat]:
            rank[cat] = rank.get(cat, 0) + 1
            pair[k] = (cat, rank[cat])
        else:
            pair[k] = (cat, 0)
    return pair[inv.reshape(ids.shape)]


def coco_form(x: np.ndarray, isthing: dict[int, bool]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """torchmetrics' HxWx2 back to an id map and segments_info (a segment per thing (category, instance), one per
    stuff category, other categories VOID, no crowd): what panopticapi and ``panbench score`` read."""
    cat, inst = x[..., 0], np.where(np.isin(x[..., 0], [c for c, t in isthing.items() if not t]), 0, x[..., 1])
    span = int(inst.max()) + 1  # tensor_form's instances are 0..n
    uniq, inv, cnt = np.unique((cat - int(cat.min())) * span + inst, return_inverse=True, return_counts=True)
    cats = uniq // span + int(cat.min())
    known = np.array([int(c) in isthing for c in cats], bool)
    new = np.where(known, np.cumsum(known), 0).astype(np.uint32)
    segs = [{"id": int(new[k]), "category_id": int(cats[k]), "iscrowd": 0, "area": int(cnt[k])}
            for k in np.flatnonzero(known)]
    return new[inv.reshape(x.shape[:2])], segs


class Images:
    """A set's images (gt.json/gt, pred.json/pred under ``work``) as torchmetrics tensors, decoded on demand."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.gt, self.pred = (json.loads((work / f"{n}.json").read_text()) for n in ("gt", "pred"))
        self.isthing = {c["id"]: bool(c["isthing"]) for c in self.gt["categories"]}
        self.void = max(self.isthing) + 1
        self.pred_by_id = {a["image_id"]: a for a in self.pred["annotations"]}

    def __len__(self) -> int:
        return len(self.gt["annotations"])

    @property
    def describe(self) -> str:
        sizes = sorted({f"{im['width']}x{im['height']}" for im in self.gt["images"]})
        seg = [np.mean([len(a["segments_info"]) for a in d["annotations"]]) for d in (self.gt, self.pred)]
        return (f"{', '.join(sizes[:3])}{' ...' if len(sizes) > 3 else ''}, {seg[0]:.1f} ground-truth and "
                f"{seg[1]:.1f} predicted segments per image")

    def pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``k``'s (prediction, target), HxWx2."""
        from panbench.pq.png import read_ids

        g = self.gt["annotations"][k]
        p = self.pred_by_id[g["image_id"]]
        out = []
        for name, ann in (("pred", p), ("gt", g)):
            ids = read_ids(self.work / name / ann["file_name"], name)
            out.append(tensor_form(ids, ann["segments_info"], self.isthing, self.void))
        return out[0], out[1]


def _hwm_kib() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _rss_kib() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _call(fn: Any, *args: Any) -> tuple[Any, float, int]:
    """``fn(*args)``: its value, seconds and the rise of the resident set above its size before (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _rss_kib()
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t, _hwm_kib() - before


def child(side: str, work: Path, n: int, marks: list[int], batch: int) -> None:
    """One side's run over the first ``n`` images; prints JSON: at each of ``marks`` images, the seconds of
    update + compute so far, the peak rise so far (MiB) and PQ, SQ, RQ."""
    import torch

    from panbench.integrations.torchmetrics import PanbenchPanopticQuality

    if side == "torchmetrics":
        from torchmetrics.detection import PanopticQuality as Metric
    else:
        Metric = PanbenchPanopticQuality
    images = Images(work)
    things = [c for c, t in images.isthing.items() if t]
    stuffs = [c for c, t in images.isthing.items() if not t]
    metric = Metric(things, stuffs, allow_unknown_preds_category=True, return_sq_and_rq=True)
    seconds, peak, out = 0.0, 0, {}
    for start in range(0, n, batch):
        pairs = [images.pair(k) for k in range(start, min(n, start + batch))]
        preds = torch.from_numpy(np.stack([p for p, _ in pairs]))
        target = torch.from_numpy(np.stack([t for _, t in pairs]))
        _, dt, rise = _call(metric.update, preds, target)
        seconds, peak = seconds + dt, max(peak, rise)
        done = start + len(pairs)
        if done in marks:
            value, dt, rise = _call(metric.compute)
            out[done] = {"seconds": seconds + dt, "peak_mib": max(peak, rise) / 1024, "pq_sq_rq": value.tolist()}
    print(json.dumps(out))


def run_child(side: str, work: Path, n: int, marks: list[int], batch: int) -> dict[int, dict[str, Any]]:
    cmd = [PY, __file__, "--child", side, "--work", str(work), "--n", str(n), "--batch", str(batch),
           "--marks", ",".join(map(str, marks))]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{side} failed:\n{r.stderr[-3000:]}")
    return {int(k): v for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}


PANOPTICAPI = """
import json, sys
from panopticapi.evaluation import pq_compute_single_core
gj, gd, pj, pd = sys.argv[1:5]
gt, pred = json.load(open(gj)), json.load(open(pj))
cats = {c['id']: c for c in gt['categories']}
p = {a['image_id']: a for a in pred['annotations']}
stat = pq_compute_single_core(0, [(a, p[a['image_id']]) for a in gt['annotations']], gd, pd, cats)
r = stat.pq_average(cats, isthing=None)[0]
print(json.dumps([r['pq'], r['sq'], r['rq']]))
"""


def write_reference(images: Images, out: Path, n: int) -> None:
    """The tensors of the first ``n`` images written back as COCO panoptic files (``out``/gt.json, gt/, pred.json,
    pred/), and ``gt.K.json``/``pred.K.json`` for the first K images (:func:`subset`)."""
    from panbench.data.synth import write_png

    stamp = out / f"done-{n}"
    if stamp.exists():
        return
    anns: dict[str, list[dict[str, Any]]] = {"gt": [], "pred": []}
    for name in anns:
        (out / name).mkdir(parents=True, exist_ok=True)
    for k in range(n):
        pred, target = images.pair(k)
        g = images.gt["annotations"][k]
        for name, x in (("pred", pred), ("gt", target)):
            ids, segs = coco_form(x, images.isthing)
            write_png(out / name / g["file_name"], ids)
            anns[name].append({"image_id": g["image_id"], "file_name": g["file_name"], "segments_info": segs})
    for name, a in anns.items():
        (out / f"{name}.json").write_text(json.dumps({"images": images.gt["images"][:n], "annotations": a,
                                                      "categories": images.gt["categories"]}))
    stamp.write_text("ok")


def subset(ref: Path, k: int) -> list[str]:
    """The reference files of the first ``k`` images (gt.json, gt, pred.json, pred)."""
    files = []
    for name in ("gt", "pred"):
        d = json.loads((ref / f"{name}.json").read_text())
        d["annotations"], d["images"] = d["annotations"][:k], d["images"][:k]
        (ref / f"{name}.{k}.json").write_text(json.dumps(d))
        files += [str(ref / f"{name}.{k}.json"), str(ref / name)]
    return files


def references(ref: Path, n: int, k: int) -> tuple[list[float], list[float]]:
    """``panbench score`` on all ``n`` reference images and panopticapi on the first ``k``: (PQ, SQ, RQ) each."""
    r = subprocess.run([PY, "-m", "panbench", "score", "--gt-json", str(ref / "gt.json"), "--gt-dir", str(ref / "gt"),
                        "--pred-json", str(ref / "pred.json"), "--pred-dir", str(ref / "pred"), "--json",
                        "--no-analysis"], capture_output=True, text=True, check=True)
    score = json.loads(r.stdout)
    api = subprocess.run([PY, "-c", PANOPTICAPI, *subset(ref, k)], capture_output=True, text=True, check=True)
    return [score[m] / 100 for m in ("PQ", "SQ", "RQ")], json.loads(api.stdout.strip().splitlines()[-1])


def bench_set(name: str, work: Path, a: argparse.Namespace) -> None:
    images = Images(work)
    n = len(images)
    k = min(n, a.tm_images or n)
    write_reference(images, work / "tensors-as-coco", n)
    score, api = references(work / "tensors-as-coco", n, k)
    pb = run_child("panbench", work, n, sorted({k, n}), a.batch)
    tm = run_child("torchmetrics", work, k, [k], a.batch)
    for got, want, what in ((pb[n]["pq_sq_rq"], score, f"panbench score on {n} images"),
                            (pb[k]["pq_sq_rq"], api, f"panopticapi on {k} images")):
        if not np.allclose(got, want, atol=TOL, rtol=0):
            raise SystemExit(f"{name}: PanbenchPanopticQuality {got} != {what} {want}: no ratio printed")
    print(f"\n{name}: {n} images, {images.describe}; PQ, SQ, RQ of PanbenchPanopticQuality equal `panbench score` "
          f"({n} images) and panopticapi ({k} images) to {TOL:g}")
    print("| side | images | update + compute (s) | ms/image | peak memory rise (MiB) | PQ | SQ | RQ |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [("torchmetrics PanopticQuality", k, tm[k]), ("PanbenchPanopticQuality", k, pb[k])]
    if n != k:
        rows.append(("PanbenchPanopticQuality", n, pb[n]))
    for side, m, r in rows:
        v = r["pq_sq_rq"]
        print(f"| {side} | {m} | {r['seconds']:.2f} | {1000 * r['seconds'] / m:.1f} | {r['peak_mib']:.1f} | "
              f"{v[0]:.4f} | {v[1]:.4f} | {v[2]:.4f} |")
    ratio = tm[k]["seconds"] / pb[k]["seconds"]
    mem = "no higher" if pb[k]["peak_mib"] <= tm[k]["peak_mib"] else "HIGHER"
    print(f"speed-up on the same {k} images: {ratio:.1f}x (goal >= 20x: {'met' if ratio >= 20 else 'NOT met'}); "
          f"panbench's peak memory rise {pb[k]['peak_mib']:.1f} MiB vs torchmetrics' {tm[k]['peak_mib']:.1f} MiB "
          f"({mem}); PQ differs by {tm[k]['pq_sq_rq'][0] - pb[k]['pq_sq_rq'][0]:+.4f} (torchmetrics' rules)")


def prepare(name: str, a: argparse.Namespace) -> Path:
    """The set's files (bench_pq's generator or its real set), made once under ``--workdir``."""
    from bench_pq import make_data
    from pq_bench_data import SAMPLE, make_real_set

    if name == "synthetic":
        work = a.workdir / f"synthetic{a.images}"
        work.mkdir(parents=True, exist_ok=True)
        make_data(work, a.images)
    else:
        work = a.workdir / f"real{a.real_images}"
        work.mkdir(parents=True, exist_ok=True)
        make_real_set(work, a.real_images, a.sample or SAMPLE)
    return work


def header() -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}, commit {commit}{' (modified)' if dirty else ''}, load average {load}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("synthetic", "real", "both"), default="both")
    ap.add_argument("--images", type=int, default=500, help="synthetic images (640x480, about 20 segments)")
    ap.add_argument("--real-images", type=int, default=1000, help="images of bench_pq.py's real set")
    ap.add_argument("--tm-images", type=int, default=0, help="torchmetrics' images per set (default: all)")
    ap.add_argument("--batch", type=int, default=1, help="images per update() call")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-torchmetrics"))
    ap.add_argument("--sample", type=Path, default=None,
                    help="the real PNGs to replicate: a COCO-layout annotations folder (default: the shared sample)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--marks", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.work, a.n, [int(m) for m in a.marks.split(",")], a.batch)
        return
    print(f"bench_torchmetrics: {header()}; batches of {a.batch}")
    for name in ("synthetic", "real") if a.set == "both" else (a.set,):
        bench_set(name, prepare(name, a), a)
    print(f"\nend: {header()}")


if __name__ == "__main__":
    main()
