"""``score``'s driver: a folder of COCO-panoptic predictions (JSON + PNGs) into one
:class:`~panbench.evaluators.composite.Evaluators`. Where every member takes images scored in bulk (PQ, the analyses,
an evaluator of the user's that needs at most the segments), the images are scored on the C batch path
(:func:`~panbench.pq.score.score_stream`); where a member needs more (the id maps and the model's instances of AP
of ``--instances``, a user's evaluator that declares nothing), each image is decoded once on the per-image path, still
on ``workers`` threads (:func:`~panbench.pq.score.score_images`), and handed to the members in order."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any, overload

from panbench.analysis.ap import Instances
from panbench.analysis.ap_files import read_instances
from panbench.errors import InputError
from panbench.evaluators.composite import Evaluators
from panbench.evaluators.contract import ImageData
from panbench.pq.coco_format import GroundTruthJSON, segments_list
from panbench.pq.score import Pair, Scoring, score_images, score_stream


def score_folder(evaluators: Evaluators, truth: GroundTruthJSON, gt_dir: str | os.PathLike[str],
                 pred_json: str | os.PathLike[str], pred_dir: str | os.PathLike[str], workers: int | None = None,
                 instances: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Every image of ``pred_json`` scored against ``truth`` into ``evaluators`` (module docstring), with the
    model's instances from the COCO instance results JSON ``instances`` where given; the (ground truth, prediction)
    pairs in the order scored."""
    how = Scoring(strict=evaluators.strict, boundary=evaluators.boundary, keep_images=evaluators.keeps_columns)
    if evaluators.takes_scored and instances is None:  # the rules' sums too, from the tables the scoring counts
        how = replace(how, rules=evaluators.rules)
        scored, pairs = score_stream(truth, gt_dir, pred_json, pred_dir, workers, how)
        evaluators.add_scored(scored, [gt["image_id"] for gt, _ in pairs],
                              lambda i: (SegmentsInfo(pairs[i][0]["segments_info"]),
                                         SegmentsInfo(pairs[i][1]["segments_info"])))
        return pairs
    by_image = None if instances is None else read_instances(instances, set(truth.annotations))
    cats, pairs, images = score_images(truth, gt_dir, pred_json, pred_dir, workers, how)
    with closing(images):  # a member's error stops the threads decoding ahead
        for index, ((gt_ann, _), (gt_ids, gt_segs, pred_ids, pred_segs, where), result) in enumerate(images):
            image_id = gt_ann["image_id"]
            inst = None if by_image is None else _instances(by_image, image_id, gt_ids.shape, instances)
            evaluators.take(ImageData(index, image_id, cats, gt_ids, gt_segs, pred_ids, pred_segs, result, inst),
                            where)
    return pairs


class SegmentsInfo(Sequence[dict[str, Any]]):
    """An image's segments_info as the JSON lists them, parsed from the document's bytes when first read (the C path
    keeps them packed, :class:`~panbench.pq.coco_format.PackedSegments`): an evaluator that only counts them parses
    nothing."""

    __slots__ = ("_info", "_list")

    def __init__(self, info: Any) -> None:
        self._info = info
        self._list: list[dict[str, Any]] | None = None

    def _parsed(self) -> list[dict[str, Any]]:
        if self._list is None:
            self._list = segments_list(self._info)
        return self._list

    def __len__(self) -> int:
        return len(self._info)

    @overload
    def __getitem__(self, k: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, k: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, k: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return self._parsed()[k]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._parsed())

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, Sequence) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._parsed())


def _instances(by_image: dict[Any, Instances], image_id: Any, shape: tuple[int, ...],
               path: str | os.PathLike[str] | None) -> Instances:
    """Image ``image_id``'s instances (none listed: none), their masks at the image's size."""
    inst = by_image.get(image_id, Instances.empty())
    if wrong := {tuple(r["size"]) for r in inst.rles} - {shape}:
        raise InputError(f"{Path(str(path))}: image {image_id} has masks of size {sorted(wrong)[0]} (height, width); "
                         f"the ground truth is {shape}: give masks at the image's full size")
    return inst
