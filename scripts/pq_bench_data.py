"""Benchmark data for scripts/bench_pq.py drawn from COCO's own annotation PNGs.

``make_real_set`` replicates the real COCO val2017 panoptic PNGs of a folder (the two-image sample in
``../shared/data/coco-panoptic-val2017-sample`` by default) into ``n`` ground-truth images, each one its own
file: the source's id map cropped by 0-24 pixels at each side and rolled (wrapped) by a random offset, its
segments' areas counted again, and re-encoded with PIL at a compression level drawn from 1-9, so that no two
ground-truth files (and no two predictions) hold the same bytes and a scorer that skipped a decode by content
would gain nothing. Each one's prediction is perturbed the ways a model errs: shifted, eroded at the segment
borders, two things of a category merged, a segment split in two, relabelled, dropped, and hallucinated
segments; written with PIL like panopticapi's converters.  Each predicted segment carries a model's ``score``
(:func:`segment_score`: high for a segment kept as it was, lower for one split, merged or relabelled, low for a
hallucinated one, with noise), so that the analyses that read scores have data to time on.  ``make_coco_set``
does the same for every ground-truth PNG of a COCO download (val2017's 5000 with ``bench_pq.py --coco DIR``),
whose files are kept byte for byte (they are distinct already).

Both write ``gt.json``, ``gt/``, ``pred.json``, ``pred/`` under the work folder and a stamp, so a second
call with the same arguments returns at once.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panbench.data.synth import id2rgb  # noqa: E402
from panbench.pq.kernels import rgb2id  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample" / "annotations"
# the kinds of error a prediction gets, each with the probability that it hits one segment
PERTURBATIONS = {"drop": 0.08, "relabel": 0.08, "split": 0.06, "erode": 0.3}
# a predicted segment's mean score by what happened to it (segment_score adds noise)
SCORE_MEAN = {"kept": 0.85, "split": 0.55, "merged": 0.6, "relabelled": 0.45, "hallucinated": 0.3}


def segment_score(rng: np.random.Generator, kind: str) -> float:
    """A model's score for a predicted segment of ``kind`` (:data:`SCORE_MEAN`): its mean plus normal noise (sd 0.15),
    clipped to [0, 1] and rounded to 4 decimals."""
    return round(float(np.clip(SCORE_MEAN[kind] + 0.15 * rng.standard_normal(), 0.0, 1.0)), 4)


def _read_rgb_ids(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return rgb2id(np.asarray(im.convert("RGB")), str(path)).astype(np.uint32)


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` less the pixels within ``r`` (4-neighbour steps) of its border."""
    out = mask.copy()
    for _ in range(r):
        inner = out.copy()
        inner[1:, :] &= out[:-1, :]
        inner[:-1, :] &= out[1:, :]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    return out


def perturb_real(rng: np.random.Generator, ids: np.ndarray, segs: list[dict[str, Any]],
                 things: list[int], stuff: list[int]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A prediction from a real ground truth: a shift of 0-5 px, then per segment erosion, splits,
    relabels and drops, a merge of two things of one category, and 0-3 hallucinated things; each predicted segment
    with a score (:func:`segment_score`, drawn after the map, which the scores leave as it was)."""
    h, w = ids.shape
    dy, dx = (int(v) for v in rng.integers(-5, 6, 2))
    out = np.zeros_like(ids)
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = ids[max(0, -dy):h - max(0, dy),
                                                                     max(0, -dx):w - max(0, dx)]
    cat_of = {s["id"]: s["category_id"] for s in segs}
    here = sorted(set(cat_of.values()))  # a model's mistakes name classes the image has

    def pick(pool: list[int], own: int) -> int:
        near = [c for c in here if c in pool and c != own]
        return int(rng.choice(near)) if near else int(rng.choice(pool))

    next_id = int(ids.max()) + 1
    thing_set = set(things)
    kind = {s["id"]: "kept" for s in segs}
    for s in segs:
        sid, u = s["id"], rng.random()
        mask = out == sid
        if not mask.any():
            continue
        if u < PERTURBATIONS["drop"]:
            out[mask] = 0
        elif u < PERTURBATIONS["drop"] + PERTURBATIONS["relabel"]:
            pool = things if s["category_id"] in thing_set else stuff
            cat_of[sid] = pick(pool, s["category_id"])
            kind[sid] = "relabelled"
        elif u < PERTURBATIONS["drop"] + PERTURBATIONS["relabel"] + PERTURBATIONS["split"]:
            ys, xs = np.nonzero(mask)
            cut = mask & (np.arange(w)[None, :] > int(np.median(xs)))
            out[cut] = next_id
            cat_of[next_id] = s["category_id"]
            kind[sid] = kind[next_id] = "split"
            next_id += 1
        if rng.random() < PERTURBATIONS["erode"]:
            out[(out == sid) & ~_erode(out == sid, int(rng.integers(1, 4)))] = 0
    by_cat: dict[int, list[int]] = {}
    for s in segs:
        if s["category_id"] in thing_set and (out == s["id"]).any():
            by_cat.setdefault(s["category_id"], []).append(s["id"])
    pairs = [v for v in by_cat.values() if len(v) >= 2]
    if pairs and rng.random() < 0.5:
        a, b = pairs[int(rng.integers(len(pairs)))][:2]
        out[out == b] = a
        kind[a] = "merged"
    for _ in range(int(rng.integers(0, 4))):
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        ry, rx = int(rng.integers(8, 60)), int(rng.integers(8, 60))
        yy, xx = np.ogrid[:h, :w]
        out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = next_id
        cat_of[next_id] = pick(things, -1)
        kind[next_id] = "hallucinated"
        next_id += 1
    present, counts = np.unique(out, return_counts=True)
    info = [{"id": int(i), "category_id": int(cat_of[int(i)]), "iscrowd": 0, "area": int(c),
             "score": segment_score(rng, kind[int(i)])} for i, c in zip(present.tolist(), counts.tolist()) if i != 0]
    return out, info


def reshape_real(rng: np.random.Generator, ids: np.ndarray,
                 segs: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A distinct ground truth from a real one: cropped by 0-24 pixels at each side, rolled (wrapped) by a random
    offset, and its segments_info with the areas counted again (a segment cropped away is dropped)."""
    h, w = ids.shape
    top, bottom, left, right = (int(v) for v in rng.integers(0, 25, 4))
    out = np.roll(ids[top:h - bottom, left:w - right], (int(rng.integers(0, h)), int(rng.integers(0, w))), (0, 1))
    present, counts = np.unique(out, return_counts=True)
    area = dict(zip(present.tolist(), counts.tolist()))
    info = [{**s, "area": area[s["id"]]} for s in segs if s["id"] in area]
    for s in info:
        s.pop("bbox", None)  # not scored; a rolled segment's box would wrap
    return np.ascontiguousarray(out), info


def _one_image(job: tuple[int, Path, dict[str, Any], dict[str, Any], list[int], list[int], int, Path,
                          bool]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Image ``i``: its ground truth (reshaped and re-encoded unless ``keep`` names a file to copy) and its
    prediction written under ``work``; returns the image entry and both annotations."""
    from PIL import Image

    i, png, ann, img, things, stuff, seed, work, keep = job
    ids = _read_rgb_ids(png)
    rng = np.random.default_rng([seed, i])
    fname = f"{i:012d}.png"
    segs = ann["segments_info"]
    if keep:
        shutil.copyfile(img["_png"], work / "gt" / fname)
    else:
        ids, segs = reshape_real(rng, ids, segs)
        Image.fromarray(id2rgb(ids)).save(work / "gt" / fname, compress_level=int(rng.integers(1, 10)))
    pred_ids, info = perturb_real(rng, ids, segs, things, stuff)
    Image.fromarray(id2rgb(pred_ids)).save(work / "pred" / fname)
    h, w = ids.shape
    image = {k: v for k, v in img.items() if k != "_png"}
    return ({**image, "id": i, "file_name": f"{i:012d}.jpg", "height": h, "width": w},
            {**ann, "segments_info": segs, "image_id": i, "file_name": fname},
            {"image_id": i, "file_name": fname, "segments_info": info})


def _write(work: Path, sources: list[tuple[Path, dict[str, Any], dict[str, Any]]], n: int,
           categories: list[dict[str, Any]], seed: int, keep: bool = False) -> None:
    """``n`` ground-truth images from ``sources`` (png, annotation, image entry), cycled, and their predictions,
    on every core.  ``keep``: the sources' files byte for byte (each is used once) instead of reshaped copies."""
    import multiprocessing as mp

    things = [c["id"] for c in categories if c["isthing"]]
    stuff = [c["id"] for c in categories if not c["isthing"]]
    for name in ("gt", "pred"):
        shutil.rmtree(work / name, ignore_errors=True)
        (work / name).mkdir(parents=True)
    def jobs():  # noqa: ANN202
        for i in range(1, n + 1):
            png, ann, img = sources[(i - 1) % len(sources)]
            yield (i, png, ann, {**img, "_png": str(png)}, things, stuff, seed, work, keep)

    with mp.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        rows = list(pool.imap(_one_image, jobs(), chunksize=8))
    images = [r[0] for r in rows]
    for name, k in (("gt", 1), ("pred", 2)):
        (work / f"{name}.json").write_text(json.dumps({"images": images, "annotations": [r[k] for r in rows],
                                                       "categories": categories}))


def _sources(ann_json: Path, png_dir: Path) -> tuple[list[tuple[Path, dict, dict]], list[dict[str, Any]]]:
    d = json.loads(ann_json.read_text())
    imgs = {im["id"]: im for im in d["images"]}
    return [(png_dir / a["file_name"], a, imgs[a["image_id"]]) for a in d["annotations"]], d["categories"]


def make_real_set(work: Path, n: int, sample: Path = SAMPLE, seed: int = 0) -> str:
    """``n`` distinct ground-truth PNGs made from the real ones under ``sample`` (:func:`reshape_real`) and their
    perturbed predictions."""
    stamp = work / f"done-real3-{n}-{seed}"  # 3: predictions with scores
    if not stamp.exists():
        t = time.perf_counter()
        sources, cats = _sources(sample / "panoptic_val2017.json", sample / "panoptic_val2017")
        _write(work, sources, n, cats, seed)
        stamp.write_text(f"{time.perf_counter() - t:.1f} s")
    return describe(work, f"COCO's own PNGs ({sample}), replicated to {n} distinct files (cropped, rolled, "
                          "re-encoded)")


def make_coco_set(work: Path, coco: Path, seed: int = 0) -> str:
    """Every ground-truth PNG of a COCO panoptic val download (``coco/annotations``) and its prediction."""
    ann = coco / "annotations"
    sources, cats = _sources(ann / "panoptic_val2017.json", ann / "panoptic_val2017")
    stamp = work / f"done-coco3-{len(sources)}-{seed}"  # 3: predictions with scores
    if not stamp.exists():
        _write(work, sources, len(sources), cats, seed, keep=True)
        stamp.write_text("ok")
    return describe(work, f"COCO panoptic val2017 ({coco}), {len(sources)} ground-truth PNGs")


def describe(work: Path, what: str) -> str:
    """One line: what the set is, image sizes, segments per image on each side."""
    gt = json.loads((work / "gt.json").read_text())
    pred = json.loads((work / "pred.json").read_text())
    sizes = sorted({f"{im['width']}x{im['height']}" for im in gt["images"]})
    seg = [np.mean([len(a["segments_info"]) for a in d["annotations"]]) for d in (gt, pred)]
    return (f"{what}: {len(gt['annotations'])} images ({', '.join(sizes[:4])}), {seg[0]:.1f} ground-truth and "
            f"{seg[1]:.1f} predicted segments per image")
