"""Tiny inputs in the layouts of the Mapillary Vistas v1.2 panoptic val and COCONut's relabeled COCO val releases
(synthetic pixels, not real data) for tests/data/test_mapillary_coconut.py and test_doctor_cards.py. Mapillary's
categories are the real ones: Mask2Former's ``MAPILLARY_VISTAS_SEM_SEG_CATEGORIES``, read with ``ast`` from the
vendored tarball unpacked into a temporary folder (nothing of it is kept in the repository)."""

from __future__ import annotations

import ast
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from panbench.package import REPO_ROOT

H, W = 12, 16
M2F = REPO_ROOT.parent / "shared" / "vendor" / "Mask2Former-9b0651c.tar.gz"
M2F_FILE = "Mask2Former-9b0651c/mask2former/data/datasets/register_mapillary_vistas_panoptic.py"
VISTAS_IDS = ["_1Gn_xkw7sa_i9GU4mkxxQ", "-2bUiYcwLVsWnlQgEzXWjQ"]  # Mapillary's image keys: strings
COCO_IDS = [139, 285]


def vistas_categories(dst: Path) -> list[dict[str, Any]]:
    """The 65 categories of Mask2Former's register_mapillary_vistas_panoptic.py, its tarball unpacked into ``dst``."""
    if not M2F.is_file():
        pytest.skip(f"Mask2Former's source is not at {M2F} (../shared/vendor)")
    with tarfile.open(M2F) as tar:
        tar.extractall(dst, members=[tar.getmember(M2F_FILE)], filter="data")
    tree = ast.parse((dst / M2F_FILE).read_text())
    value = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                 and [getattr(t, "id", None) for t in n.targets] == ["MAPILLARY_VISTAS_SEM_SEG_CATEGORIES"])
    return ast.literal_eval(value)


def coco_like_categories() -> list[dict[str, Any]]:
    """133 categories, 80 things then 53 stuff, on COCO's id gaps' scale (ids 1-200 with gaps)."""
    ids = [i for i in range(1, 201) if i % 3 != 0][:133]
    return [{"id": i, "name": f"class {i}", "isthing": int(k < 80), "supercategory": "x"} for k, i in enumerate(ids)]


def _segments(k: int, stuff: list[int], things: list[int]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One image's segment ids and segments_info: VOID rows, two stuff regions, two instances and a crowd region of
    one thing class, an instance of another."""
    ids = np.zeros((H, W), np.int64)  # rows 0-1: VOID
    parts = [((slice(2, 6), slice(None)), stuff[0], 0), ((slice(6, None), slice(None)), stuff[1], 0),
             ((slice(6, 10), slice(0, 4)), things[0], 0), ((slice(6, 10), slice(5, 9)), things[0], 0),
             ((slice(10, None), slice(10, None)), things[0], 1), ((slice(2, 6), slice(12, None)), things[1], 0)]
    infos = []
    for n, (where, cat, crowd) in enumerate(parts):
        sid = 1 + 65793 * n + 7 * k  # 65793 = 1 + 256 + 256²: every byte of the RGB PNG in use
        ids[where] = sid
        infos.append({"id": sid, "category_id": cat, "iscrowd": crowd})
    for s in infos:
        ys, xs = np.nonzero(ids == s["id"])
        s["area"] = int(len(ys))
        s["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return ids, infos


def _release(png_dir: Path, img_dir: Path, image_ids: list[Any], cats: list[dict[str, Any]]) -> dict[str, Any]:
    """The PNGs and images of ``image_ids`` written, and the panoptic JSON naming them (``<id>.jpg``, ``<id>.png``;
    a COCO id is zero-padded to 12 digits)."""
    stuff = [c["id"] for c in cats if not c["isthing"]][:2]
    things = [c["id"] for c in cats if c["isthing"]][:2]
    png_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for k, image_id in enumerate(image_ids):
        stem = f"{image_id:012d}" if isinstance(image_id, int) else image_id
        ids, infos = _segments(k, stuff, things)
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).save(png_dir / f"{stem}.png")
        Image.fromarray(np.full((H, W, 3), 40 * k, np.uint8)).save(img_dir / f"{stem}.jpg")
        images.append({"file_name": f"{stem}.jpg", "height": H, "width": W, "id": image_id})
        anns.append({"file_name": f"{stem}.png", "image_id": image_id, "segments_info": infos})
    return {"images": images, "annotations": anns, "categories": cats}


def make_vistas(src: Path, cats: list[dict[str, Any]], nesting: str = "panoptic") -> Path:
    """A Mapillary Vistas download under ``src``: validation/images/*.jpg and validation/<nesting>/ with
    panoptic_2018.json and its PNGs (v1.2: ``panoptic``; v2.0 keeps v1.2's as ``v1.2/panoptic`` beside its own
    ``v2.0/panoptic/panoptic_2020.json``, written too). Returns the v1.2 JSON."""
    val = src / "validation"
    data = _release(val / nesting, val / "images", VISTAS_IDS, cats)
    (val / nesting / "panoptic_2018.json").write_text(json.dumps(data))
    if nesting.startswith("v1.2"):  # v2.0's own panoptic files: not what the v1.2 card is on
        (val / "v2.0" / "panoptic").mkdir(parents=True)
        (val / "v2.0" / "panoptic" / "panoptic_2020.json").write_text(json.dumps({**data, "categories": cats[:3]}))
    return val / nesting / "panoptic_2018.json"


def make_coconut(src: Path, pngs: str = "folder", images: Path | None = None) -> Path:
    """COCONut's relabeled COCO val under ``src``: relabeled_coco_val.json with its PNGs as ``folder``
    (relabeled_coco_val/), ``zip-root`` or ``zip-folder`` (relabeled_coco_val.zip, entries at its root or under
    one folder); COCO's val2017 images written in ``images`` (default src/val2017). Returns the JSON."""
    png_dir = src / "relabeled_coco_val"
    data = _release(png_dir, images or src / "val2017", COCO_IDS, coco_like_categories())
    (src / "relabeled_coco_val.json").write_text(json.dumps(data))
    if pngs != "folder":
        with zipfile.ZipFile(src / "relabeled_coco_val.zip", "w") as zf:
            for p in sorted(png_dir.iterdir()):
                zf.write(p, p.name if pngs == "zip-root" else f"relabeled_coco_val/{p.name}")
        for p in png_dir.iterdir():
            p.unlink()
        png_dir.rmdir()
    return src / "relabeled_coco_val.json"
