"""One image from id maps to its :class:`~panbench.pq.result.ImageResult`: :func:`score_pair` checks two id maps
(from memory, as a model produces them, or from PNGs) and their segments_info, counts the intersection table and
matches it (:func:`panbench.pq.matching.match_image`): the one per-image function that ``eval``'s evaluators,
``panbench score``, the metrics and the analyses call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.errors import InputError
from panbench.pq import native
from panbench.pq.boundary import boundary_image_stats
from panbench.pq.coco_format import UnknownCategoryError, UnlistedIdError, parse_segments
from panbench.pq.diagnosis import Finding, input_size, swap_channels, unlisted_png_ids
from panbench.pq.kernels import MAX_ID
from panbench.pq.matching import RES_COUNTS, CategoryTable, ImageMatch, Segments, match_image, res_of
from panbench.pq.quirks import Table, table_of
from panbench.pq.result import ImageResult

_NONE = np.zeros(0, np.int64)
_NONE.flags.writeable = False  # shared by every image without unlisted pixels (its unlisted_px)


@dataclass(frozen=True)
class Naming:
    """What an image's one-line errors call its id maps and segments lists: a side whose map is None is a PNG and
    its ``segments_info`` (the files of ``eval`` and ``score``), else the map and the list are the arrays and
    arguments of the Python API, named as its caller names them; ``lenient``: how the caller scores unlisted
    ground-truth ids instead of refusing them, ``categories``: where the category ids come from."""

    gt_map: str | None = None
    pred_map: str | None = None
    gt_segments: str = "segments_info"
    pred_segments: str = "segments_info"
    lenient: str = "without --strict"
    categories: str = "the ground-truth JSON"


#: the words of the command line's files: the PNGs and their segments_info
FILE_NAMES = Naming()


def score_pair(cats: CategoryTable, gt_ids: np.ndarray, gt_segments_info: list[dict[str, Any]], pred_ids: np.ndarray,
               pred_segments_info: list[dict[str, Any]], where: str = "image", strict: bool = False,
               boundary: bool = False, tables: list[Table] | None = None, *,
               names: Naming = FILE_NAMES) -> ImageResult:
    """One image scored from two id maps (``R + 256G + 256^2B``) and their segments_info: its match, the semantic
    confusion pairs and unlisted pixels of its intersection table and, with ``boundary``, its boundary-PQ
    contributions (a second pass over the pixels).  Ground-truth pixels whose id ``segments_info`` does not list are
    scored as panopticapi scores them (neither matched nor VOID: a prediction overlapping them keeps them in its union)
    and counted in ``unlisted_px``; ``strict`` refuses them.  ``where`` names the image in errors, ``names`` its maps
    and segments lists.  ``tables``, where given, gets the image's table appended (:data:`~panbench.pq.quirks.Table`:
    what other rules' sums are counted from)."""
    inter, gt, pred = pair_table(cats, gt_ids, gt_segments_info, pred_ids, pred_segments_info, where, strict,
                                 areas=False, names=names)
    result = table_result(inter, gt, pred, where, names)
    if boundary:
        result.boundary = boundary_image_stats(gt_ids, gt, pred_ids, pred, inter)
    if tables is not None:
        tables.append(table_of(inter, gt, pred))
    return result


def pair_table(cats: CategoryTable, gt_ids: np.ndarray, gt_segments_info: list[dict[str, Any]],
               pred_ids: np.ndarray, pred_segments_info: list[dict[str, Any]], where: str = "image",
               strict: bool = False, areas: bool = True, *,
               names: Naming = FILE_NAMES) -> tuple[np.ndarray, Segments, Segments]:
    """What :func:`score_pair` matches: the intersection table of two id maps and their segments, with its one-line
    errors; with ``areas`` checked too (``pred.areas`` counted from the pixels)."""
    if gt_ids.shape != pred_ids.shape:
        raise size_error(where, gt_ids.shape, pred_ids.shape, names)
    gt, pred = image_segments(cats, gt_segments_info, pred_segments_info, where, names)
    inter = intersection_table(gt_ids, gt, pred_ids, pred, where, strict, cats, names)
    if areas:
        _check_areas(inter, gt, pred, where, names)
    return inter, gt, pred


def size_error(where: str, gt_shape: tuple[int, ...], pred_shape: tuple[int, ...],
               names: Naming = FILE_NAMES) -> InputError:
    """The error of a prediction map of another height and width than the ground truth's, with the finding that
    explains it where one does (:func:`~panbench.pq.diagnosis.input_size`)."""
    (gh, gw), (ph, pw) = gt_shape[:2], pred_shape[:2]
    found = input_size((ph, pw), (gh, gw))
    fix = found.message if found else "predict at the original image size"
    if names.pred_map is None:
        return InputError(f"{where}: prediction is {pw}x{ph} but the image is {gw}x{gh}; {fix}")
    fix = fix.replace("write its transpose", "pass its transpose").replace(" before writing it", "")
    return InputError(f"{where}: {names.pred_map} is {pw}x{ph} (width x height) but {names.gt_map or 'the image'} "
                      f"is {gw}x{gh}; {fix}")


def image_segments(cats: CategoryTable, gt_segments_info: list[dict[str, Any]],
                   pred_segments_info: list[dict[str, Any]], where: str = "image",
                   names: Naming = FILE_NAMES) -> tuple[Segments, Segments]:
    """Both sides' segments_info checked and as arrays (:func:`~panbench.pq.coco_format.parse_segments`); a
    predicted category the table lacks is refused with ``names.categories`` named."""
    gt = parse_segments(gt_segments_info, cats, f"{where} (ground truth)", gt=True)
    try:
        return gt, parse_segments(pred_segments_info, cats, f"{where} (prediction)", gt=False)
    except UnknownCategoryError as e:
        if names.categories == FILE_NAMES.categories:
            raise
        raise UnknownCategoryError(e.symptom, f"use the category ids of {names.categories}") from None


def table_result(inter: np.ndarray, gt: Segments, pred: Segments, where: str = "image",
                 names: Naming = FILE_NAMES) -> ImageResult:
    """An image's result from its intersection table: the areas checked (``pred.areas`` counted), the match, the
    semantic confusion pairs and unlisted pixels."""
    _check_areas(inter, gt, pred, where, names)
    return _image_result(inter, gt, pred, match_image(inter, gt, pred))


def _image_result(inter: np.ndarray, gt: Segments, pred: Segments, match: ImageMatch) -> ImageResult:
    """The match with the semantic confusion pairs and unlisted ground-truth pixels of its table (``_match.fold``)."""
    raw = native.match().fold(
        np.ascontiguousarray(inter, np.int64), len(gt), len(pred), np.ascontiguousarray(gt.cats, np.int64),
        np.ascontiguousarray(pred.cats, np.int64))
    cols, n = res_of(raw), int(np.frombuffer(raw, np.int64, RES_COUNTS)[5])  # the fold alone; unlisted pixels
    return ImageResult(match, cols["sem_gt"], cols["sem_pred"], cols["sem_px"], np.array([n], np.int64) if n else _NONE)


def intersection_table(gt_ids: np.ndarray, gt: Segments, pred_ids: np.ndarray, pred: Segments, where: str,
                       strict: bool = False, cats: CategoryTable | None = None,
                       names: Naming = FILE_NAMES) -> np.ndarray:
    """The (len(gt) + 2) x (len(pred) + 1) table of :func:`panbench.pq.matching.match_image` (``_native.pair_counts``
    over the pixels).  ``cats`` lets a refused prediction PNG's error name an id encoding."""
    inter = np.empty((len(gt) + 2, len(pred) + 1), np.int64)
    bad = native.pixels().pair_counts(
        _as_u32(gt_ids, where, True, names), _as_u32(pred_ids, where, False, names), gt.ids, pred.ids, inter, strict)
    if bad is not None:
        found: Finding | None = None
        if bad[0] == 1:  # a mistake that explains ids absent from segments_info: swapped channels, encoding, a resize
            png_ids, listed = [bad[1], *np.unique(pred_ids).tolist()], pred.ids.tolist()
            found = unlisted_png_ids(png_ids, listed, cats, pred_ids)
        raise unlisted_id_error(where, bad[0] == 0, bad[1], found, names)
    return inter


def _check_areas(inter: np.ndarray, gt: Segments, pred: Segments, where: str, names: Naming = FILE_NAMES) -> None:
    """Predicted areas from the intersection table into ``pred.areas`` (every listed segment must be in the PNG),
    ground-truth areas checked against it (else an IoU above 1, which panopticapi would add up): ``_match.areas``."""
    areas = np.empty(len(pred), np.int64)
    bad = native.match().areas(np.ascontiguousarray(inter, np.int64), len(gt), len(pred),
                                             np.ascontiguousarray(gt.areas, np.int64), areas)
    if bad is not None and bad[0] == 0:
        k = bad[1]
        seg, area, pixels = int(gt.ids[k]), int(gt.areas[k]), int(inter[k + 1].sum())
        if names.gt_map is not None:
            raise InputError(f"{where}: {names.gt_segments} gives segment {seg} area {area} but {names.gt_map} holds "
                             f"{pixels} pixels of it; give the pixel count as 'area' (or leave 'area' out: it is "
                             f"counted from {names.gt_map})")
        raise InputError(f"{where} (ground truth): segment {seg} has area {area} in segments_info but {pixels} "
                         "pixels in the PNG; the annotation PNG and JSON do not belong together (or set 'area' to the "
                         "pixel count)")
    if bad is not None:  # a caller that sees the other images may name the mistake behind it
        seg = int(pred.ids[bad[1]])
        if names.pred_map is not None:
            raise UnlistedIdError(f"{where}: {names.pred_segments} lists id {seg}, which {names.pred_map} does not "
                                  "hold", f"drop empty segments from {names.pred_segments}")
        raise UnlistedIdError(f"{where} (prediction): segments_info id {seg} is absent from the PNG",
                              "drop empty segments from segments_info")
    pred.areas = areas


def unlisted_id_error(where: str, gt_side: bool, seg_id: int, why: Finding | None = None,
                      names: Naming = FILE_NAMES) -> InputError:
    """The error of a map's id that its segments list does not list (of the ground truth, or of the prediction with
    the finding that explains it, where one does); of an array (``names``), an id outside 0 .. 2^24 - 1 is named
    out of range."""
    name, listing = (names.gt_map, names.gt_segments) if gt_side else (names.pred_map, names.pred_segments)
    if name is None and gt_side:
        return InputError(f"{where} (ground truth): PNG segment id {seg_id} is absent from segments_info; the "
                          f"annotation PNG and JSON do not belong together ({names.lenient} such pixels are scored as "
                          "panopticapi scores them)")
    if name is None:
        return UnlistedIdError(f"{where} (prediction): PNG segment id {seg_id} is absent from segments_info",
                               why.message if why else "list every segment of the PNG in segments_info",
                               why.kind if why else None)
    if not 0 <= seg_id < MAX_ID:
        return _out_of_range(where, name, listing, seg_id)
    symptom = f"{where}: {name} holds id {seg_id}, which no entry of {listing} lists"
    if gt_side:
        return InputError(f"{symptom}; list every segment of {name} in {listing} ({names.lenient} such pixels are "
                          "scored as panopticapi scores them)")
    fix = _array_finding(why, name, listing, seg_id) or f"list every segment of {name} in {listing} (0 is VOID)"
    return UnlistedIdError(symptom, fix, why.kind if why else None)


def _out_of_range(where: str, name: str, listing: str, seg_id: int) -> InputError:
    """The error of an id map array holding a value no segment id can be: below 0 or 2^24 and above (-1 cast to an
    unsigned type named as such)."""
    cast = seg_id in (2**32 - 1, 2**64 - 1)
    if seg_id < 0 or cast:
        fix = ("map -1 to 0 (VOID), e.g. ids[ids == -1] = 0 (-1 is the VOID of detectron2's Panoptic-DeepLab and "
               "of transformers' post-processing)" if seg_id == -1 or cast else
               f"set the pixels of {seg_id} (and of any other negative value) to 0 (VOID) or to their segment's id")
        held = f"{seg_id} (-1 cast to an unsigned type)" if cast else str(seg_id)
        return InputError(f"{where}: {name} holds {held}, not a segment id (0 is VOID, 1..{MAX_ID - 1} the ids "
                          f"of {listing}); {fix}")
    return InputError(f"{where}: {name} holds {seg_id}, out of range: segment ids are 1..{MAX_ID - 1} (below 2^24, "
                      f"as R + 256G + 256^2B of a COCO PNG; 0 is VOID); number the segments below 2^24, in {name} "
                      f"and {listing} alike")


def _array_finding(why: Finding | None, name: str, listing: str, seg_id: int) -> str | None:
    """The fix the finding that explains an array's unlisted ids gives (:func:`~panbench.pq.diagnosis.unlisted_png_ids`:
    swapped channels, an id encoding, a resize), in the words of the array and its segments list."""
    if why is None:
        return None
    if why.kind == "channel_order":
        return (f"{name}'s red and blue channels are swapped (its id {seg_id} is {swap_channels(seg_id)} of "
                f"{listing}, read in OpenCV's BGR order): pass the channels in RGB order (bgr[..., ::-1])")
    if why.kind == "id_encoding":
        rule = ("category_id * 1000 + instance (detectron2's label_divisor encoding)" if why.decode == "detectron2"
                else "label + instance * 1000 (mmdet's INSTANCE_OFFSET encoding of its sem_seg output)")
        return f"{name}'s ids are {rule}, not segment ids: give each segment's pixels its id in {listing}"
    return why.message


def _as_u32(ids: np.ndarray, where: str, gt_side: bool, names: Naming = FILE_NAMES) -> np.ndarray:
    """The map as the C counts it: a uint32 map's ids looked up as they are (one of 2^24 or more is in no segment),
    other types' ids outside 0 .. 2^24 - 1 refused."""
    if ids.dtype == np.uint32:
        return np.ascontiguousarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= MAX_ID):
        raise unlisted_id_error(where, gt_side, int(ids[(ids < 0) | (ids >= MAX_ID)].ravel()[0]), names=names)
    return np.ascontiguousarray(ids, np.uint32)
