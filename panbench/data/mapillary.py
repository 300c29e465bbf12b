"""``panbench data mapillary``: Mapillary Vistas v1.2 panoptic val, the release's own ``panoptic_2018.json`` and PNGs
(no conversion): the JSON copied, the PNGs and images linked under the converted layout's names; docs/datasets.md,
"Mapillary Vistas", says where each file comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.data.datasets import copy_json_last, layout, link_or_copy, run_converter
from panbench.errors import InputError
from panbench.pq.coco_format import read_json, safe_join

_NAME = "mapillary"
JSON = "panoptic_2018.json"
# where a download keeps the v1.2 panoptic files, under validation/: v1.2 itself, and v2.0's copy of them
NESTINGS = ("panoptic", "v1.2/panoptic")
_FIX = ("--from takes the folder holding the official validation/ (images/ and panoptic/panoptic_2018.json, or "
        "v1.2/panoptic/ in a v2.0 download), unzipped")


def find_vistas_files(src: Path) -> tuple[Path, Path, Path]:
    """The v1.2 panoptic JSON, its PNG folder and the image folder of ``src`` (the folder holding ``validation/``, or
    ``validation/`` itself); an InputError naming what is missing."""
    val = src / "validation" if (src / "validation").is_dir() else src
    found = [val / n / JSON for n in NESTINGS if (val / n / JSON).is_file()]
    if not found:
        raise InputError(f"{val}: neither {' nor '.join(f'{n}/{JSON}' for n in NESTINGS)} is there (the Mapillary "
                         f"Vistas v1.2 panoptic val); {_FIX}")
    if not (val / "images").is_dir():
        raise InputError(f"{val / 'images'}: the validation images folder is not found; {_FIX}")
    return found[0], found[0].parent, val / "images"


def checked_files(data: dict[str, Any], ann_json: Path, png_dir: Path, img_dir: Path) -> list[tuple[Path, str]]:
    """Each image and PNG of the release's JSON ``data`` (the file, its name in the JSON), after checking that the
    JSON is v1.2's (string image ids, .jpg images, .png annotations) and that every file is there."""
    images, anns = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list) or not images:
        raise InputError(f"{ann_json}: no 'images' or 'annotations' list; {_FIX}")
    by_image = {a.get("image_id"): a for a in anns if isinstance(a, dict)}
    files = []
    for im in images:
        where = f"{ann_json}: image {im.get('id')!r}"
        ann = by_image.get(im.get("id"))
        if not isinstance(im.get("id"), str) or not str(im.get("file_name", "")).endswith(".jpg"):
            raise InputError(f"{where}: not a string id with a .jpg file, as Mapillary Vistas' {JSON} has; {_FIX}")
        if ann is None or not str(ann.get("file_name", "")).endswith(".png"):
            raise InputError(f"{where}: no annotation with a .png file in 'annotations'; {_FIX}")
        img, png = safe_join(img_dir, im["file_name"], where), safe_join(png_dir, ann["file_name"], where)
        for f, what in ((img, "image"), (png, "panoptic PNG")):
            if not f.is_file():
                raise InputError(f"{f}: not found (the {what} of image {im['id']!r}); {_FIX}")
        files += [(img, im["file_name"]), (png, ann["file_name"])]
    return files


def prepare_mapillary(root: Path, src: Path) -> Path:
    """Copy the v1.2 panoptic JSON of ``src`` into ``root`` and link its PNGs and images; returns ``root``."""
    ann_json, png_dir, img_dir = find_vistas_files(src)
    files = checked_files(read_json(ann_json, "Mapillary Vistas panoptic JSON"), ann_json, png_dir, img_dir)
    out_json, out_png, out_img = layout(root, _NAME, "val")
    for f, name in files:
        dst = safe_join(out_png if f.suffix == ".png" else out_img, name, str(f))
        dst.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(f, dst)
    copy_json_last(ann_json, out_json)
    print(f"  {len(files) // 2} images and their panoptic PNGs linked from {img_dir.parent}")
    return root


def data_command(root: Path, args: Any) -> str:
    """``panbench data mapillary``: link ``--from`` into ``root``; the line to print."""
    return run_converter(root, args, _NAME, prepare_mapillary)
