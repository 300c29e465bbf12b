"""A COCO-panoptic-format dataset on disk (COCO val2017, the demo set, or a user's own).

Layout under the root::

    val2017/*.jpg                        images
    annotations/panoptic_val2017.json    images, annotations, categories
    annotations/panoptic_val2017/*.png   ground-truth segment ids (R + 256G + 256^2B)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.errors import InputError
from panbench.pq.coco_format import parse_annotations, parse_categories, read_json, safe_join
from panbench.pq.matching import CategoryTable

HOW_TO_GET = {
    "coco": "unzip val2017.zip and panoptic_annotations_trainval2017.zip from cocodataset.org under {root} "
    "(README: Data), or pass --data-root DIR",
    "demo": "run `panbench data demo` (seconds, offline)",
}


@dataclass
class Sample:
    """One image to evaluate: where its image and ground truth are."""

    image_id: int | str
    image_path: Path
    gt_png: Path
    height: int
    width: int
    gt_ann: dict[str, Any]


@dataclass
class PanopticDataset:
    """The images of one split, with categories and the subset that was selected."""

    name: str
    root: Path
    categories: CategoryTable
    samples: list[Sample]
    ann_file: Path

    @property
    def image_ids(self) -> list[int | str]:
        return [s.image_id for s in self.samples]

    def fingerprint(self) -> str:
        """A short hash of the annotation file and the selected image ids (keys caches and results)."""
        h = hashlib.sha256()
        h.update(self.ann_file.read_bytes())
        h.update(repr(self.image_ids).encode())
        return h.hexdigest()[:16]


def load_dataset(
    root: str | Path,
    name: str = "coco",
    split: str = "val2017",
    limit: int | None = None,
    subset: str | Path | None = None,
) -> PanopticDataset:
    """Read and check ``root``; select ``subset`` (a file of image ids) and/or the first ``limit``."""
    root = Path(root)
    ann_file = root / "annotations" / f"panoptic_{split}.json"
    if not ann_file.is_file():
        how = HOW_TO_GET.get(name, HOW_TO_GET["coco"]).format(root=root)
        raise InputError(f"{ann_file}: dataset '{name}' not found; {how}")
    data = read_json(ann_file, "panoptic annotation JSON")
    cats = parse_categories(data, ann_file)
    anns = parse_annotations(data, ann_file, gt=True)
    images = data.get("images")
    if not isinstance(images, list):
        raise InputError(f"{ann_file}: missing field 'images'; use the official panoptic_{split}.json")
    img_dir, png_dir = root / split, root / "annotations" / f"panoptic_{split}"
    samples = []
    for im in images:
        if not isinstance(im, dict) or not {"id", "file_name", "height", "width"} <= set(im):
            raise InputError(f"{ann_file}: an entry of 'images' lacks id, file_name, height or width")
        ann = anns.get(im["id"])
        if ann is None:
            raise InputError(f"{ann_file}: image {im['id']} has no entry in 'annotations'")
        where = f"{ann_file}: image {im['id']}"
        for seg in ann["segments_info"]:
            if seg["category_id"] not in cats.index:
                raise InputError(f"{where}: segment {seg['id']} has unknown category_id {seg['category_id']}; "
                                 "every category_id must be listed in 'categories'")
        samples.append(Sample(im["id"], safe_join(img_dir, im["file_name"], where),
                              safe_join(png_dir, ann["file_name"], where), int(im["height"]), int(im["width"]), ann))
    if subset is not None:
        wanted = read_subset(subset)
        by_id = {s.image_id: s for s in samples}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise InputError(f"{subset}: image id {missing[0]} is not in {ann_file}; list ids of this split only")
        samples = [by_id[i] for i in wanted]
    if limit is not None:
        samples = samples[: max(0, limit)]
    return PanopticDataset(name, root, cats, samples, ann_file)


def read_subset(path: str | Path) -> list[int]:
    """Image ids, one per line (``#`` comments allowed), in file order."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: subset file not found; give a file with one image id per line")
    ids = []
    for k, line in enumerate(p.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            ids.append(int(line))
        except ValueError:
            raise InputError(f"{p}: line {k} is not an image id ({line!r}); one integer per line") from None
    return ids
