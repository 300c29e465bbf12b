"""The JSON scan of `panbench score` (`_match.scan`: the segments_info arrays read in C, the rest by json.loads)
reads every document as json.load does: the same values where it packs an array, the same objects elsewhere, and
json.load's own error for a document that is not valid JSON, for hand-made edge cases and for mutated documents."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.errors import InputError
from panbench.pq.coco_format import PackedSegments, parse_annotations, parse_segments, read_json, segments_list
from panbench.pq.matching import CategoryTable

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco-panoptic-val2017-sample" / "annotations"
CATS = CategoryTable.from_coco([{"id": 1, "isthing": 1, "name": "a"}, {"id": 7, "isthing": 0, "name": "b"}])


def _doc(segments: str, extra: str = "") -> str:
    return ('{"info": {"x": "\\u00e9t\\u00e9 \\"q\\" [{"}, "images": [{"id": 1, "file_name": "a.jpg"}], '
            f'"annotations": [{{"image_id": 1, "file_name": "a.png", "segments_info": {segments}}}]{extra}, '
            '"categories": [{"id": 1, "isthing": 1}, {"id": 7, "isthing": 0}]}')


def _plain(data: Any) -> Any:
    """The document with every PackedSegments as its list: what json.load gives."""
    anns = data.get("annotations")
    for ann in anns if isinstance(anns, list) else []:
        if isinstance(ann, dict) and "segments_info" in ann:
            ann["segments_info"] = segments_list(ann["segments_info"])
    return data


def _fields(segs: Any) -> list[list[int]]:
    """What the scan packs of each segment: id, category_id, area (0 without), crowd (iscrowd == 1)."""
    if type(segs) is PackedSegments:
        n = segs.n
        a = np.frombuffer(segs.fields, np.int64, 3 * n).reshape(3, n).tolist()
        return [*a, np.frombuffer(segs.fields, np.uint8, n, 24 * n).tolist()]
    return [[s["id"] for s in segs], [s["category_id"] for s in segs], [s.get("area", 0) for s in segs],
            [int(s.get("iscrowd", 0) == 1) for s in segs]]


def _read(path: Path, scan: bool | None) -> tuple[str, Any]:
    try:
        return "ok", read_json(path, "JSON", scan=scan)
    except InputError as e:
        return "error", str(e)


def _same_as_json_load(path: Path, gt: bool) -> Any:
    """read_json with the scan equals read_json without it (json.load), value or error message."""
    kind, scanned = _read(path, gt)
    ref_kind, ref = _read(path, None)
    assert kind == ref_kind
    if kind == "ok":
        anns = scanned.get("annotations")
        packed = {k: a["segments_info"] for k, a in enumerate(anns) if isinstance(a, dict)
                  and type(a.get("segments_info")) is PackedSegments} if isinstance(anns, list) else {}
        assert _plain(scanned) == ref
        for k, segs in packed.items():
            assert _fields(segs) == _fields(ref["annotations"][k]["segments_info"])
        return list(packed.values())
    assert scanned == ref
    return None


PACKED = [
    "[]",
    '[{"id": 3, "category_id": 1, "area": 10, "iscrowd": 0, "bbox": [1, 2.5, 3e2, -4]}]',
    '[ {"area":0,"category_id":7,"id":16777215,"iscrowd":1} ,{"id":1,"category_id":1,"area":5,"x":{"y":[null,true]}}]',
    '[{"id": 2, "category_id": 1, "area": 3, "id": 4}]',  # a key written twice: the last value, as json.load
    '[{"id": -0, "category_id": 1, "area": 3, "iscrowd": 123456789012345678}]',
    '[{"id": 2, "category_id": 99, "area": -3}]',  # plain integers, checked later as parse_segments checks them
]
LEFT = [  # valid arrays json.loads reads: a field of another type
    '[{"id": 2.0, "category_id": 1, "area": 3}]',
    '[{"id": 2, "category_id": 1, "area": 3, "iscrowd": true}]',
    '[{"id": 2, "category_id": 1}]',  # no area in a ground truth
    '[{"id": 2, "category_id": 1, "area": 3, "id": "2"}]',
    '[1, {"id": 2, "category_id": 1, "area": 3}]',
]
WHOLE = [  # what the scan leaves to json.load, whole (valid or not)
    '[{"id": 2, "category_id": 1, "area": 1234567890123456789}]',  # an integer of more than 18 digits
    '[{"id": 2, "category_id": 1, "area": 3, "bbox": [1' + "0" * 5000 + ']}]',  # past Python's int digit limit
    '[{"id": 2, "category_id": 1, "area": 3, "name": "caf\u00e9"}]',
    '[{"id": 2, "category_id": 1, "are\\u0061": 3}]',
    '[{"id": 2, "category_id": 1, "area": NaN}]',
    '[{"id": 02, "category_id": 1, "area": 3}]',
    '[{"id": 2, "category_id": 1, "area": 3},]',
    '[{"id": 2, "category_id": 1, "area": 3}',
    '[{"id": 2 "category_id": 1, "area": 3}]',
    '[{"id": 2, "category_id": 1, "area": 3, "s": "a\tb"}]',
    '[{"id": 2, "category_id": 1, "area": 3, "s": "\\x"}]',
    '{"id": 2}',
    "null",
]


@pytest.mark.parametrize("segments", PACKED)
def test_plain_segments_info_is_packed_with_json_loads_values(tmp_path: Path, segments: str) -> None:
    p = tmp_path / "gt.json"
    p.write_text(_doc(segments), encoding="utf-8")
    packed = _same_as_json_load(p, gt=True)
    assert len(packed) == 1 and len(packed[0]) == len(json.loads(segments))


@pytest.mark.parametrize("segments", LEFT + WHOLE)
def test_other_segments_info_reads_as_json_load_reads_it(tmp_path: Path, segments: str) -> None:
    p = tmp_path / "gt.json"
    p.write_text(_doc(segments), encoding="utf-8")
    assert not _same_as_json_load(p, gt=True)


@pytest.mark.parametrize("text", [
    _doc("[]", ', "annotations": []'),  # "annotations" twice: json.load keeps the last
    _doc("[]").replace('"segments_info": []', '"segments_info": [], "segments_info": []'),
    _doc("[]").replace('"annotations"', '"annotation\\u0073"'),
    _doc("[]").replace('"image_id": 1, ', ""),
    '\ufeff' + _doc("[]"),
    _doc("[]") + " x",
    "[" + _doc("[]") + "]",
    '{"annotations": [{"segments_info": []}, 3]}',
])
def test_document_the_scan_leaves_whole_reads_as_json_load_reads_it(tmp_path: Path, text: str) -> None:
    p = tmp_path / "gt.json"
    p.write_text(text, encoding="utf-8")
    _same_as_json_load(p, gt=True)


def test_prediction_segments_need_no_area(tmp_path: Path) -> None:
    p = tmp_path / "pred.json"
    p.write_text(_doc('[{"id": 2, "category_id": 1}]'), encoding="utf-8")
    packed = _same_as_json_load(p, gt=False)
    assert len(packed) == 1
    assert not _same_as_json_load(p, gt=True)


def test_mutated_documents_read_as_json_load_reads_them(tmp_path: Path) -> None:
    base = _doc(PACKED[2][:-1] + ", " + PACKED[1][1:])
    rng = random.Random(5)
    p = tmp_path / "gt.json"
    packed = 0
    for _ in range(600):
        t = list(base)
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(t))
            op = rng.random()
            if op < 0.4:
                del t[k]
            elif op < 0.8:
                t.insert(k, rng.choice('{}[]",:0123456789-.eE \\tnul'))
            else:
                t[k] = rng.choice('{}[]",:019-.eE \\')
        p.write_text("".join(t), encoding="utf-8")
        packed += bool(_same_as_json_load(p, gt=True))
    assert packed > 50  # the scan packed many of them


@pytest.mark.parametrize("segments", [
    '[{"id": 1, "category_id": 1, "area": 2}, {"id": 5, "category_id": 7, "area": 0, "iscrowd": 1}]',
    '[{"id": 1, "category_id": 1, "area": 2}, {"id": 1, "category_id": 7, "area": 0}]',  # duplicate id
    '[{"id": 1, "category_id": 3, "area": 2}]',  # unknown category
    '[{"id": 16777216, "category_id": 1, "area": 2}]',  # id out of range
    '[{"id": 0, "category_id": 1, "area": 2}]',
    '[{"id": 1, "category_id": 1, "area": -2}]',  # area out of range
    '[{"id": 1, "category_id": 7, "area": 2, "iscrowd": 2}]',
])
@pytest.mark.parametrize("gt", [True, False])
def test_packed_segments_parse_as_their_list(tmp_path: Path, segments: str, gt: bool) -> None:
    p = tmp_path / "a.json"
    p.write_text(_doc(segments), encoding="utf-8")
    ann = parse_annotations(read_json(p, "JSON", scan=gt), p, gt=gt)[1]
    assert type(ann["segments_info"]) is PackedSegments

    def parsed(segs: Any) -> Any:
        try:
            s = parse_segments(segs, CATS, "image 1", gt)
        except InputError as e:
            return str(e)
        return [a.tolist() for a in (s.ids, s.cats, s.iscrowd, s.areas)]

    assert parsed(ann["segments_info"]) == parsed(json.loads(segments))


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="the COCO sample is not here")
def test_coco_sample_json_is_packed_whole() -> None:
    path = SAMPLE / "panoptic_val2017.json"
    packed = _same_as_json_load(path, gt=True)
    anns = json.loads(path.read_bytes())["annotations"]
    assert len(packed) == len(anns)
    ids = np.frombuffer(packed[0].fields, np.int64, packed[0].n)
    assert ids.tolist() == [s["id"] for s in anns[0]["segments_info"]]


def test_a_packed_document_keeps_no_copy_of_the_file_and_reads_its_arrays_back_from_it_while_unchanged(
        tmp_path: Path) -> None:
    """A packed segments_info holds its fields and where it lies in the file, not the file's bytes (tens of MB at
    COCO's scale); read back from the file kept open after the file changed in place or was replaced, it is refused
    in one line naming the file."""
    from panbench.pq.coco_format import read_ground_truth

    p = tmp_path / "gt.json"
    p.write_text(_doc('[{"id": 1, "category_id": 1, "area": 2}, {"id": 2, "category_id": 7, "area": 5}]'))
    truth = read_ground_truth(p, scan=True)
    segs = truth.annotations[1]["segments_info"]
    assert type(segs) is PackedSegments
    held = [getattr(segs, s) for s in PackedSegments.__slots__]
    held += [getattr(truth, f) for f in truth.__dataclass_fields__]
    assert [x for x in held if isinstance(x, bytes | bytearray)] == [segs.fields]
    assert segs.to_list() == json.loads(p.read_text())["annotations"][0]["segments_info"]
    assert truth.raw == p.read_bytes()
    p.write_text(_doc('[{"id": 1, "category_id": 1, "area": 3}]'))
    for read in (segs.to_list, lambda: truth.raw):
        with pytest.raises(InputError, match=f"^{p}: changed since panbench read it; score again"):
            read()
    q = tmp_path / "replaced.json"  # replaced by a rename, as editors and downloads write: refused as well
    q.write_text(_doc('[{"id": 1, "category_id": 1, "area": 2}, {"id": 2, "category_id": 7, "area": 5}]'))
    truth = read_ground_truth(q, scan=True)
    p.replace(q)
    with pytest.raises(InputError, match=f"^{q}: changed since panbench read it; score again"):
        truth.annotations[1]["segments_info"].to_list()


def test_a_file_rewritten_with_its_old_modification_time_is_refused_and_a_held_file_crosses_copies_and_pickles(
        tmp_path: Path) -> None:
    """``cp -p`` onto the file read keeps its size and modification time: the change time still tells it apart. A
    document copied (a user's evaluator copied per process) shares the open file; pickled, it opens the path again
    where it is unpickled and reads only while the file there is the one read."""
    import copy
    import os
    import pickle

    from panbench.pq.coco_format import read_ground_truth

    p = tmp_path / "gt.json"
    p.write_text(_doc('[{"id": 1, "category_id": 1, "area": 2}]'))
    truth = read_ground_truth(p, scan=True)
    segs = truth.annotations[1]["segments_info"]
    assert copy.deepcopy(segs).file is segs.file and copy.copy(segs.file) is segs.file
    again = pickle.loads(pickle.dumps(segs))
    assert again.file is not segs.file and again.to_list() == segs.to_list() == [{"id": 1, "category_id": 1, "area": 2}]
    st = os.stat(p)
    p.write_text(_doc('[{"id": 1, "category_id": 1, "area": 3}]'))  # the same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(p).st_size == st.st_size and os.stat(p).st_mtime_ns == st.st_mtime_ns
    for read in (segs.to_list, again.to_list):
        with pytest.raises(InputError, match=f"^{p}: changed since panbench read it; score again"):
            read()
