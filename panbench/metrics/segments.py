"""The segments lists the metrics' ``update`` takes (COCO's segments_info: a list of dicts), made plain and checked
before scoring: each refusal one :class:`~panbench.errors.InputError` naming the argument (``pred_segments``,
``gt_segments``), the image, the segment and the fix, in the words of the arrays passed (the id map of the list:
``pred_ids``, ``gt_ids``), where the checks of the command line's files speak of PNGs and segments_info."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from panbench.errors import InputError
from panbench.pq.coco_format import segments_list
from panbench.pq.kernels import MAX_ID

#: what a segment is, as the fixes say it
_FORMAT = "('id', 'category_id', ...; COCO's segments_info)"


def plain_segments(segments: Any, where: str, name: str, map_name: str, gt: bool) -> list[Any]:
    """``segments`` (COCO segments_info: a list of dicts) as a list, each value that a tensor or a numpy number
    holds (a model's output) as the Python number (its ``.item()``), checked (:func:`check_segments`); ``map_name``
    names the id map the list describes, ``gt`` whether it is the ground truth's (whose ``area`` is read)."""
    segments = segments_list(segments)  # a ground-truth JSON's segments_info as read and kept packed
    if segments is None or isinstance(segments, (str, bytes, Mapping)) or not isinstance(segments, Iterable):
        raise InputError(f"{where}: {name} is {type(segments).__name__}; pass a list of dicts {_FORMAT}, [] for an "
                         "image without segments")
    out = list(segments)
    if any(isinstance(s, dict) and any(hasattr(v, "item") for v in s.values()) for s in out):
        out = [{k: _number(v, f"{where}: {name}[{n}][{k!r}]") for k, v in s.items()} if isinstance(s, dict) else s
               for n, s in enumerate(out)]
    check_segments(out, where, name, map_name, gt)
    return out


def _number(v: Any, what: str) -> Any:
    """A tensor or numpy number of one value as the Python number; anything else as it is."""
    if isinstance(v, (str, bytes)) or not hasattr(v, "item"):
        return v
    try:
        return v.item()
    except (ValueError, RuntimeError):  # numpy's and torch's error of more than one value
        raise InputError(f"{what} is a {type(v).__name__} of shape {tuple(getattr(v, 'shape', ()))}; give one "
                         "number") from None


def check_segments(segments: list[Any], where: str, name: str, map_name: str, gt: bool) -> None:
    """Refuse a segment that is not a dict, lacks ``id`` or ``category_id``, holds an ``id``, ``category_id``,
    ``iscrowd`` (None: left out; a bool: 0 or 1) or, of the ground truth, ``area`` that is not a whole number (an
    int, or a float of a whole value, as the scoring reads it), an id outside 1..2^24-1 (0 is VOID in the map) or
    an id listed twice.  The usual list (plain ints) passes one type check a segment."""
    for n, s in enumerate(segments):
        if not (type(s) is dict and type(seg_id := s.get("id")) is int and 0 < seg_id < MAX_ID
                and type(s.get("category_id")) is int and type(s.get("iscrowd", 0)) is int
                and (not gt or type(s.get("area", 0)) is int)):
            _check_segment(s, where, n, name, map_name, gt)
    if len({s["id"] for s in segments}) != len(segments):
        seen: set[Any] = set()
        for s in segments:
            if s["id"] in seen:
                raise InputError(f"{where}: {name} lists segment id {s['id']} twice; give each segment its own id "
                                 f"(its pixels' value in {map_name})")
            seen.add(s["id"])


def _check_segment(s: Any, where: str, n: int, name: str, map_name: str, gt: bool) -> None:
    """The one-line error of segment ``s``, the ``n``-th of ``name``, where it has one."""
    at = f"{where}: {name}[{n}]"
    if not isinstance(s, Mapping):
        raise InputError(f"{at} is {_kind(s)}, not a dict; pass each segment as a dict {_FORMAT}")
    if "id" not in s:
        raise InputError(f"{at}: missing field 'id'; give every segment of {name} its 'id' (its pixels' value in "
                         f"{map_name}) and its 'category_id'")
    _whole(s["id"], "id", at, "pass id as an int")
    seg_id = s["id"]
    if not 1 <= seg_id < MAX_ID:
        raise _range_error(where, name, map_name, seg_id)
    at = f"{at} (segment {int(seg_id)})"
    if "category_id" not in s:
        raise InputError(f"{at}: missing field 'category_id'; give every segment of {name} its 'id' and its "
                         "'category_id'")
    _whole(s["category_id"], "category_id", at, "pass category_id as an int")
    if s.get("iscrowd") is not None and type(s["iscrowd"]) is not bool:  # None: left out, as a JSON's null
        _whole(s["iscrowd"], "iscrowd", at, "pass iscrowd as 0 or 1 (or leave it out: 0)")
    if gt and "area" in s:
        _whole(s["area"], "area", at, f"pass area as an int, the pixel count (or leave it out: it is counted "
                                      f"from {map_name})")


def _whole(v: Any, key: str, at: str, fix: str) -> None:
    """Refuse ``v``, the value of field ``key``, where it is not a whole number (a bool is not one), naming its type
    as the command line's checks of a JSON do."""
    if type(v) is int or type(v) is float and v.is_integer():
        return
    got = f"{type(v).__name__} {v!r}" if isinstance(v, (str, float)) else type(v).__name__
    if isinstance(v, str) and re.fullmatch(r"\s*-?[0-9]+\s*", v):  # the number as text: the fix names the number
        fix = f"pass {key} as the int {int(v)}, not the str {v!r}"
    raise InputError(f"{at}: field '{key}' has the wrong type ({got}, not int); {fix}")


def _range_error(where: str, name: str, map_name: str, seg_id: float) -> InputError:
    """The error of a listed id no segment can have: 0 (VOID in the map), below it, or 2^24 and above."""
    seg_id = int(seg_id)
    if seg_id == 0:
        return InputError(f"{where}: {name} lists segment id 0, which is VOID in {map_name}: number the segments "
                          "from 1 (in the map and the list alike) or leave the VOID entry out")
    return InputError(f"{where}: {name} lists segment id {seg_id}, outside 1..{MAX_ID - 1} (0 is VOID in {map_name}); "
                      f"number the segments within 1..{MAX_ID - 1}, in {map_name} and {name} alike")


def _kind(v: Any) -> str:
    """``v``'s type in words: "None", "a tuple", "an int (1)"."""
    if v is None:
        return "None"
    kind = type(v).__name__
    said = f" ({v!r})" if isinstance(v, (int, float, str)) and len(repr(v)) <= 20 else ""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}{said}"
