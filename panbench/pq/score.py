"""Score COCO-panoptic-format predictions (JSON + PNG folder) against ground truth.  Streaming: images are read,
scored and dropped chunk by chunk on threads (:func:`panbench.pq.batch.score_batch`: in C, or on the per-image path,
:func:`~panbench.pq.evaluator.score_pair` after a Python decode); with ``keep_images`` the per-image results come back
as columns, in the images' order; with ``rules`` the sums under their quirk states too."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from panbench.collector import collector_paused
from panbench.errors import InputError
from panbench.pq import batch
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.batch import Pair
from panbench.pq.coco_format import (
    DuplicateImageError,
    GroundTruthJSON,
    UnknownCategoryError,
    UnlistedIdError,
    WholeFloats,
    bad_score,
    drop_scores,
    parse_annotations,
    read_ground_truth,
    read_json,
    safe_join,
    segments_list,
)
from panbench.pq.diagnosis import (
    ENCODING_IMAGES,
    Finding,
    category_offset,
    decoded,
    image_pairing,
    index_ids,
    overlapped_categories,
    pairing_fixes,
    pairing_unfixed,
    unknown_categories,
    unlisted_ids,
    with_pq,
)
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.paths import not_a_folder
from panbench.pq.png import read_ids
from panbench.pq.quirks import Table
from panbench.pq.result import ImageResult
from panbench.pq.threads import Task, Workers


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers(n_images: int) -> int:
    """``score``'s threads when none are asked for: every available core, at most one per image."""
    return max(1, min(available_cores(), n_images))


@dataclass(frozen=True)
class Scoring:
    """How each image is scored (:func:`~panbench.pq.evaluator.score_pair`'s options), its result kept or not."""

    strict: bool = False  # refuse ground-truth PNG ids that segments_info does not list
    boundary: bool = False  # boundary-PQ contributions too
    keep_images: bool = False  # keep the per-image results (the analyses read them)
    # rule names (panbench.pq.rule_names.RULES): the sums under their quirk states counted from the tables the
    # scoring counts, into the accumulator's rule_states (score_stream only)
    rules: tuple[str, ...] = ()


Read = tuple[np.ndarray, list, np.ndarray, list, str]  # one image's decoded PNGs: read_pair's
Scored = tuple[Pair, Read, ImageResult]  # one image as score_images hands it out


def read_truth(gt_json: str | os.PathLike[str]) -> GroundTruthJSON:
    """The ground truth as :func:`score_stream` reads it (segments_info packed where the batch path runs in C): a
    command reads it here once, then passes it to everything that reads the ground truth."""
    with collector_paused():  # the parse makes ~10^5 objects and no cycles
        return read_ground_truth(gt_json, scan=True if batch.available() else None)


def load_pairs(truth: GroundTruthJSON, pred_json: str | os.PathLike[str], packed: bool = False,
               notes: bool = True) -> tuple[CategoryTable, list[Pair]]:
    """Categories and (ground truth, prediction) annotation pairs matched by image id.  With ``packed``, a
    prediction's segments_info that C read is a :class:`~panbench.pq.coco_format.PackedSegments` (the batch path
    reads it; the ground truth's are packed where :func:`read_truth` read it).  What PQ does not read never stops
    it: a score that is not a number in [0, 1] leaves every score out (:func:`_scores_read`); with ``notes``, each
    such reading is one line on stderr."""
    cats, gt, sizes = truth.categories, truth.annotations, truth.sizes
    pred_data = read_json(pred_json, "prediction JSON", scan=False if packed else None)
    floats = WholeFloats()
    try:
        pred = parse_annotations(pred_data, pred_json, gt=False, floats=floats)
    except DuplicateImageError as err:  # two predictions of one image: one of them may name another image's file
        if (shifted := image_pairing(gt, pred_data["annotations"])) is not None:
            raise Refused(f"{pred_json}: image_id and file_name disagree with the ground truth's pairing",
                          shifted) from err
        raise
    if (shifted := image_pairing(gt, pred)) is not None:  # before any image is read: its size would be the symptom
        raise Refused(f"{pred_json}: image_id and file_name disagree with the ground truth's pairing", shifted)
    for note in (floats.note(pred_json), _scores_read(pred, pred_json)):
        if note and notes:
            print(note, file=sys.stderr)
    pairs = []
    for image_id in truth.image_ids():
        gt_ann = gt[image_id]
        if image_id in sizes:  # the image's size beside its annotation, as COCO's 'images' entry names it
            gt_ann = {**gt_ann, "height": sizes[image_id][0], "width": sizes[image_id][1]}
        if (pred_ann := pred.get(image_id)) is None:
            raise _no_prediction(pred_json, image_id, pred, gt)
        pairs.append((gt_ann, pred_ann))
    if (extra := [i for i in pred if i not in gt]) and notes:
        print(f"note: {pred_json}: {len(extra)} prediction(s) for images the ground truth does not have (first: "
              f"image {extra[0]!r}) are not scored", file=sys.stderr)
    if not pairs:
        raise InputError(f"{truth.path}: no image to score ('annotations' is empty); use a ground-truth JSON that "
                         "annotates the images you predicted")
    return cats, pairs


def _scores_read(pred: dict[Any, dict[str, Any]], pred_json: str | os.PathLike[str]) -> str | None:
    """Where a predicted score is not a number in [0, 1] (a logit, NaN, a string, a bool), every score left out
    (:func:`~panbench.pq.coco_format.drop_scores`): PQ never reads one, and the analyses of scores need them all;
    the note naming the first such score (None where there is none)."""
    if (bad := bad_score(pred)) is None:
        return None
    drop_scores(pred)
    image_id, seg_id, why = bad
    return (f"note: {pred_json}: image {image_id} segment {seg_id} has score {why}; a score is a confidence in "
            "[0, 1], and PQ does not read it: every segment is scored without its score, the score analyses (score "
            "threshold, calibration) left out; write each score in [0, 1] (of a logit, its sigmoid) to get them")


class Refused(InputError):
    """An input refused for a mistake that ``finding`` names (its fix in the finding); :func:`score_stream` adds the
    PQ the fix gives to the one line."""

    def __init__(self, symptom: str, finding: Finding) -> None:
        super().__init__(f"{symptom}; {finding.message}")
        self.symptom, self.finding = symptom, finding


def _no_prediction(pred_json: str | os.PathLike[str], image_id: Any, pred: dict[Any, Any],
                   gt: dict[Any, Any]) -> InputError:
    """The error of a ground-truth image without a prediction: an id written as the other type, a predicted image the
    ground truth lacks (named: it stands where the ground truth's should), or a prediction missing."""
    other = str(image_id) if not isinstance(image_id, str) else int(image_id) if image_id.isdigit() else None
    if other is not None and other in pred:  # "142238" where the ground truth has 142238, or the other way
        return InputError(f"{pred_json}: image_id {other!r} is written as a {type(other).__name__} but the ground "
                          f"truth has {image_id!r}; write the image ids as the ground-truth JSON does")
    if extra := [i for i in pred if i not in gt]:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        return InputError(f"{pred_json}: image {extra[0]!r}{more} is not an image of the ground truth, which has "
                          f"no prediction for its image {image_id!r}; write each prediction's image_id as the "
                          "ground-truth JSON's 'images' ids (not a file name or an index)")
    return InputError(f"{pred_json}: no prediction for image {image_id}; predict every ground-truth image or "
                      "restrict the ground-truth JSON to the images you predicted")


def read_pair(gt_dir: Path, pred_dir: Path, pair: Pair, reuse: bool = True) -> Read:
    """One pair of PNGs decoded: ground-truth ids and segments, predicted ids and segments, the image's name; with
    ``reuse``, the id maps in this thread's buffers (valid until its next image), else arrays of their own."""
    gt_ann, pred_ann = pair
    where = f"image {gt_ann['image_id']}"
    gt_png = safe_join(gt_dir, gt_ann["file_name"], f"{where} (ground truth)")
    pred_png = safe_join(pred_dir, pred_ann["file_name"], f"{where} (prediction)")
    size = (gt_ann["height"], gt_ann["width"]) if "height" in gt_ann else None
    gt_ids = read_ids(gt_png, where, "gt" if reuse else None, shape=size, role="ground truth")
    pred_ids = read_ids(pred_png, where, "pred" if reuse else None, shape=gt_ids.shape)  # size checked first
    return gt_ids, segments_list(gt_ann["segments_info"]), pred_ids, segments_list(pred_ann["segments_info"]), where


def _score_one(cats: CategoryTable, gt_dir: Path, pred_dir: Path, how: Scoring, pair: Pair,
               tables: list[Table] | None = None) -> ImageResult:
    """One image on the per-image path: its PNGs decoded in Python's buffers, then :func:`score_pair` (``tables``:
    its table appended)."""
    return score_pair(cats, *read_pair(gt_dir, pred_dir, pair), how.strict, how.boundary, tables)


def score_stream(truth: GroundTruthJSON, gt_dir: str | os.PathLike[str], pred_json: str | os.PathLike[str],
                 pred_dir: str | os.PathLike[str], workers: int | None = None, how: Scoring = Scoring(),
                 explain: bool = True, notes: bool = True) -> tuple[PanopticAccumulator, list[Pair]]:
    """Score every image: the accumulator holding the sums (and, with ``how.keep_images``, the per-image results,
    :meth:`~PanopticAccumulator.columns` in the pairs' order) and the (ground truth, prediction) pairs in scoring
    order, on ``workers`` threads
    (``None``: :func:`default_workers`); a refused prediction whose mistake the files show is refused with its fix and,
    with ``explain``, the PQ that fix gives; ``notes``: :func:`load_pairs`' notes printed (a second scoring of the
    same files prints none)."""
    files = (truth, gt_dir, pred_json, pred_dir)
    in_c = batch.available()
    with collector_paused():  # the parse makes ~10^5 objects and no cycles
        try:
            cats, pairs = load_pairs(truth, pred_json, packed=in_c, notes=notes)
        except Refused as err:
            raise _refused(err, files, workers, how.strict, explain) from err
    if workers is None:
        workers = default_workers(len(pairs))
    gt_dir, pred_dir = _folders(gt_dir, pred_dir)
    ev = PanopticAccumulator(cats, keep_images=how.keep_images, boundary=how.boundary, rules=how.rules)
    try:
        with collector_paused():  # no cycles are made, and collections would walk the annotations
            batch.score_batch(ev, gt_dir, pred_dir, pairs, how.strict, workers,
                              lambda pair, tables: _score_one(cats, gt_dir, pred_dir, how, pair, tables), in_c)
    except UnknownCategoryError as err:
        found = _mapped_categories(cats, gt_dir, pred_dir, pairs, how, workers, in_c) if explain else None
        if found is None and explain:
            found = _offset_images(cats, gt_dir, pred_dir, pairs)
        if found is None:
            used = (s["category_id"] for _, p in pairs for s in segments_list(p["segments_info"]))
            found = index_ids(used, cats)  # the ids alone: no fix to score
        if found is None:
            raise
        raise _refused(Refused(err.symptom, found), files, workers, how.strict, explain) from err
    except UnlistedIdError as err:
        found = _encoding(cats, pred_dir, pairs, _colors(truth)) if explain else None
        if found is not None:
            raise _refused(Refused(err.symptom, found), files, workers, how.strict, explain) from err
        if err.kind == "id_encoding" and explain:  # one image's ids looked encoded; the others' do not
            raise InputError(f"{err.symptom}; list every segment of the PNG in segments_info") from err
        raise
    return ev, pairs


def _folders(gt_dir: str | os.PathLike[str], pred_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for d, what in ((gt_dir, "--gt-dir"), (pred_dir, "--pred-dir")):
        if (err := not_a_folder(d, what, "point it at the folder of panoptic PNGs")) is not None:
            raise err
    return gt_dir, pred_dir


def score_images(truth: GroundTruthJSON, gt_dir: str | os.PathLike[str], pred_json: str | os.PathLike[str],
                 pred_dir: str | os.PathLike[str], workers: int | None = None,
                 how: Scoring = Scoring()) -> tuple[CategoryTable, list[Pair], Generator[Scored, None, None]]:
    """Categories, pairs and each image in order with its decoded PNGs (arrays of its own, the caller's to keep) and
    result, decoded and scored on the per-image path on ``workers`` threads (``None``: :func:`default_workers`),
    each image's work ahead of the caller's by two images a thread at most; an input refused as :func:`score_stream`
    refuses it, with its fix."""
    files = (truth, gt_dir, pred_json, pred_dir)
    with collector_paused():
        try:
            cats, pairs = load_pairs(truth, pred_json)
        except Refused as err:
            raise _refused(err, files, workers, how.strict, True) from err
    gt, pred = _folders(gt_dir, pred_dir)

    def one(pair: Pair) -> tuple[Read, ImageResult]:
        read = read_pair(gt, pred, pair, reuse=False)
        return read, score_pair(cats, *read, how.strict, how.boundary)

    def images() -> Generator[Scored, None, None]:
        threads = default_workers(len(pairs)) if workers is None else workers
        try:
            if threads == 1:
                for pair in pairs:
                    yield (pair, *one(pair))
                return
            with Workers(threads, "panbench-score") as pool:
                ahead: deque[tuple[Pair, Task[tuple[Read, ImageResult]]]] = deque()
                rest = iter(pairs)
                for pair in islice(rest, 2 * threads):
                    ahead.append((pair, pool.submit(one, pair)))
                while ahead:
                    pair, task = ahead.popleft()
                    if (nxt := next(rest, None)) is not None:
                        ahead.append((nxt, pool.submit(one, nxt)))
                    yield (pair, *task.result())
        except (UnknownCategoryError, UnlistedIdError):
            score_stream(*files, workers, replace(how, keep_images=False), notes=False)  # the refusal, its fix
            raise

    return cats, pairs, images()


def _refused(err: Refused, files: tuple[GroundTruthJSON, Any, Any, Any], workers: int | None, strict: bool,
             explain: bool) -> InputError:
    """The one-line error of a refused input whose mistake a finding names, with the PQ its fix gives."""
    if explain and err.finding.kind == "image_ids":  # which of the two re-pairings scores, and higher
        fixes = [(pq, f) for f in pairing_fixes(err.finding)
                 if (pq := fixed_pq(f, *files, workers, strict)) is not None]
        if not fixes:
            return InputError(f"{err.symptom}; {pairing_unfixed(err.finding).message}")
        pq, best = max(fixes, key=lambda fix: fix[0])
        return InputError(f"{err.symptom}; {with_pq(best.message, pq)}")
    pq = fixed_pq(err.finding, *files, workers, strict) if explain else None
    return InputError(f"{err.symptom}; {with_pq(err.finding.message, pq)}")


def _mapped_categories(cats: CategoryTable, gt_dir: Path, pred_dir: Path, pairs: list[Pair], how: Scoring,
                       workers: int, in_c: bool) -> Finding | None:
    """The finding of a prediction refused for unknown category ids, from its masks: the images scored once more
    with the unknown ids as categories of their own, the pixels of each predicted id over the ground truth's
    categories read off the confusion matrix (:func:`panbench.pq.diagnosis.unknown_categories`)."""
    used = {s["category_id"] for _, p in pairs for s in segments_list(p["segments_info"])}
    if not (extra := sorted(used - set(cats.ids))):
        return None
    wide = CategoryTable(cats.ids + extra, cats.names + [str(i) for i in extra], cats.isthing + [False] * len(extra))
    try:
        with collector_paused():
            part = PanopticAccumulator(wide)  # a diagnosis: no rule's sums
            batch.score_batch(part, gt_dir, pred_dir, pairs, how.strict, workers,
                              lambda pair, tables: _score_one(wide, gt_dir, pred_dir, how, pair, tables), in_c)
    except InputError:  # another mistake: named once the category ids are right
        return None
    n, conf = len(cats), part.stats.conf
    return unknown_categories(conf[:n, :len(wide)], conf[:, :len(wide)], cats, wide.ids)


def _encoding(cats: CategoryTable, pred_dir: Path, pairs: list[Pair], colors: dict[int, int]) -> Finding | None:
    """The finding behind prediction PNGs whose ids are not their segments_info's, judged over
    :data:`ENCODING_IMAGES` images (or all): their ids against their segments_info
    (:func:`panbench.pq.diagnosis.unlisted_ids`; ``colors``: the categories' colours as ids)."""
    def ids_of(pair: Pair) -> tuple[list[int], list[int], list[int]] | None:
        gt_ann, pred_ann = pair
        where = f"image {gt_ann['image_id']}"
        try:
            ids = read_ids(safe_join(pred_dir, pred_ann["file_name"], f"{where} (prediction)"), where)
        except InputError:  # a PNG refused for another reason: not evidence either way
            return None
        segs = segments_list(pred_ann["segments_info"])
        return np.unique(ids).tolist(), [s["id"] for s in segs], [s.get("category_id") for s in segs]

    found = [f for pair in pairs[:ENCODING_IMAGES] if (f := ids_of(pair)) is not None]
    return unlisted_ids(found, cats, colors)


def _offset_images(cats: CategoryTable, gt_dir: Path, pred_dir: Path, pairs: list[Pair]) -> Finding | None:
    """The ``category_offset`` finding of a few images (:data:`ENCODING_IMAGES` at most) whose predicted category
    ids, some unknown, are each the ground truth's under it moved by one constant
    (:func:`panbench.pq.diagnosis.category_offset`)."""
    known = set(cats.ids)
    odd = [pair for pair in pairs
           if any(s.get("category_id") not in known for s in segments_list(pair[1]["segments_info"]))]
    if not odd or len(odd) > ENCODING_IMAGES or len(odd) == len(pairs):
        return None
    found = []
    for pair in odd:
        try:
            gt_ids, gt_segs, pred_ids, pred_segs, _ = read_pair(gt_dir, pred_dir, pair, reuse=False)
        except InputError:
            return None
        found.append((pair[0]["image_id"], overlapped_categories(gt_ids, gt_segs, pred_ids, pred_segs)))
    return category_offset(found, len(pairs))


def _colors(truth: GroundTruthJSON) -> dict[int, int]:
    """The ground truth's categories' colours as PNG ids (R + 256 G + 256^2 B) -> their category ids."""
    out = {}
    for c in truth.data.get("categories", []):
        rgb = c.get("color") if isinstance(c, dict) else None
        if isinstance(rgb, list) and len(rgb) == 3 and all(type(v) is int and 0 <= v < 256 for v in rgb):
            out[rgb[0] + 256 * rgb[1] + 65536 * rgb[2]] = c["id"]
    return out


def fixed_pq(finding: Finding, truth: GroundTruthJSON, gt_dir: str | os.PathLike[str],
             pred_json: str | os.PathLike[str], pred_dir: str | os.PathLike[str], workers: int | None = None,
             strict: bool = False) -> float | None:
    """The PQ of the prediction with ``finding``'s fix applied (its category ids remapped, its image ids paired
    with their files, its PNGs decoded: written to a temporary folder) and scored once more; None where the finding
    has no fix or the fixed prediction is refused too."""
    if not finding.fixable:
        return None
    pred = read_json(pred_json, "prediction JSON")
    anns = [a for a in pred.get("annotations", []) if isinstance(a, dict)]
    for ann in anns:
        if finding.images and ann.get("file_name") in finding.images:
            ann["image_id"] = finding.images[ann["file_name"]]
        elif finding.files and ann.get("image_id") in finding.files:
            ann["file_name"] = finding.files[ann["image_id"]]
        for seg in ann.get("segments_info", []):
            if isinstance(seg, dict) and seg.get("category_id") in finding.remap:
                seg["category_id"] = finding.remap[seg["category_id"]]
    with tempfile.TemporaryDirectory(prefix="panbench-fix-") as tmp:
        png_dir = Path(pred_dir)
        try:
            if finding.decode:
                png_dir = _decoded_pngs(finding.decode, anns, truth.categories, png_dir,
                                        Path(tmp) / "png")
            fixed = Path(tmp) / "predictions.json"
            fixed.write_text(json.dumps(pred))
            scored = score_stream(truth, gt_dir, fixed, png_dir, workers, Scoring(strict=strict), explain=False,
                                  notes=False)[0]
            return float(scored.evaluate()["PQ"])
        except InputError:
            return None


def _decoded_pngs(how: str, anns: list[dict[str, Any]], cats: CategoryTable, pred_dir: Path, out: Path) -> Path:
    """The prediction's PNGs decoded from an id encoding into ``out`` (each annotation's segments_info replaced), or
    with every id moved back by a constant (``shift:D``; segments_info kept)."""
    from PIL import Image

    for ann in anns:
        where = f"image {ann.get('image_id')}"
        ids = read_ids(safe_join(pred_dir, ann["file_name"], f"{where} (prediction)"), where)
        if how.startswith("shift:"):  # every id moved by a constant: moved back, segments_info kept
            seg = np.where(ids > 0, ids.astype(np.int64) - int(how[6:]), 0).clip(0).astype(np.uint32)
        else:
            seg, ann["segments_info"] = decoded(ids, how, cats)
        path = safe_join(out, ann["file_name"], f"{where} (prediction)")
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = np.stack([seg & 255, (seg >> 8) & 255, (seg >> 16) & 255], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).save(path, compress_level=1)
    return out


def score_files(gt_json: str | os.PathLike[str], gt_dir: str | os.PathLike[str], pred_json: str | os.PathLike[str],
                pred_dir: str | os.PathLike[str], workers: int | None = None, strict: bool = False,
                diagnose: bool = False, explain: bool = True) -> dict[str, Any]:
    """:func:`panbench.pq.sums.pq_summary` of the predictions, streamed (on every available core unless ``workers``
    says otherwise); ``strict`` as :class:`Scoring`'s, ``diagnose``: :func:`metrics_with_diagnosis`, ``explain`` as
    :func:`score_stream`'s; the ground truth read here (:func:`read_truth`)."""
    ev = score_stream(read_truth(gt_json), gt_dir, pred_json, pred_dir, workers, Scoring(strict=strict), explain)[0]
    return metrics_with_diagnosis(ev) if diagnose else ev.evaluate()


def metrics_with_diagnosis(ev: PanopticAccumulator) -> dict[str, Any]:
    """The accumulator's metrics and, only when the sums show a format mistake, its findings under ``diagnosis``
    (``pq_if_fixed`` None: :func:`with_pq_if_fixed` computes it; ``score`` takes them out before it prints)."""
    out = ev.evaluate()
    if found := ev.diagnosis():
        out["diagnosis"] = found
    return out


def with_pq_if_fixed(findings: list[Finding], truth: GroundTruthJSON, gt_dir: str | os.PathLike[str],
                     pred_json: str | os.PathLike[str], pred_dir: str | os.PathLike[str], workers: int | None = None,
                     strict: bool = False) -> list[Finding]:
    """``findings`` with ``pq_if_fixed``: the PQ of the prediction with each finding's fix applied
    (:func:`fixed_pq`), the same PNGs scored once more."""
    return [replace(f, pq_if_fixed=fixed_pq(f, truth, gt_dir, pred_json, pred_dir, workers, strict))
            if f.fixable else f for f in findings]


def json_ready(res: dict[str, Any]) -> dict[str, Any]:
    """``res`` for ``score --json``: a category without TP, FP or FN has PQ, SQ and RQ ``null``, not 0.0 (undefined,
    as the table's '-'), so that the mean of the non-null per-class PQ is the PQ printed beside it."""
    if "per_class" not in res:
        return res
    return {**res, "per_class": {cid: {**v, "PQ": None, "SQ": None, "RQ": None}
                                 if v.get("TP", 0) + v.get("FP", 0) + v.get("FN", 0) == 0 else v
                                 for cid, v in res["per_class"].items()}}


def unlisted_note(res: dict[str, Any]) -> str | None:
    """The line that says how many ground-truth pixels (of how many images) carry an id segments_info does not list
    (None when none do)."""
    u = res.get("unlisted_gt") or {}
    if not u.get("pixels"):
        return None
    return (f"note: {u['pixels']} ground-truth pixels of {u['images']} image(s) have a PNG id that segments_info "
            "does not list; scored as panopticapi scores them (neither matched nor VOID); --strict refuses them")
