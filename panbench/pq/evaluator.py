"""One image from id maps to its :class:`~panbench.pq.result.ImageResult`: :func:`score_pair` checks two id maps
(from memory, as a model produces them, or from PNGs) and their segments_info, counts the intersection table and
matches it (:func:`panbench.pq.matching.match_image`): the one per-image function that ``eval``'s evaluators,
``panbench score``, the metrics and the analyses call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq import native
from panbench.pq.boundary import boundary_image_stats
from panbench.pq.coco_format import UnlistedIdError, parse_segments
from panbench.pq.diagnosis import Finding, channel_order, id_encoding, input_size
from panbench.pq.kernels import MAX_ID
from panbench.pq.matching import RES_COUNTS, CategoryTable, ImageMatch, Segments, match_image, res_of
from panbench.pq.quirks import Table, table_of
from panbench.pq.result import ImageResult

_NONE = np.zeros(0, np.int64)
_NONE.flags.writeable = False  # shared by every image without unlisted pixels (its unlisted_px)


def score_pair(cats: CategoryTable, gt_ids: np.ndarray, gt_segments_info: list[dict[str, Any]], pred_ids: np.ndarray,
               pred_segments_info: list[dict[str, Any]], where: str = "image", strict: bool = False,
               boundary: bool = False, tables: list[Table] | None = None) -> ImageResult:
    """One image scored from two id maps (``R + 256G + 256^2B``) and their segments_info: its match, the semantic
    confusion pairs and unlisted pixels of its intersection table and, with ``boundary``, its boundary-PQ
    contributions (a second pass over the pixels).  Ground-truth pixels whose id ``segments_info`` does not list are
    scored as panopticapi scores them (neither matched nor VOID: a prediction overlapping them keeps them in its union)
    and counted in ``unlisted_px``; ``strict`` refuses them.  ``where`` names the image in errors.  ``tables``, where
    given, gets the image's table appended (:data:`~panbench.pq.quirks.Table`: what other rules' sums are counted
    from)."""
    inter, gt, pred = pair_table(cats, gt_ids, gt_segments_info, pred_ids, pred_segments_info, where, strict,
                                 areas=False)
    result = table_result(inter, gt, pred, where)
    if boundary:
        result.boundary = boundary_image_stats(gt_ids, gt, pred_ids, pred, inter)
    if tables is not None:
        tables.append(table_of(inter, gt, pred))
    return result


def pair_table(cats: CategoryTable, gt_ids: np.ndarray, gt_segments_info: list[dict[str, Any]],
               pred_ids: np.ndarray, pred_segments_info: list[dict[str, Any]], where: str = "image",
               strict: bool = False, areas: bool = True) -> tuple[np.ndarray, Segments, Segments]:
    """What :func:`score_pair` matches: the intersection table of two id maps and their segments, with its one-line
    errors; with ``areas`` checked too (``pred.areas`` counted from the pixels)."""
    if gt_ids.shape != pred_ids.shape:
        g, p = gt_ids.shape, pred_ids.shape
        found = input_size((p[0], p[1]), (g[0], g[1]))
        raise InputError(f"{where}: prediction is {p[1]}x{p[0]} but the image is {g[1]}x{g[0]}; "
                         + (found.message if found else "predict at the original image size"))
    gt, pred = image_segments(cats, gt_segments_info, pred_segments_info, where)
    inter = intersection_table(gt_ids, gt, pred_ids, pred, where, strict, cats)
    if areas:
        _check_areas(inter, gt, pred, where)
    return inter, gt, pred


def image_segments(cats: CategoryTable, gt_segments_info: list[dict[str, Any]],
                   pred_segments_info: list[dict[str, Any]], where: str = "image") -> tuple[Segments, Segments]:
    """Both sides' segments_info checked and as arrays (:func:`~panbench.pq.coco_format.parse_segments`)."""
    return (parse_segments(gt_segments_info, cats, f"{where} (ground truth)", gt=True),
            parse_segments(pred_segments_info, cats, f"{where} (prediction)", gt=False))


def table_result(inter: np.ndarray, gt: Segments, pred: Segments, where: str = "image") -> ImageResult:
    """An image's result from its intersection table: the areas checked (``pred.areas`` counted), the match, the
    semantic confusion pairs and unlisted pixels."""
    _check_areas(inter, gt, pred, where)
    return _image_result(inter, gt, pred, match_image(inter, gt, pred))


def _image_result(inter: np.ndarray, gt: Segments, pred: Segments, match: ImageMatch) -> ImageResult:
    """The match with the semantic confusion pairs and unlisted ground-truth pixels of its table (``_match.fold``)."""
    raw = native.match().fold(
        np.ascontiguousarray(inter, np.int64), len(gt), len(pred), np.ascontiguousarray(gt.cats, np.int64),
        np.ascontiguousarray(pred.cats, np.int64))
    cols, n = res_of(raw), int(np.frombuffer(raw, np.int64, RES_COUNTS)[5])  # the fold alone; unlisted pixels
    return ImageResult(match, cols["sem_gt"], cols["sem_pred"], cols["sem_px"], np.array([n], np.int64) if n else _NONE)


def intersection_table(gt_ids: np.ndarray, gt: Segments, pred_ids: np.ndarray, pred: Segments, where: str,
                       strict: bool = False, cats: CategoryTable | None = None) -> np.ndarray:
    """The (len(gt) + 2) x (len(pred) + 1) table of :func:`panbench.pq.matching.match_image` (``_native.pair_counts``
    over the pixels).  ``cats`` lets a refused prediction PNG's error name an id encoding."""
    inter = np.empty((len(gt) + 2, len(pred) + 1), np.int64)
    bad = native.pixels().pair_counts(
        _as_u32(gt_ids, where, True), _as_u32(pred_ids, where, False), gt.ids, pred.ids, inter, strict)
    if bad is not None:
        found: Finding | None = None
        if bad[0] == 1:  # a mistake that explains ids absent from segments_info: swapped channels, encoded categories
            png_ids, listed = [bad[1], *np.unique(pred_ids).tolist()], pred.ids.tolist()
            found = channel_order(png_ids, listed) or (id_encoding(png_ids, listed, cats) if cats is not None else None)
        raise unlisted_id_error(where, bad[0] == 0, bad[1], found)
    return inter


def _check_areas(inter: np.ndarray, gt: Segments, pred: Segments, where: str) -> None:
    """Predicted areas from the intersection table into ``pred.areas`` (every listed segment must be in the PNG),
    ground-truth areas checked against it (else an IoU above 1, which panopticapi would add up): ``_match.areas``."""
    areas = np.empty(len(pred), np.int64)
    bad = native.match().areas(np.ascontiguousarray(inter, np.int64), len(gt), len(pred),
                                             np.ascontiguousarray(gt.areas, np.int64), areas)
    if bad is not None and bad[0] == 0:
        k = bad[1]
        raise InputError(f"{where} (ground truth): segment {int(gt.ids[k])} has area {int(gt.areas[k])} in "
                         f"segments_info but {int(inter[k + 1].sum())} pixels in the PNG; the annotation PNG and JSON "
                         "do not belong together (or set 'area' to the pixel count)")
    if bad is not None:  # a caller that sees the other images may name the mistake behind it
        raise UnlistedIdError(f"{where} (prediction): segments_info id {int(pred.ids[bad[1]])} is absent from the PNG",
                              "drop empty segments from segments_info")
    pred.areas = areas


def unlisted_id_error(where: str, gt_side: bool, seg_id: int, why: Finding | None = None) -> InputError:
    """The error of a PNG id that segments_info does not list (of the ground truth, or of the prediction with the
    finding that explains it, where one does)."""
    if gt_side:
        return InputError(f"{where} (ground truth): PNG segment id {seg_id} is absent from segments_info; the "
                          "annotation PNG and JSON do not belong together (without --strict such pixels are scored "
                          "as panopticapi scores them)")
    return UnlistedIdError(f"{where} (prediction): PNG segment id {seg_id} is absent from segments_info",
                           why.message if why else "list every segment of the PNG in segments_info",
                           why.kind if why else None)


def _as_u32(ids: np.ndarray, where: str, gt_side: bool) -> np.ndarray:
    if ids.dtype == np.uint32:
        return np.ascontiguousarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= MAX_ID):
        raise unlisted_id_error(where, gt_side, int(ids[(ids < 0) | (ids >= MAX_ID)].ravel()[0]))
    return np.ascontiguousarray(ids, np.uint32)
