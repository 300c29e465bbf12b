"""Reading the COCO panoptic format's JSON side (categories, annotations, segments_info), validated: every problem
is an :class:`InputError` whose one-line message names the file or image and the fix (the PNG side:
:mod:`panbench.pq.png`).  Only numpy is imported here, so ``panbench score`` starts fast."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from panbench.errors import InputError
from panbench.pq import native
from panbench.pq.ahead import NOT_SCANNED, HeldFile, forget, read_held, take
from panbench.pq.kernels import _SENTINEL, MAX_ID
from panbench.pq.matching import CategoryTable, Segments
from panbench.pq.paths import HEAD_BYTES, content_kind, link_fix, path_kind


class UnknownCategoryError(InputError):
    """A predicted segment of a category the ground truth lacks; ``symptom`` apart, so that a caller that sees the
    whole prediction can name the mistake behind it (:func:`panbench.pq.diagnosis.index_ids`)."""

    def __init__(self, symptom: str, fix: str) -> None:
        super().__init__(f"{symptom}; {fix}")
        self.symptom = symptom


class DuplicateImageError(InputError):
    """Two annotations of one image id (``score`` first looks whether one names another image's file)."""


class UnlistedIdError(InputError):
    """A prediction PNG id that its segments_info does not list, or a listed id absent from the PNG; ``symptom`` and
    ``kind`` (of the finding that one image shows, or None) apart, for a caller that sees the other images
    (:func:`panbench.pq.diagnosis.unlisted_ids`)."""

    def __init__(self, symptom: str, fix: str, kind: str | None = None) -> None:
        super().__init__(f"{symptom}; {fix}")
        self.symptom, self.kind = symptom, kind


def file_span(file: HeldFile, start: int, stop: int) -> bytes:
    """Bytes ``start:stop`` of a JSON file as it was read, or an InputError naming the file where it has changed
    since (its arrays kept packed are read back from it: :class:`PackedSegments`)."""
    try:
        got = file.span(start, stop)
    except OSError as e:
        raise InputError(f"{file.path}: can no longer be read ({e.strerror or e}); score again") from e
    if got is None:
        raise changed_since(file)
    return got


def changed_since(file: HeldFile) -> InputError:
    return InputError(f"{file.path}: changed since panbench read it; score again once it is written")


class PackedSegments:
    """A segments_info array as :func:`read_json` keeps it where ``_match.scan`` read it (C): the file it is in
    (kept open, not its bytes: tens of MB at COCO's scale), the array's place in its bytes and the fields of its
    ``n`` segments (of a ground truth: ``gt``): int64 ids, category ids and areas, a crowd byte each, then float64
    scores (NaN: none)."""

    __slots__ = ("file", "start", "stop", "n", "fields", "gt")

    def __init__(self, file: HeldFile, start: int, stop: int, n: int, fields: bytes, gt: bool) -> None:
        self.file, self.start, self.stop, self.n, self.fields, self.gt = file, start, stop, n, fields, gt

    def __len__(self) -> int:
        return self.n

    def to_list(self) -> list[dict[str, Any]]:
        """The array as ``json.load`` of the document gives it."""
        try:
            segs: list[dict[str, Any]] = json.loads(file_span(self.file, self.start, self.stop))
        except ValueError as e:  # the bytes there are no longer the array: changed in a way its identity hides
            raise changed_since(self.file) from e
        return segs


def segments_list(segments_info: Any) -> Any:
    """``segments_info`` as ``json.load`` gives it (a :class:`PackedSegments` parsed; anything else as it is)."""
    return segments_info.to_list() if type(segments_info) is PackedSegments else segments_info


def read_json(path: str | os.PathLike[str], what: str, scan: bool | None = None) -> dict[str, Any]:
    """A JSON object (a file read ahead, :mod:`panbench.pq.ahead`, is not read again), or an InputError naming the
    file.  ``scan`` (True: a ground truth, False: predictions) keeps the arrays ``_match.scan`` reads packed."""
    return _document(path, what, scan)[0]


def _document(path: str | os.PathLike[str], what: str, scan: bool | None) -> tuple[dict[str, Any], HeldFile]:
    """:func:`read_json`'s document and the file it was read from."""
    p = Path(path)
    if not p.is_file():
        forget(p)
        raise _not_a_document(p, what)
    raw = None
    try:
        raw, found, file = _read(p, scan)
        data = _from_scan(file, found, scan) if found is not None and scan is not None else None
        if data is None:
            data = json.loads(raw)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer past Python's digit limit
        if raw is not None and (not raw or raw.isspace()):
            raise InputError(f"{p}: {what} is empty; pass the JSON file once it has been written (re-export "
                             "it)") from e
        if raw is not None and (kind := content_kind(raw[:HEAD_BYTES])) not in (None, "a JSON file"):
            raise InputError(f"{p}: {what} is {kind}, not JSON; pass the JSON file itself (a PNG's folder is given "
                             "apart)") from e
        raise InputError(f"{p}: {what} is not valid JSON ({e}); re-export or re-download it") from e
    if not isinstance(data, dict):
        raise InputError(f"{p}: {what} must be a JSON object with an 'annotations' list")
    return data, file


def _not_a_document(p: Path, what: str) -> InputError:
    """The error of a JSON's path at which no regular file is: what is there instead
    (:func:`~panbench.pq.paths.path_kind`), or that nothing is."""
    kind = path_kind(p)
    if kind is None:
        return InputError(f"{p}: {what} not found; check the path")
    if kind == "a device":  # /dev/null
        return InputError(f"{p}: {what} is empty (a device, not a file); pass the JSON file itself")
    if kind in ("a pipe", "a socket"):
        return InputError(f"{p}: {what} is not a regular file (a pipe or socket); pass the JSON file itself")
    fix = link_fix(kind, "JSON file") or "pass the JSON file itself"
    return InputError(f"{p}: {what} is {kind}, not a JSON file; {fix}")


def _read(p: Path, scan: bool | None) -> tuple[bytes, Any, HeldFile]:
    """The file's bytes (read ahead where :mod:`panbench.pq.ahead` did), with ``scan`` ``_match.scan``'s result
    (None where none was asked for), and the file, kept open."""
    c = native.match()
    if (ahead := take(p, scan)) is None:
        if (held := read_held(str(p))) is None:  # pragma: no cover - _document saw a regular file
            raise InputError(f"{p}: not a regular file; pass the JSON file itself")
        (raw, file), found = held, NOT_SCANNED
    else:
        raw, found, file = ahead
    if scan is None:
        return raw, None, file
    return raw, c.scan(raw, scan) if found is NOT_SCANNED else found, file


def _from_scan(file: HeldFile, found: Any, gt: bool) -> dict[str, Any] | None:
    """The document from its scan: the segments_info arrays of plain integers read in C, the rest by ``json.loads``;
    None leaves the whole document to ``json.loads`` (which then names what is wrong with it)."""
    text, segments = found
    try:
        data = json.loads(text)
    except ValueError:  # the document is not valid JSON: json.loads of it says where
        return None
    anns = data.get("annotations")
    if type(anns) is not list or len(anns) != len(segments):  # pragma: no cover - the scan saw this list
        return None
    for ann, seg in zip(anns, segments):
        if seg is not None:
            start, stop, n, fields = seg
            ann["segments_info"] = PackedSegments(file, start, stop, n, fields, gt)
    return data


@dataclass(frozen=True, repr=False, eq=False)
class GroundTruthJSON:
    """A COCO panoptic ground truth's JSON, read and checked once by :func:`read_ground_truth`: the file's ``path``,
    the document, its categories, its annotations by image id, each image's (height, width) from its ``images`` entry
    and the file as read (kept open).  A command reads its ground truth once and hands this value to everything that
    reads it."""

    path: Path
    data: dict[str, Any]
    categories: CategoryTable
    annotations: dict[Any, dict[str, Any]]
    sizes: dict[Any, tuple[int, int]]
    file: HeldFile

    def __repr__(self) -> str:  # the document is too long to show
        return f"GroundTruthJSON({str(self.path)!r}, {len(self.annotations)} images)"

    @property
    def raw(self) -> bytes:
        """The file's bytes as they were read (read back: an InputError where the file has changed since)."""
        return file_span(self.file, 0, self.file.ident[2])

    def image_ids(self) -> list[Any]:
        """The annotated images in the order of the ``images`` list, as ``eval`` orders them (the per-image results
        and the dataset fingerprint depend on it), then any annotated image that list lacks."""
        images = self.data.get("images")
        listed = dict.fromkeys(im["id"] for im in (images if isinstance(images, list) else [])
                               if isinstance(im, dict) and im.get("id") in self.annotations)
        return [*listed, *(i for i in self.annotations if i not in listed)]


def png_folder(json_file: str | os.PathLike[str]) -> Path:
    """The default folder of a COCO panoptic JSON's PNGs, as panopticapi and COCO's layout name it: the JSON's path
    with ``.json`` removed (``x/panoptic_val2017.json`` -> ``x/panoptic_val2017``)."""
    return Path(os.fspath(json_file).replace(".json", ""))


def read_ground_truth(path: str | os.PathLike[str], what: str = "ground-truth JSON",
                      scan: bool | None = None) -> GroundTruthJSON:
    """The one reader of a COCO panoptic ground truth; ``what`` names the file in errors, ``scan`` as
    :func:`read_json`."""
    data, file = _document(path, what, scan)
    images = data.get("images")
    images = images if isinstance(images, list) else []
    floats = WholeFloats()
    for im in images:
        floats.take(im, ("id",), "image")
    sizes = {im.get("id"): (im["height"], im["width"]) for im in images
             if isinstance(im, dict) and isinstance(im.get("height"), int) and isinstance(im.get("width"), int)}
    truth = GroundTruthJSON(Path(path), data, parse_categories(data, path, floats),
                            parse_annotations(data, path, gt=True, floats=floats), sizes, file)
    if note := floats.note(path):
        print(note, file=sys.stderr)
    return truth


class WholeFloats:
    """Ids (and a ground truth's areas) written as floats of whole values (``142238.0``, as pandas writes an integer
    column that holds a NaN), each read as the integer it equals: how many, and the first (where, field, value) for
    the one note."""

    __slots__ = ("n", "first")

    def __init__(self) -> None:
        self.n = 0
        self.first: tuple[str, str, float] | None = None

    def take(self, obj: Any, keys: tuple[str, ...], where: str) -> None:
        """Each of ``keys`` of ``obj`` (a dict; anything else left to the checks) that is a float of a whole value
        replaced by its int."""
        if type(obj) is not dict:
            return
        for k in keys:
            v = obj.get(k)
            if type(v) is float and v.is_integer():
                obj[k] = int(v)
                self.n += 1
                if self.first is None:
                    self.first = (where, k, v)

    def note(self, path: str | os.PathLike[str]) -> str | None:
        """The one note of the file ``path`` (None where no id was a float)."""
        if self.first is None:
            return None
        where, key, v = self.first
        return (f"note: {path}: {self.n} integer field(s) (ids, areas) written as floats of whole numbers (first: "
                f"{where} {key} {v!r}) are read as the integers they equal; write them as integers (pandas: "
                ".astype(int)) to be rid of this note")


def _field(obj: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{where}: missing field '{key}'; every entry needs it (COCO panoptic format)")
    val = obj[key]
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        want = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        got = f"float {val!r}" if type(val) is float else type(val).__name__  # a float of a whole value is read
        raise InputError(f"{where}: field '{key}' has the wrong type ({got}, not {want}); "
                         + _FIELD_FIXES.get(key, f"write it as {_JSON_KINDS.get(want, want)}, as the COCO panoptic "
                                                 "format does"))
    return val


_JSON_KINDS = {"int": "an integer (42, not \"42\" or 42.5)", "str": "a string", "list": "a list", "dict": "an object"}
_FIELD_FIXES = {"isthing": "write 1 (a thing) or 0 (stuff), or true/false",
                "segments_info": "write a list of segments, each {\"id\": ..., \"category_id\": ...}"}


def parse_categories(data: dict[str, Any], path: str | os.PathLike[str],
                     floats: WholeFloats | None = None) -> CategoryTable:
    """The ``categories`` list of a ground-truth JSON as a :class:`CategoryTable`: an ``id`` written as a float of a
    whole value read as its integer (counted in ``floats``), an ``isthing`` written as a JSON bool as 0 or 1."""
    cats = data.get("categories")
    if not isinstance(cats, list):
        raise InputError(f"{path}: missing field 'categories'; use the ground-truth panoptic JSON")
    if not cats:
        raise InputError(f"{path}: 'categories' is empty; list the dataset's categories (id, name, isthing), as "
                         "the ground-truth panoptic JSON does")
    seen: set[int] = set()
    own, floats = floats is None, WholeFloats() if floats is None else floats
    for c in cats:
        floats.take(c, ("id",), "category")
        if type(c) is dict and (type(v := c.get("isthing")) is bool or type(v) is float and v in (0.0, 1.0)):
            c["isthing"] = int(v)  # true/false (as iscrowd is read) or 0.0/1.0: 0 or 1
        cid = _field(c, "id", f"{path}: category", int)
        _field(c, "isthing", f"{path}: category {cid}", int)
        if cid in seen:
            raise InputError(f"{path}: duplicate category id {cid}; category ids must be unique")
        seen.add(cid)
    if own and (note := floats.note(path)):
        print(note, file=sys.stderr)
    return CategoryTable.from_coco(cats)


def _segment_ok(s: Any, gt: bool) -> bool:
    return type(s) is dict and type(s.get("id")) is int and type(s.get("category_id")) is int \
        and (not gt or type(s.get("area")) is int)


def parse_annotations(data: dict[str, Any], path: str | os.PathLike[str], gt: bool,
                      floats: WholeFloats | None = None) -> dict[int, dict[str, Any]]:
    """``annotations`` keyed by image id, with every field scoring needs checked; an id (or a ground truth's area)
    written as a float of a whole value read as its integer, counted in ``floats``."""
    if (anns := data.get("annotations")) is None:
        raise InputError(f"{path}: missing field 'annotations'; expected the COCO panoptic format")
    if not isinstance(anns, list):
        raise InputError(f"{path}: field 'annotations' is a {type(anns).__name__}, not a list; expected the COCO "
                         "panoptic format (a list of one annotation per image)")
    out: dict[Any, dict[str, Any]] = {}  # image ids are ints or strings
    own, floats = floats is None, WholeFloats() if floats is None else floats
    keys = ("id", "category_id", "area") if gt else ("id", "category_id")  # a non-integral float stays refused
    for ann in anns:
        if _usual(ann, gt, out):
            continue
        floats.take(ann, ("image_id",), "annotation")
        image_id = _field(ann, "image_id", f"{path}: annotation", (int, str))
        where = f"{path}: image {image_id}"
        if not _field(ann, "file_name", where, str):
            raise InputError(f"{where}: empty 'file_name'")
        segs = ann.get("segments_info") if type(ann) is dict else None
        if type(segs) is PackedSegments and segs.gt != gt:
            segs = ann["segments_info"] = segs.to_list()
        if type(segs) is not PackedSegments:  # else every segment has the fields checked below, as plain integers
            segs = _field(ann, "segments_info", where, list)
            c = native.match()  # its typed(): the check below in C
            if type(segs) is not list or not c.typed(segs, gt):
                for s in segs:
                    floats.take(s, keys, f"image {image_id} segment")
                    if not _segment_ok(s, gt):  # the fast check; _field then names what is wrong
                        _field(s, "id", f"{where} segment", int)
                        _field(s, "category_id", f"{where} segment {s['id']}", int)
                        if gt:
                            _field(s, "area", f"{where} segment {s['id']}", int)
        if image_id in out:
            raise DuplicateImageError(f"{where}: duplicate image id in 'annotations'; each image must appear once")
        out[image_id] = ann
    if own and (note := floats.note(path)):
        print(note, file=sys.stderr)
    return out


def _usual(ann: Any, gt: bool, out: dict[Any, dict[str, Any]]) -> bool:
    """Add the usual annotation (an int or str image id not seen before, a file name, segments_info that C read
    and checked) to ``out`` without building its messages; False for any other, which the checks name."""
    if type(ann) is not dict:
        return False
    image_id, fname, segs = ann.get("image_id"), ann.get("file_name"), ann.get("segments_info")
    if (type(image_id) is int or type(image_id) is str) and type(fname) is str and fname \
            and type(segs) is PackedSegments and segs.gt == gt and image_id not in out:
        out[image_id] = ann
        return True
    return False


def safe_join(folder: str | os.PathLike[str], file_name: str, where: str) -> Path:
    """``folder/file_name``, refusing names that point outside ``folder`` (absolute, or climbing out with ``..``).
    The check is on the name, so it costs no system call per image; a symbolic link inside is followed."""
    return Path(safe_path(folder, file_name, where))


def safe_path(folder: str | os.PathLike[str], file_name: str, where: str) -> str:
    """:func:`safe_join` as a string (no ``Path`` built: the batch path joins two per image)."""
    norm = os.path.normpath(file_name)
    if os.path.isabs(file_name) or norm in (".", "..") or norm.startswith(".." + os.sep):
        base = Path(folder).resolve()
        raise InputError(f"{where}: file name '{file_name}' points outside {base}; use a plain relative name")
    return os.path.join(folder, norm)


def _range_error(segments_info: list[dict[str, Any]], where: str) -> NoReturn:
    """Raise the one-line error of the first id (then area) out of range."""
    for s in segments_info:
        if not 1 <= s["id"] < MAX_ID:
            fix = ("0 marks VOID pixels (no segment), which segments_info never lists: number the segments from 1 in "
                   "the PNG and in segments_info alike (e.g. every id + 1), or leave the VOID entry out"
                   if s["id"] == 0 else "renumber the segments within 1..16777215 in the PNG and in segments_info")
            raise InputError(f"{where}: segment id {s['id']} is outside 1..16777215 (R + 256G + 256^2B, 0 is VOID); "
                             f"{fix}")
    s = next(s for s in segments_info if not 0 <= s["area"] < 2**62)  # the caller found one
    raise InputError(f"{where}: segment {s['id']} has area {s['area']}; areas are pixel counts")


def _unpacked(packed: bytearray, n: int) -> Segments:
    """The Segments of ``_match.segments``' (or ``packed``'s) bytes: ids, category indices, areas, scores, crowd
    flags."""
    a = np.frombuffer(packed, np.int64, 3 * n)
    return Segments(a[:n], a[n:2 * n], np.frombuffer(packed, np.bool_, n, 32 * n), a[2 * n:],
                    np.frombuffer(packed, np.float64, n, 24 * n))


def score_problem(v: Any) -> str | None:
    """What a predicted segment's ``score`` value ``v`` is where it is not a number in [0, 1] (the words after
    "has score": ``1.5``, ``nan, not a finite number``, ``'0.9', a str, not a number``); None where it is one."""
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
        return f"{v!r}, a {type(v).__name__}, not a number"
    try:
        f = float(v)
    except OverflowError:  # a JSON integer of hundreds of digits
        digits = int(abs(int(v)).bit_length() * 0.30103) + 1
        return f"{'-' if v < 0 else ''}1e{digits - 1} or so (an integer of {digits} digits)"
    if 0.0 <= f <= 1.0:
        return None
    return (f"{f}" if np.isfinite(f) else f"{f}, not a finite number" if np.isnan(f) else
            f"{f}, not a finite number (a JSON number past 1.8e308, such as 1e400, reads as {f})")


def _score(s: dict[str, Any], where: str) -> float:
    """A predicted segment's own ``score`` (NaN without one): a number in [0, 1], else an InputError naming it."""
    v = s.get("score")
    if v is None and "score" not in s:
        return float("nan")
    if (why := score_problem(v)) is None and v is not None:  # a number in [0, 1]
        return float(v)
    raise InputError(f"{where}: segment {s.get('id')} has score {why}; a score is the model's confidence in [0, 1] "
                     "(leave 'score' out where the segment has none)")


def bad_score(annotations: dict[Any, dict[str, Any]]) -> tuple[Any, Any, str] | None:
    """The first predicted segment (in the annotations' order) whose ``score`` is not a number in [0, 1]: its image
    id, segment id and :func:`score_problem`'s words; None where every score is one or absent.  The arrays C packed
    are checked at once, as one array of their scores (NaN: absent)."""
    infos = [a["segments_info"] for a in annotations.values()]
    scores = np.frombuffer(b"".join([p.fields[25 * p.n:] for p in infos if type(p) is PackedSegments]), np.float64)
    packed_ok = bool(np.all(np.isnan(scores) | ((scores >= 0.0) & (scores <= 1.0))))
    for image_id, segs in zip(annotations, infos):
        if type(segs) is PackedSegments:
            if packed_ok:
                continue
            segs = segs.to_list()
        for seg in segs:
            v = seg.get("score", 0.0) if type(seg) is dict else 0.0
            if not (type(v) is float and 0.0 <= v <= 1.0) and (why := score_problem(v)) is not None:
                return image_id, seg.get("id"), why
    return None


def drop_scores(annotations: dict[Any, dict[str, Any]]) -> None:
    """Every predicted segment's ``score`` left out: each annotation's segments_info a list of its segments without
    one (PQ reads none; the analyses of scores then see no scored segment)."""
    for ann in annotations.values():
        ann["segments_info"] = [{k: v for k, v in seg.items() if k != "score"} if type(seg) is dict else seg
                                for seg in segments_list(ann["segments_info"])]


def parse_segments(segments_info: list[dict[str, Any]], cats: CategoryTable, where: str, gt: bool) -> Segments:
    """``segments_info`` as arrays, its ids (unique, 1..2^24-1), areas, category ids and, of a prediction, scores
    (:func:`_score`) checked in C; where C declines (a value it does not take), on the Python lists, which
    name the problem (a few tens of segments, cheaper than numpy's per-call cost, no int64 overflow).  A ground
    truth's ``score`` is not read (its scores are NaN)."""
    c = native.match()  # its segments(): the checks below in C
    if type(segments_info) is PackedSegments:
        if (packed := c.packed(segments_info.fields, segments_info.n, cats.index, gt)) is not None:
            return _unpacked(packed, segments_info.n)
    segments_info = segments_list(segments_info)  # the checks below name the problem
    if type(segments_info) is list:
        packed = c.segments(segments_info, cats.index, gt)
        if packed is not None:  # every check passed (else the code below names the problem)
            return _unpacked(packed, len(segments_info))
    n = len(segments_info)
    if n >= int(_SENTINEL):
        raise InputError(f"{where}: {n} segments; at most 65534 per image are supported")
    index = cats.index
    ids = [s["id"] for s in segments_info]
    cat_idx = [index.get(s["category_id"], -1) for s in segments_info]
    crowd = [s.get("iscrowd", 0) == 1 for s in segments_info]
    areas = [s["area"] for s in segments_info] if gt else None
    if n:
        if min(ids) < 1 or max(ids) >= MAX_ID or areas is not None and (min(areas) < 0 or max(areas) >= 2**62):
            _range_error(segments_info, where)
        if len(set(ids)) != n:
            u, c = np.unique(np.array(ids, np.int64), return_counts=True)
            raise InputError(f"{where}: duplicate segment id {int(u[c > 1][0])} in segments_info; ids must be unique")
        if min(cat_idx) < 0:
            s = segments_info[cat_idx.index(-1)]
            symptom = f"{where}: segment {s['id']} has unknown category_id {s['category_id']}"
            if gt:
                raise InputError(f"{symptom}; add the category to its 'categories' or correct the segment")
            raise UnknownCategoryError(symptom, "use the category ids of the ground-truth JSON")
    scores = np.full(n, np.nan) if gt else np.array([_score(s, where) for s in segments_info], np.float64)
    return Segments(np.array(ids, np.int64), np.array(cat_idx, np.int64), np.array(crowd, bool),
                    np.array(areas, np.int64) if areas is not None else np.zeros(n, np.int64), scores)
