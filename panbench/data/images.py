"""Images without ground truth (``panbench eval --images``): a folder of images, or an image-info JSON
such as COCO's ``image_info_test-dev2017.json``.  The model runs on them and its predictions are
saved; nothing is scored.

The categories (ids, names, thing/stuff) come from the JSON when its categories carry ``isthing``
(mmdet's ``panoptic_image_info_test-dev2017.json``), else from the annotation file of the dataset
named by ``--dataset`` (COCO's test-dev image info lists the 80 detection categories without
``isthing``: its panoptic categories are val2017's).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.data.catalog import DATASETS
from panbench.data.datasets import PanopticDataset, Sample, layout
from panbench.errors import InputError
from panbench.pq.coco_format import parse_categories, read_json, safe_join
from panbench.pq.matching import CategoryTable

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class ImageSet(PanopticDataset):
    """A :class:`PanopticDataset` whose samples have no ground truth (``gt_png`` and ``gt_ann`` are None,
    height and width 0 until the image is read).  ``prefix`` names the saved predictions
    (``panoptic_test-dev2017`` for ``image_info_test-dev2017.json``)."""

    prefix: str = "panoptic_images"

    def fingerprint(self) -> str:
        """A short hash of the image list (ids, file names and sizes) and of the JSON, if any."""
        h = hashlib.sha256()
        if self.ann_file.is_file():
            h.update(self.ann_file.read_bytes())
        for s in self.samples:
            h.update(repr((s.image_id, str(s.image_path.name), s.image_path.stat().st_size)).encode())
        return h.hexdigest()[:16]


def load_images(path: str | Path, dataset: str, data_root: str | Path, image_dir: str | Path | None = None,
                limit: int | None = None) -> ImageSet:
    """The images of a folder (sorted by name; an all-digit file stem is an integer id, as in COCO) or of an
    image-info JSON (its ``images`` list, files under ``image_dir``, default ``DATA_ROOT/test2017``)."""
    p = Path(path)
    cats: CategoryTable | None
    if p.is_dir():
        if image_dir is not None:
            raise InputError(f"{p}: --image-dir goes with an image-info JSON; the folder given to --images holds the "
                             "images: leave --image-dir out")
        samples = _folder_samples(p)
        cats, prefix, ann = None, "panoptic_" + re.sub(r"[^A-Za-z0-9.-]+", "-", p.name), p
    elif p.is_file():
        data = read_json(p, "image-info JSON")
        samples = _json_samples(p, data, Path(image_dir) if image_dir else Path(data_root) / "test2017")
        cats_raw = data.get("categories")
        with_isthing = isinstance(cats_raw, list) and cats_raw and all(
            isinstance(c, dict) and "isthing" in c for c in cats_raw)
        cats = parse_categories(data, p) if with_isthing else None
        stem = p.stem.removeprefix("panoptic_").removeprefix("image_info_")
        prefix, ann = f"panoptic_{stem}", p
    else:
        raise InputError(f"{p}: --images must be a folder of images or an image-info JSON; not found")
    if cats is None:
        cats = dataset_categories(dataset, Path(data_root))
    if limit is not None:
        samples = samples[:limit]
    return ImageSet(dataset, p if p.is_dir() else p.parent, cats, samples, ann, prefix=prefix)


def _folder_samples(p: Path) -> list[Sample]:
    """One sample per image file of folder ``p``, sorted by name, without size or annotation."""
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise InputError(f"{p}: no images (*.jpg, *.png, ...) in this folder; pass --images a folder of images "
                         "or an image-info JSON")
    samples: list[Sample] = []
    seen: dict[int | str, Path] = {}
    for f in files:
        image_id = int(f.stem) if f.stem.isdigit() else f.stem
        if image_id in seen:
            raise InputError(f"{f}: image id {image_id} also names {seen[image_id].name}; give each image its "
                             "own file stem")
        seen[image_id] = f
        samples.append(Sample(image_id, f, None, 0, 0, None))  # type: ignore[arg-type]
    return samples


def _json_samples(p: Path, data: dict[str, Any], folder: Path) -> list[Sample]:
    """One sample per entry of the ``images`` list of image-info JSON ``p`` (``data``), files under ``folder``."""
    images = data.get("images")
    if not isinstance(images, list) or not images:
        raise InputError(f"{p}: no 'images' list; pass COCO's image_info_test-dev2017.json or a folder of images")
    samples = []
    for im in images:
        if not isinstance(im, dict) or not {"id", "file_name"} <= set(im):
            raise InputError(f"{p}: an entry of 'images' lacks id or file_name")
        f = safe_join(folder, im["file_name"], f"{p}: image {im['id']}")
        if not f.is_file():
            raise InputError(f"{f}: image {im['id']} of {p.name} not found; pass --image-dir, the folder that "
                             "holds the JSON's images (COCO test-dev: test2017/)")
        size = int(im.get("height") or 0), int(im.get("width") or 0)
        samples.append(Sample(im["id"], f, None, *size, None))  # type: ignore[arg-type]
    return samples


def dataset_categories(dataset: str, root: Path) -> CategoryTable:
    """The categories of ``dataset``'s annotation file under ``root``."""
    ann_file = layout(root, dataset, "val2017")[0]
    if not ann_file.is_file():
        how = DATASETS.get(dataset, DATASETS["coco"]).how_to_get.format(root=root)
        raise InputError(f"{ann_file}: the categories for --images come from dataset '{dataset}''s annotation file, "
                         f"not found; {how}")
    return parse_categories(read_json(ann_file, "panoptic annotation JSON"), ann_file)
