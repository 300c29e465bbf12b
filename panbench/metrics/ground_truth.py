"""A dataset's ground truth for the metrics: a COCO panoptic JSON and its folder of PNGs, each PNG decoded
once per process when asked to keep it.

A kept image costs one byte per pixel when it has fewer than 255 segments (its map is kept as the index of each
pixel's segment, uint8: 0.3 MB for COCO's 640x480, about 1.5 GB for the 5000 images of COCO val2017), two bytes
up to 65534 segments, and four (the ids themselves) where the PNG holds ids its segments_info does not list.
A kept image is scored as it is kept: the index map with its segments numbered 1..n in their order (the match
reads which pixel belongs to which segment, never the ids themselves), so reading it back costs nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq.coco_format import png_folder, read_ground_truth, safe_join
from panbench.pq.kernels import _SENTINEL, index_map
from panbench.pq.matching import CategoryTable
from panbench.pq.png import read_ids


class GroundTruth:
    """The ground truth of a COCO panoptic dataset, read image by image.

    ``gt_json``: the panoptic JSON; ``gt_folder``: its PNGs (default: the JSON's path without ``.json``, as
    panopticapi and COCO's layout name it).  With ``keep`` each decoded image stays in memory (see the module's
    note on its cost) until :meth:`clear`."""

    def __init__(self, gt_json: str | os.PathLike[str], gt_folder: str | os.PathLike[str] | None = None,
                 keep: bool = False) -> None:
        self.json_path = Path(gt_json)
        self.folder = Path(gt_folder) if gt_folder is not None else png_folder(gt_json)
        truth = read_ground_truth(self.json_path)
        self.categories: CategoryTable = truth.categories
        self.annotations: dict[Any, dict[str, Any]] = truth.annotations
        self.sizes = truth.sizes
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: the ground-truth PNG folder of {self.json_path} does not exist; pass "
                             "gt_folder (the folder of its panoptic PNGs)")
        self.keep = keep
        self._kept: dict[Any, tuple[np.ndarray, list[dict[str, Any]]]] = {}

    def __contains__(self, image_id: Any) -> bool:
        return image_id in self.annotations

    def __len__(self) -> int:
        return len(self.annotations)

    @property
    def kept_bytes(self) -> int:
        """The memory the kept images take."""
        return sum(m.nbytes for m, _ in self._kept.values())

    def clear(self) -> None:
        """Drop the kept images."""
        self._kept.clear()

    def image(self, image_id: Any) -> tuple[np.ndarray, list[dict[str, Any]], str, bool]:
        """Image ``image_id``'s id map, its segments_info, its name for messages and whether it is a kept image
        (then its index map and its segments numbered as the map numbers them)."""
        ann = self.annotations.get(image_id)
        if ann is None:
            raise _unknown_image(self.json_path, image_id, self.annotations)
        where = f"image {image_id}"
        segments = ann["segments_info"]
        kept = self._kept.get(image_id)
        if kept is not None:
            return kept[0], kept[1], where, True
        png = safe_join(self.folder, ann["file_name"], f"{where} (ground truth)")
        return read_ids(png, where, shape=self.sizes.get(image_id), role="ground truth"), segments, where, False

    def hold(self, image_id: Any, ids: np.ndarray, segments: list[dict[str, Any]]) -> None:
        """Keep image ``image_id`` (its map as :meth:`image` read it, once scoring has checked it and its
        segments: the compact copy relies on their ids being valid and unique)."""
        self._kept[image_id] = _compact(ids, segments)


def _compact(ids: np.ndarray, segments: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A map to keep and its segments: each pixel's segment index (uint8 or uint16, 0 VOID) with the segments
    numbered 1..n, or the ids and segments as they are where some pixel's id is in no segment."""
    seg_ids = np.array([s["id"] for s in segments], np.int64)
    if len(seg_ids) + 1 >= int(_SENTINEL):
        return ids.copy(), segments
    # a PNG's ids are below 2^24: as int32 numpy's take indexes the table without converting them to intp first
    index = index_map(ids.view(np.int32) if ids.dtype == np.uint32 else ids, seg_ids)
    if (index == _SENTINEL).any():
        return ids.copy(), segments
    numbered = [{**seg, "id": k} for k, seg in enumerate(segments, 1)]
    return index.astype(np.uint8 if len(seg_ids) < 255 else np.uint16), numbered


def _unknown_image(path: Path, image_id: Any, annotations: dict[Any, Any]) -> InputError:
    other = str(image_id) if not isinstance(image_id, str) else int(image_id) if image_id.isdigit() else None
    if other is not None and other in annotations:
        return InputError(f"{path}: image_id {image_id!r} is a {type(image_id).__name__} but the ground truth has "
                          f"{other!r}; pass the image ids as the ground-truth JSON writes them")
    return InputError(f"{path}: no annotation of image {image_id!r}; pass the ids of this JSON's images (or the "
                      "ground-truth JSON of the images you evaluate)")
