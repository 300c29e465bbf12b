"""Generated panoptic label maps for tests, benchmarks and the demo dataset, driven by a seeded generator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from panbench.pq.kernels import MAX_ID


@dataclass
class PanopticImage:
    """One image's segment-id map (uint32) and its COCO ``segments_info``."""

    ids: np.ndarray
    segments_info: list[dict[str, Any]]


def coco_like_categories(n_things: int = 8, n_stuff: int = 6) -> list[dict[str, Any]]:
    """Non-contiguous category ids with things and stuff interleaved, as in COCO."""
    cats = []
    cid, n_t, n_s = 1, 0, 0
    for k in range(n_things + n_stuff):
        isthing = int((k % 2 == 0 and n_t < n_things) or n_s >= n_stuff)
        n_t, n_s = n_t + isthing, n_s + (1 - isthing)
        cats.append({"id": cid, "name": f"{'thing' if isthing else 'stuff'}{k}", "isthing": isthing,
                     "supercategory": "synthetic", "color": [(37 * cid) % 256, (91 * cid) % 256, (151 * cid) % 256]})
        cid += 1 + (k % 3 == 1) * 2  # gaps in the ids, as in COCO
    return cats


def unique_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct segment ids in 1..2^24-1 (large, as COCO's color-coded ids are)."""
    ids: set[int] = set()
    while len(ids) < n:
        ids.update(int(x) for x in rng.integers(1, MAX_ID, n - len(ids)))
    return np.array(sorted(ids), np.int64)[rng.permutation(n)]


def random_image(rng: np.random.Generator, height: int, width: int, categories: list[dict[str, Any]],
                 n_stuff: tuple[int, int] = (2, 4), n_things: tuple[int, int] = (1, 8), void_fraction: float = 0.02,
                 crowd_prob: float = 0.1) -> PanopticImage:
    """A panoptic image: stuff regions split by random lines, thing ellipses over them, a little VOID; two stuff regions
    may have one class (a PQ test case: :func:`merge_stuff` makes them one segment)."""
    import cv2

    stuff = [c for c in categories if not c["isthing"]]
    things = [c for c in categories if c["isthing"]]
    k_stuff = int(rng.integers(n_stuff[0], n_stuff[1] + 1)) if stuff else 0
    k_things = int(rng.integers(n_things[0], n_things[1] + 1)) if things else 0
    ids = unique_ids(rng, k_stuff + k_things + 1)
    label = np.zeros((height, width), np.int32)  # index into `segs`, -1 for void
    segs: list[dict[str, Any]] = []
    if k_stuff:
        label = _stuff_regions(rng, height, width, k_stuff, stuff, ids, segs)
    prev = None
    last_center, last_axes = (0, 0), (0, 0)
    crowd_cats: set[int] = set()  # at most one crowd segment per category: panopticapi keeps only one
    for t in range(k_things):
        cat = things[int(rng.integers(len(things)))] if prev is None or rng.random() > 0.3 else prev
        mask = np.zeros((height, width), np.uint8)
        scale = rng.uniform(0.03, 0.35)
        ax = (max(2, int(width * scale * rng.uniform(0.5, 1))), max(2, int(height * scale * rng.uniform(0.5, 1))))
        if prev is cat and segs:  # a same-class neighbour that touches the previous instance
            cy, cx = last_center
            center = (int(np.clip(cx + last_axes[0] + ax[0] - 1, 0, width - 1)), int(cy))
        else:
            center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.ellipse(mask, center, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        last_center, last_axes, prev = (center[1], center[0]), ax, cat
        if not mask.any():
            continue
        crowd = int(rng.random() < crowd_prob and cat["id"] not in crowd_cats)
        if crowd:
            crowd_cats.add(cat["id"])
        label[mask.astype(bool)] = len(segs)
        segs.append({"id": int(ids[k_stuff + t]), "category_id": cat["id"], "iscrowd": crowd})
    if void_fraction > 0:  # three random discs of VOID, void_fraction of the image in all
        void = np.zeros((height, width), np.uint8)
        for _ in range(3):
            r = max(1, int(np.sqrt(void_fraction * height * width / 3 / np.pi)))
            cv2.circle(void, (int(rng.integers(0, width)), int(rng.integers(0, height))), r, 1, -1)
        label[void.astype(bool)] = -1
    # the id map, keeping the segments that have pixels
    id_of = np.array([s["id"] for s in segs] + [0], np.uint32)
    areas = np.bincount(label.ravel() + 1, minlength=len(segs) + 1)[1:]
    return PanopticImage(id_of[label], [{**s, "area": int(a)} for s, a in zip(segs, areas) if a > 0])


def _stuff_regions(rng: np.random.Generator, height: int, width: int, k_stuff: int, stuff: list[dict[str, Any]],
                   ids: np.ndarray, segs: list[dict[str, Any]]) -> np.ndarray:
    """The stuff regions carved by random half-planes (indices into ``segs``, to which they are appended)."""
    yy, xx = np.mgrid[0:height, 0:width]
    region = np.zeros((height, width), np.int32)
    for r in range(1, k_stuff):
        a = rng.uniform(0, np.pi)
        off = rng.uniform(0.2, 0.8) * (height * abs(np.sin(a)) + width * abs(np.cos(a)))
        region[(xx * np.cos(a) + yy * np.sin(a)) > off * 0.9] = r
    cats_s = rng.choice(len(stuff), k_stuff)
    for r in range(k_stuff):
        segs.append({"id": int(ids[r]), "category_id": stuff[cats_s[r]]["id"], "iscrowd": 0})
    return region


def merge_stuff(img: PanopticImage, categories: list[dict[str, Any]]) -> PanopticImage:
    """``img`` with one segment per stuff category: the first one of a class takes the others' pixels and area."""
    stuff = {c["id"] for c in categories if not c["isthing"]}
    first: dict[int, dict[str, Any]] = {}
    segs: list[dict[str, Any]] = []
    merged: dict[int, int] = {}  # dropped segment id -> the id that takes its pixels
    for s in img.segments_info:
        if (keep := first.get(s["category_id"])) is not None:
            keep["area"] += s["area"]
            merged[s["id"]] = keep["id"]
            continue
        segs.append(dict(s))
        if s["category_id"] in stuff:
            first[s["category_id"]] = segs[-1]
    ids = img.ids.copy() if merged else img.ids
    for old, new in merged.items():
        ids[img.ids == old] = new
    return PanopticImage(ids, segs)


def perturb(rng: np.random.Generator, img: PanopticImage, categories: list[dict[str, Any]]) -> PanopticImage:
    """A plausible prediction from a ground truth: segments shifted, dropped, relabelled, merged and added."""
    ids = img.ids.copy()
    segs = [dict(s) for s in img.segments_info]
    h, w = ids.shape
    dy, dx = (int(v) for v in rng.integers(-6, 7, 2))
    ids = np.roll(ids, (dy, dx), axis=(0, 1))
    cat_ids = [c["id"] for c in categories]
    for s in segs:
        u = rng.random()
        if u < 0.1:
            ids[ids == s["id"]] = 0  # dropped: leaves VOID behind
        elif u < 0.2:
            s["category_id"] = int(rng.choice(cat_ids))  # misclassified
    if len(segs) >= 2 and rng.random() < 0.3:  # two segments merged into one
        a, b = rng.choice(len(segs), 2, replace=False)
        ids[ids == segs[b]["id"]] = segs[a]["id"]
    if rng.random() < 0.5:  # a spurious segment
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        ids[max(0, y - 15) : y + 15, max(0, x - 15) : x + 15] = 1 + int(rng.integers(MAX_ID - 1))
        segs.append({"id": int(ids[y, x]), "category_id": int(rng.choice(cat_ids))})
    present, counts = np.unique(ids, return_counts=True)
    count_of = dict(zip(present.tolist(), counts.tolist()))
    new_ids = unique_ids(rng, len(present))
    remap = dict(zip(present.tolist(), new_ids.tolist()))
    remap[0] = 0
    out_segs, seen = [], set()
    for s in segs:
        if s["id"] in count_of and s["id"] != 0 and s["id"] not in seen:
            seen.add(s["id"])
            out_segs.append({"id": remap[s["id"]], "category_id": s["category_id"], "iscrowd": 0,
                             "area": int(count_of[s["id"]])})
    lut_to = np.array([remap[v] for v in present.tolist()], np.uint32)
    return PanopticImage(lut_to[np.searchsorted(present, ids)].astype(np.uint32), out_segs)


def bbox(mask: np.ndarray) -> list[int]:
    """The COCO bounding box [x, y, width, height] of a non-empty mask."""
    xs, ys = (np.nonzero(mask.any(axis=a))[0] for a in (0, 1))
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """The inverse of ``rgb2id``: HxW ids to HxWx3 uint8."""
    ids = ids.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def write_png(path: Path, ids: np.ndarray) -> None:
    """Write an id map as an RGB PNG the way COCO's converters do (PIL)."""
    from PIL import Image

    Image.fromarray(id2rgb(ids)).save(path)


def write_panoptic(root: Path, name: str, images: list[tuple[int, PanopticImage]],
                   categories: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Write ``root/name.json`` and ``root/name/*.png`` as they are; returns (json path, png folder)."""
    png_dir = root / name
    png_dir.mkdir(parents=True, exist_ok=True)
    anns, imgs = [], []
    for image_id, im in images:
        fname = f"{image_id:012d}.png"
        write_png(png_dir / fname, im.ids)
        h, w = im.ids.shape
        imgs.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "height": h, "width": w})
        anns.append({"image_id": image_id, "file_name": fname, "segments_info": im.segments_info})
    js = root / f"{name}.json"
    js.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": categories}))
    return js, png_dir
