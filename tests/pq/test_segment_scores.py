"""Each predicted segment's own score in the per-image match: ``tp_score`` (the matched prediction's) and
``fp_score`` (each counted FP's), NaN where a segment has none, the same bits from the numpy twins
(tests/kernel_references.py), C per image and the batch path, from memory and from PNG+JSON; an ignored prediction
(crowd, VOID) in neither column; a score that is not a number in [0, 1] refused in one line naming the image and the
segment."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kernel_references import numpy_kernels, python_checks

from panbench.cli import main
from panbench.data.synth import PanopticImage, coco_like_categories, write_panoptic
from panbench.errors import InputError
from panbench.pq import batch, matching, native, score
from panbench.pq.coco_format import PackedSegments, parse_segments, read_json
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable, ImageMatch
from panbench.pq.png import read_ids
from panbench.pq.result import to_columns
from panbench.pq.score import Scoring, load_pairs, read_truth, score_stream

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco-panoptic-val2017-sample" / "annotations"
CATS = coco_like_categories()
A, B, STUFF = 1, 5, 2  # two thing categories and a stuff one of CATS
COLUMNS = ("tp_score", "fp_score", "tp_img", "fp_img")


def _score_of(k: int) -> Any:
    """The score of a prediction's k-th segment: none (every 4th), an int 0 or 1 (JSON's 0 and 1), else a float."""
    if k % 4 == 3:
        return None
    if k % 9 == 4:
        return k % 2  # 0 or 1, written as a JSON integer
    return round((0.137 * k + 0.05) % 1.0, 6)


def _info(s: dict[str, Any], score: Any) -> dict[str, Any]:
    return {**s, "score": score} if score is not None else dict(s)


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """COCO's two annotation PNGs as ground truth and as their own prediction (its segments_info in reverse order,
    so that a TP's prediction is not at its ground truth's index), each predicted segment with its own score (or
    none); every fifth non-crowd segment relabelled (an FP, its ground truth an FN); the crowd segments predicted as
    they are (ignored: on their own category's crowd region).  Also the columns it must give (TPs in ground-truth
    order, FPs in prediction order)."""
    if not (SAMPLE / "panoptic_val2017.json").is_file():
        pytest.skip(f"COCO sample not found at {SAMPLE}")
    d = json.loads((SAMPLE / "panoptic_val2017.json").read_text())
    thing = {c["id"]: c["isthing"] for c in d["categories"]}
    anns: list[dict[str, Any]] = []
    want: dict[str, list[Any]] = {k: [] for k in COLUMNS}
    for i, a in enumerate(d["annotations"]):
        crowd_cats = {s["category_id"] for s in a["segments_info"] if s["iscrowd"]}
        assert len(crowd_cats) == sum(s["iscrowd"] for s in a["segments_info"])  # each crowd its category's last
        segs, fps = [], []
        for k, s in enumerate(a["segments_info"]):
            sc, cat = _score_of(k), s["category_id"]
            if not s["iscrowd"] and k % 5 == 2:  # another category of its kind, no crowd of which is here
                cat = next(c for c in thing if thing[c] == thing[cat] and c != cat and c not in crowd_cats)
                fps.append(sc)
            elif not s["iscrowd"]:
                want["tp_score"].append(sc)
                want["tp_img"].append(i)
            segs.append(_info({"id": s["id"], "category_id": cat}, sc))
        want["fp_score"] += fps[::-1]
        want["fp_img"] += [i] * len(fps)
        anns.append({**a, "segments_info": segs[::-1]})
    pj = tmp_path_factory.mktemp("scores") / "pred.json"
    pj.write_text(json.dumps({**d, "annotations": anns}))
    nan = float("nan")
    return {"gt_json": SAMPLE / "panoptic_val2017.json", "gt_dir": SAMPLE / "panoptic_val2017", "pred_json": pj,
            "pred_dir": SAMPLE / "panoptic_val2017",
            "want": {k: np.array([nan if v is None else v for v in vals], np.float64 if "score" in k else np.int64)
                     for k, vals in want.items()}}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two 4 x 8 images: a TP, a prediction on a crowd region of its category and one on VOID (both ignored), an FP
    without a score; and an image whose only prediction (scored) is an FP, a quarter of it on VOID."""
    gt1 = np.zeros((4, 8), np.uint32)
    gt1[:2, :4], gt1[:2, 4:6], gt1[2:] = 1, 2, 3  # a thing, a crowd of its category, stuff; VOID at [:2, 6:]
    pred1 = np.zeros((4, 8), np.uint32)
    pred1[:2, :4], pred1[:2, 4:6], pred1[:2, 6:], pred1[2:] = 10, 11, 12, 13
    gt2 = np.zeros((4, 8), np.uint32)
    gt2[:, :5] = 1
    pred2 = np.zeros((4, 8), np.uint32)
    pred2[:, 2:6] = 7  # 12 px on a thing of another category, 4 on VOID: counted
    gt = [(1, PanopticImage(gt1, [{"id": 1, "category_id": A, "iscrowd": 0, "area": 8},
                                  {"id": 2, "category_id": A, "iscrowd": 1, "area": 4},
                                  {"id": 3, "category_id": STUFF, "iscrowd": 0, "area": 16}])),
          (2, PanopticImage(gt2, [{"id": 1, "category_id": A, "iscrowd": 0, "area": 20}]))]
    pred = [(1, PanopticImage(pred1, [{"id": 13, "category_id": A},
                                      {"id": 11, "category_id": A, "score": 0.5},
                                      {"id": 12, "category_id": B, "score": 0.25},
                                      {"id": 10, "category_id": A, "score": 0.75}])),
            (2, PanopticImage(pred2, [{"id": 7, "category_id": B, "score": 1.0}]))]
    root = tmp_path_factory.mktemp("small")
    gj, gd = write_panoptic(root, "gt", gt, CATS)
    pj, pd = write_panoptic(root, "pred", pred, CATS)
    nan = float("nan")
    want = {"tp_score": np.array([0.75]), "fp_score": np.array([nan, 1.0]), "tp_img": np.array([0]),
            "fp_img": np.array([0, 1])}
    return {"gt_json": gj, "gt_dir": gd, "pred_json": pj, "pred_dir": pd, "want": want}


def _from_memory(c: dict[str, Any]) -> dict[str, np.ndarray]:
    """Each image scored from its id maps and segments_info dicts (eval's way), as columns."""
    gt = json.loads(Path(c["gt_json"]).read_text())
    pred = {a["image_id"]: a for a in json.loads(Path(c["pred_json"]).read_text())["annotations"]}
    cats = CategoryTable.from_coco(gt["categories"])
    matches: list[ImageMatch] = []
    for a in gt["annotations"]:
        p = pred[a["image_id"]]
        gt_ids = read_ids(Path(c["gt_dir"]) / a["file_name"], "gt").copy()
        pred_ids = read_ids(Path(c["pred_dir"]) / p["file_name"], "pred").copy()
        matches.append(score_pair(cats, gt_ids, a["segments_info"], pred_ids, p["segments_info"]).match)
    return to_columns(matches, ("tp_score", "fp_score"))


def _from_files(c: dict[str, Any], monkeypatch: pytest.MonkeyPatch, batch_path: bool) -> dict[str, np.ndarray]:
    """``panbench score``'s columns (the batch path, or the per-image path); on the batch path, no image left to the
    per-image path."""
    per_image: list[Any] = []
    with monkeypatch.context() as m:
        if batch_path:
            assert batch.available()
            one = score._score_one

            def counted(*a: Any) -> Any:
                per_image.append(a)
                return one(*a)

            m.setattr(score, "_score_one", counted)
        else:
            m.setattr(batch, "available", lambda: False)
        ev, _ = score_stream(read_truth(c["gt_json"]), c["gt_dir"], c["pred_json"], c["pred_dir"], 1,
                             Scoring(keep_images=True))
    assert per_image == []
    return ev.columns()[1]


def _all_paths(c: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, np.ndarray]]:
    paths = {"C per image, from memory": _from_memory(c), "per-image path, from files": _from_files(c, monkeypatch,
                                                                                                   False)}
    with monkeypatch.context() as m:
        numpy_kernels(m)
        paths["numpy, from memory"] = _from_memory(c)
    if batch.available():
        paths["batch path, from files"] = _from_files(c, monkeypatch, True)
    return paths


def _assert_columns(got: dict[str, np.ndarray], want: dict[str, np.ndarray], path: str) -> None:
    for k in COLUMNS:
        dtype = np.float64 if k.endswith("_score") else np.int64
        assert got[k].dtype == dtype and got[k].tobytes() == want[k].astype(dtype).tobytes(), (path, k, got[k])


@pytest.mark.parametrize("which", ["coco_set", "small_set"])
def test_every_path_gives_each_tp_and_fp_its_predictions_score_bit_for_bit(
        which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """COCO's PNGs (scores, none, JSON integers; relabelled FPs; ignored crowd predictions) and the small set
    (ignored on crowd and on VOID; an FP without a score): the columns the construction gives, on every path."""
    c = request.getfixturevalue(which)
    paths = _all_paths(c, monkeypatch)
    assert len(paths) == 4 or not batch.available()
    for path, cols in paths.items():
        _assert_columns(cols, c["want"], path)
    assert np.isnan(c["want"]["tp_score"]).any() or np.isnan(c["want"]["fp_score"]).any()  # unscored: NaN


def test_predictions_without_scores_give_nan_columns_and_the_same_other_columns(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     coco_set: dict[str, Any]) -> None:
    """The COCO set with every score left out: NaN in both columns; every other column (PQ's too) unchanged."""
    d = json.loads(coco_set["pred_json"].read_text())
    for a in d["annotations"]:
        for s in a["segments_info"]:
            s.pop("score", None)
    pj = tmp_path / "pred.json"
    pj.write_text(json.dumps(d))
    c = {**coco_set, "pred_json": pj}
    for path in (True, False) if batch.available() else (False,):
        cols = _from_files(c, monkeypatch, path)
        scored = _from_files(coco_set, monkeypatch, path)
        assert len(cols["tp_score"]) and np.isnan(cols["tp_score"]).all() and np.isnan(cols["fp_score"]).all()
        assert len(cols["fp_score"]) == len(coco_set["want"]["fp_score"])
        for k in cols:
            if k not in ("tp_score", "fp_score"):
                assert np.array_equal(cols[k], scored[k]), k


def test_ground_truth_scores_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          small_set: dict[str, Any]) -> None:
    """A ground truth's "score", even one a prediction may not have, changes nothing."""
    d = json.loads(small_set["gt_json"].read_text())
    for a in d["annotations"]:
        for s, v in zip(a["segments_info"], ("high", 7.5, True)):
            s["score"] = v
    gj = tmp_path / "gt.json"
    gj.write_text(json.dumps(d))
    _assert_columns(_from_files({**small_set, "gt_json": gj}, monkeypatch, batch.available()), small_set["want"],
                    "ground truth with scores")
    for c in (native.match(), python_checks(native.match())):  # C's segments(), and the Python code (C declining)
        monkeypatch.setattr(native, "match", lambda c=c: c)
        assert np.isnan(parse_segments(d["annotations"][0]["segments_info"], CategoryTable.from_coco(CATS), "gt",
                                       gt=True).scores).all()


def _numbers() -> list[str]:
    """How a score may be written in JSON: each form a number takes, and random decimals of 1 to 20 digits and
    floats as Python writes them (shortest repr: up to 17 digits, an exponent below 1e-4)."""
    rng = np.random.default_rng(5)
    forms = ["0.1", "1e-1", "1E-1", "0.30000000000000004", "1", "0", "-0", "-0.0", "1.0", "5e-324", "0.5e0",
             "2.2250738585072014e-308", "0.99999999999999999", "1e0", "0.0000000000000000000000001",
             "0.9007199254740993", "0.00000000000000000000009007199254740992",
             "0.000000000000000000000009007199254740992"]
    decimals = ["0." + "".join(map(str, rng.integers(0, 10, int(n)))) for n in rng.integers(1, 21, 1500)]
    floats = [repr(float(x)) for x in rng.random(1500) ** rng.integers(1, 40, 1500)]
    return forms + decimals + floats


def test_scores_read_by_the_json_scan_are_json_loads_numbers(tmp_path: Path) -> None:
    """Scores in every form a JSON number takes: the scan's packed segments (C) give json.loads' floats, bits and
    all (-0.0 kept, the integer -0 as 0); without a score NaN."""
    NUMBERS = _numbers()
    segs = ", ".join(f'{{"id": {k + 1}, "category_id": {A}, "score": {v}}}' for k, v in enumerate(NUMBERS))
    p = tmp_path / "pred.json"
    p.write_text(f'{{"annotations": [{{"image_id": 1, "file_name": "a.png", "segments_info": [{segs}, '
                 f'{{"id": 99999, "category_id": {A}}}]}}]}}')
    packed = read_json(p, "predictions", scan=False)["annotations"][0]["segments_info"]
    assert type(packed) is PackedSegments
    cats = CategoryTable.from_coco(CATS)
    got = parse_segments(packed, cats, "image 1", gt=False).scores  # type: ignore[arg-type]
    want = np.array([float(v) for v in json.loads(f"[{', '.join(NUMBERS)}]")] + [math.nan])
    assert got.tobytes() == want.tobytes(), [n for n, x, y in zip(NUMBERS, got, want) if x != y]
    assert parse_segments(packed.to_list(), cats, "image 1", gt=False).scores.tobytes() == want.tobytes()
    with pytest.MonkeyPatch.context() as m:  # the Python code, C's segments() declining
        m.setattr(matching, "_native", python_checks(matching._native))
        assert parse_segments(packed.to_list(), cats, "image 1", gt=False).scores.tobytes() == want.tobytes()


BAD = [(1.5, "score 1.5;"), (-0.25, "score -0.25;"), (True, "True, a bool, not a number"),
       ("0.9", "'0.9', a str, not a number"), (None, "None, a NoneType, not a number"),
       (float("nan"), "nan, not a finite number"),
       (float("inf"), "inf, not a finite number (a JSON number past 1.8e308, such as 1e400, reads as inf)"),
       ([0.5], "[0.5], a list, not a number"), (2, "score 2.0;"),
       (10**400, "score 1e400 or so (an integer of 401 digits)"),
       (-10**400, "score -1e400 or so (an integer of 401 digits)")]


@pytest.mark.parametrize("value, says", BAD, ids=[repr(v) for v, _ in BAD])
def test_a_bad_score_is_refused_in_one_line_naming_the_segment(value: Any, says: str) -> None:
    segs = [{"id": 3, "category_id": A, "score": 0.5}, {"id": 4, "category_id": A, "score": value}]
    for c in (native.match(), python_checks(native.match())):  # C's segments() leaves it to Python, which names it
        with pytest.MonkeyPatch.context() as m:
            m.setattr(native, "match", lambda c=c: c)
            with pytest.raises(InputError) as e:
                parse_segments(segs, CategoryTable.from_coco(CATS), "image 7 (prediction)", gt=False)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("image 7 (prediction): segment 4 has score ") and says in msg
        assert "in [0, 1]" in msg and "leave 'score' out" in msg


@pytest.mark.parametrize("text", ["1.5", "true", "NaN", "-1e-9", "\"0.5\"", "null"])
def test_score_scores_past_a_bad_score_in_the_predictions_json_with_one_note(
        text: str, tmp_path: Path, small_set: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """From PNG+JSON (the scan reads the array, or leaves it to json.loads): PQ as without the score, one note naming
    the image and the segment, exit 0 (tests/pq/test_input_kinds.py: the analyses left out)."""
    raw = small_set["pred_json"].read_text().replace('"score": 0.25', f'"score": {text}')
    assert raw != small_set["pred_json"].read_text()
    pj = tmp_path / "pred.json"
    pj.write_text(raw)
    args = ["score", "--gt-json", str(small_set["gt_json"]), "--gt-dir", str(small_set["gt_dir"]),
            "--pred-dir", str(small_set["pred_dir"]), "--no-analysis"]
    assert main([*args, "--pred-json", str(small_set["pred_json"])]) == 0
    plain = capsys.readouterr().out
    assert main([*args, "--pred-json", str(pj)]) == 0
    out, err = capsys.readouterr()
    assert out == plain and len(err.splitlines()) == 1 and "image 1 segment 12 has score" in err, err


def test_segments_without_scores_are_all_nan_and_a_wrong_length_is_refused() -> None:
    s = matching.Segments(np.array([1, 2]), np.array([0, 0]), np.zeros(2, bool), np.zeros(2, np.int64))
    assert s.scores.dtype == np.float64 and np.isnan(s.scores).all() and len(s.scores) == 2
    with pytest.raises(ValueError, match="1 scores for 2 segments"):
        matching.Segments(np.array([1, 2]), np.array([0, 0]), np.zeros(2, bool), np.zeros(2, np.int64),
                          np.array([0.5]))


def test_load_pairs_keeps_scores_in_the_packed_segments(coco_set: dict[str, Any]) -> None:
    """The batch path's reading of the predictions: the scores are in what C packed, not lost to the cut text."""
    cats, pairs = load_pairs(read_truth(coco_set["gt_json"]), coco_set["pred_json"], packed=True)
    pred = pairs[0][1]["segments_info"]
    assert type(pred) is PackedSegments
    scores = parse_segments(pred, cats, "image", gt=False).scores  # type: ignore[arg-type]
    listed = [s.get("score", math.nan) for s in pred.to_list()]
    assert np.array_equal(scores, np.array(listed, np.float64), equal_nan=True) and not np.isnan(scores).all()
