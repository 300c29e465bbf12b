"""Input files and fields of ``panbench score`` and ``pq_compute`` (docs/pq-evaluator.md): a path holding something
other than what its reader reads is named as it is (a folder, an empty file, an image of another format, a symbolic
link that loops or dangles), in one line, exit 2, on the command line and in the API alike, for the ground truth's
and the predictions' PNGs, JSONs and folders; and a field PQ does not read never stops it: a segment score that is
not a number in [0, 1] leaves every score out (the score analyses with it) with one note, ids written as floats of
whole values are read as integers with one note, ``isthing`` may be a JSON bool.  The numbers are panopticapi's own
(its code run here) on sets built from the COCO sample."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import COCO_SAMPLE
from PIL import Image

from panbench import pq_compute
from panbench.analyses import ANALYSES
from panbench.cli import main
from panbench.errors import InputError

ANN = COCO_SAMPLE / "annotations"
GT_JSON, GT_DIR = ANN / "panoptic_val2017.json", ANN / "panoptic_val2017"
SCORE_FIELDS = {f for a in ANALYSES if a.key in ("score_threshold", "calibration") for f in a.fields}
SLOT = 0.123456  # the score a bad value replaces in the JSON text


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The COCO sample's ground truth and, as the prediction, its own PNGs with every segment scored and the second
    segment of each image relabelled (an FP and an FN): the document, its file and its ``score --json`` output."""
    if not GT_JSON.is_file():
        pytest.skip(f"COCO sample not found at {COCO_SAMPLE} (set PANBENCH_COCO_SAMPLE)")
    gt = json.loads(GT_JSON.read_text())
    thing = {c["id"]: c["isthing"] for c in gt["categories"]}
    anns = []
    for a in gt["annotations"]:
        segs = [{"id": s["id"], "category_id": s["category_id"], "score": round(0.1 + 0.8 * k / 50, 4)}
                for k, s in enumerate(a["segments_info"])]
        cat = segs[1]["category_id"]
        segs[1]["category_id"] = next(c for c in thing if thing[c] == thing[cat] and c != cat)
        anns.append({"image_id": a["image_id"], "file_name": a["file_name"], "segments_info": segs})
    root = tmp_path_factory.mktemp("kinds")
    pred = {"annotations": anns}
    pj = _write(root / "pred.json", pred)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(_args(GT_JSON, GT_DIR, pj, GT_DIR, "--json")) == 0
    return {"gt": gt, "pred": pred, "pred_json": pj, "json": json.loads(out.getvalue()),
            "names": [a["file_name"] for a in gt["annotations"]]}


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _args(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path, *extra: str) -> list[str]:
    return ["score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json", str(pred_json),
            "--pred-dir", str(pred_dir), *extra]


def _score(capsys: pytest.CaptureFixture[str], *files: Path, extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    code = main(_args(*files, *extra))
    out, err = capsys.readouterr()
    return code, out, err


def panopticapi(gt_json: Path, pred_json: Path) -> dict[str, Any]:
    """panopticapi's ``pq_compute`` dict of the predictions (the COCO sample's PNGs on both sides), from its own
    ``pq_compute_single_core`` and ``pq_average`` (one process)."""
    from panopticapi.evaluation import pq_compute_single_core

    gt, pred = json.loads(gt_json.read_text()), json.loads(pred_json.read_text())
    cats = {c["id"]: c for c in gt["categories"]}
    by_id = {a["image_id"]: a for a in pred["annotations"]}
    with contextlib.redirect_stdout(io.StringIO()):
        stat = pq_compute_single_core(0, [(a, by_id[a["image_id"]]) for a in gt["annotations"]], str(GT_DIR),
                                      str(GT_DIR), cats)
    out: dict[str, Any] = {}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        out[name], per_class = stat.pq_average(cats, isthing=isthing)
        out.setdefault("per_class", {int(k): v for k, v in per_class.items()})
    return out


def assert_panopticapis(ours: dict[str, Any], ref: dict[str, Any]) -> None:
    for group in ("All", "Things", "Stuff"):
        assert ours[group]["n"] == ref[group]["n"], group
        for k in ("pq", "sq", "rq"):
            assert ours[group][k] == pytest.approx(ref[group][k], abs=1e-9), (group, k)
    assert set(ours["per_class"]) == set(ref["per_class"])
    for cid, r in ref["per_class"].items():
        assert [ours["per_class"][cid][k] for k in ("pq", "sq", "rq")] == pytest.approx([r["pq"], r["sq"], r["rq"]],
                                                                                      abs=1e-9), cid


# ---- paths holding something else -------------------------------------------------------------------------------

IMAGES = ("JPEG", "GIF", "BMP", "TIFF", "WEBP")


def _put(path: Path, kind: str) -> None:
    """At ``path``, what ``kind`` names: a folder, an empty file, a symbolic link that loops or dangles, an image of
    another format (PIL's), a PNG or a JSON file."""
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("nowhere" + path.suffix)
    elif kind == "PNG":
        path.write_bytes((GT_DIR / next(GT_DIR.glob("*.png")).name).read_bytes())
    elif kind == "JSON":
        path.write_text('{"annotations": []}')
    else:
        Image.new("RGB", (8, 8), (1, 2, 3)).save(path, format=kind)


SAYS = {"folder": "is a folder, not a PNG file", "empty": "is an empty file (0 bytes); re-export it",
        "loop": "is a symbolic link loop, not a PNG file; point the link at the PNG file",
        "dangling": "is a dangling symbolic link (to nowhere.png, which does not exist), not a PNG file",
        "JPEG": "is a JPEG image, not a PNG (no PNG signature); write the ids as an 8-bit RGB PNG",
        **{k: f"is a {'WebP' if k == 'WEBP' else k} image, not a PNG (no PNG signature); convert it"
           for k in IMAGES[1:]}}


@pytest.mark.parametrize("side", ["prediction", "ground truth"])
@pytest.mark.parametrize("kind", list(SAYS))
def test_a_png_path_is_named_by_what_is_there_in_score_and_pq_compute(kind: str, side: str, sample: dict[str, Any],
                                                                       tmp_path: Path, capsys) -> None:
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for name in sample["names"][1:]:
        (pngs / name).symlink_to(GT_DIR / name)
    _put(bad := pngs / sample["names"][0], kind)
    gt_dir, pred_dir = (GT_DIR, pngs) if side == "prediction" else (pngs, GT_DIR)
    code, out, err = _score(capsys, GT_JSON, gt_dir, sample["pred_json"], pred_dir)
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert err.startswith(f"panbench: error: image 142238: PNG {bad} {SAYS[kind]}"), err
    with pytest.raises(InputError) as e:
        pq_compute(GT_JSON, sample["pred_json"], gt_dir, pred_dir)
    assert err == f"panbench: error: {e.value}\n"


JSON_SAYS = {"loop": "is a symbolic link loop, not a JSON file; point the link at the JSON file",
             "dangling": "is a dangling symbolic link (to nowhere.json, which does not exist), not a JSON file",
             "PNG": "is a PNG image, not JSON; pass the JSON file itself", "folder": "a folder, not a JSON file"}


@pytest.mark.parametrize("option", ["--pred-json", "--gt-json"])
@pytest.mark.parametrize("kind", list(JSON_SAYS))
def test_a_json_path_is_named_by_what_is_there_in_score_and_pq_compute(kind: str, option: str,
                                                                        sample: dict[str, Any], tmp_path: Path,
                                                                        capsys) -> None:
    _put(bad := tmp_path / "x.json", kind)
    gt_json, pred_json = (GT_JSON, bad) if option == "--pred-json" else (bad, sample["pred_json"])
    code, out, err = _score(capsys, gt_json, GT_DIR, pred_json, GT_DIR)
    assert (code, out, err.count("\n")) == (2, "", 1) and JSON_SAYS[kind] in err and str(bad) in err, err
    with pytest.raises(InputError, match=JSON_SAYS[kind].replace("(", r"\(").replace(")", r"\)")) as e:
        pq_compute(gt_json, pred_json, GT_DIR, GT_DIR)
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{bad}: ")


FOLDER_SAYS = {"loop": "is a symbolic link loop, not a folder",
               "dangling": "is a dangling symbolic link (to nowhere, which does not exist), not a folder",
               "JSON": "is a JSON file, not a folder", "empty": "is an empty file (0 bytes), not a folder",
               "PNG": "is a PNG image, not a folder"}


@pytest.mark.parametrize("option", ["--pred-dir", "--gt-dir"])
@pytest.mark.parametrize("kind", list(FOLDER_SAYS))
def test_a_folder_path_is_named_by_what_is_there_in_score_and_pq_compute(kind: str, option: str,
                                                                          sample: dict[str, Any], tmp_path: Path,
                                                                          capsys) -> None:
    _put(bad := tmp_path / "x", kind)
    gt_dir, pred_dir = (GT_DIR, bad) if option == "--pred-dir" else (bad, GT_DIR)
    code, out, err = _score(capsys, GT_JSON, gt_dir, sample["pred_json"], pred_dir)
    assert (code, out) == (2, "") and err == f"panbench: error: {bad}: {option} {FOLDER_SAYS[kind]}; point it at " \
        "the folder of panoptic PNGs\n", err
    name = "pred_folder" if option == "--pred-dir" else "gt_folder"
    with pytest.raises(InputError) as e:
        pq_compute(GT_JSON, sample["pred_json"], gt_dir, pred_dir)
    assert str(e.value).startswith(f"{bad}: {name} {FOLDER_SAYS[kind]}; pass {name} (the PNGs of ")


# ---- fields PQ does not read --------------------------------------------------------------------------------------

# a bad score as the JSON writes it -> the words naming it in the note
BAD_SCORES = {"2.686": "2.686", "-0.5": "-0.5", "NaN": "nan, not a finite number",
              "1e400": "inf, not a finite number (a JSON number past 1.8e308, such as 1e400, reads as inf)",
              '"0.9"': "'0.9', a str, not a number", "true": "True, a bool, not a number",
              "null": "None, a NoneType, not a number"}


def _bad_scores(sample: dict[str, Any], tmp_path: Path, text: str) -> tuple[Path, int]:
    """The prediction with the first image's third segment's score written as ``text`` and, after it, a second bad
    score (7.5, in the second image); the file and the first bad segment's id."""
    pred = copy.deepcopy(sample["pred"])
    first, second = pred["annotations"][0]["segments_info"][2], pred["annotations"][1]["segments_info"][3]
    first["score"], second["score"] = SLOT, 7.5
    raw = json.dumps(pred)
    assert raw.count(str(SLOT)) == 1
    pj = tmp_path / "pred.json"
    pj.write_text(raw.replace(str(SLOT), text))
    return pj, first["id"]


@pytest.mark.parametrize("text", list(BAD_SCORES))
def test_a_bad_score_leaves_the_score_analyses_out_with_one_note_and_the_rest_as_without_it(
        text: str, sample: dict[str, Any], tmp_path: Path, capsys) -> None:
    pj, seg = _bad_scores(sample, tmp_path, text)
    code, out, err = _score(capsys, GT_JSON, GT_DIR, pj, GT_DIR, extra=("--json",))
    got, plain = json.loads(out), sample["json"]
    assert code == 0 and err.count("\n") == 1, err
    assert err.startswith(f"note: {pj}: image 142238 segment {seg} has score {BAD_SCORES[text]}; "), err
    assert "the score analyses (score threshold, calibration) left out" in err
    assert SCORE_FIELDS <= set(plain) and not SCORE_FIELDS & set(got)
    assert got == {k: v for k, v in plain.items() if k not in SCORE_FIELDS}  # PQ, the other analyses: the same
    code, out, err = _score(capsys, GT_JSON, GT_DIR, pj, GT_DIR)  # the text: why none
    assert code == 0 and "score threshold and calibration: none" in out and err.count("\n") == 1


@pytest.mark.parametrize("text", list(BAD_SCORES))
def test_pq_compute_gives_panopticapis_numbers_past_a_bad_score(text: str, sample: dict[str, Any], tmp_path: Path,
                                                               capsys) -> None:
    pj, seg = _bad_scores(sample, tmp_path, text)
    ours = pq_compute(GT_JSON, pj, GT_DIR, GT_DIR)
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"image 142238 segment {seg} has score" in err
    assert_panopticapis(ours, ref := panopticapi(GT_JSON, pj))
    assert 0.8 < ref["All"]["pq"] < 0.95  # the relabelled segments: an FP and an FN each


def _floats(doc: dict[str, Any], where: str) -> None:
    """Every value of the field ``where`` names written as a float (``142238.0``), in place."""
    kind, _, key = where.partition(" ")
    if kind == "categories":
        items = doc["categories"]
    elif kind == "images":
        items = doc["images"]
    elif kind == "annotations":
        items = doc["annotations"]
    else:
        items = [s for a in doc["annotations"] for s in a["segments_info"]]
    for it in items:
        it[key] = float(it[key])


PRED_FLOATS = {"annotations image_id": "annotation image_id 142238.0", "segments id": "image 142238 segment id ",
               "segments category_id": "image 142238 segment category_id "}
GT_FLOATS = {"categories id": "category id 1.0", "images id": "image id 142238.0",
             "annotations image_id": "annotation image_id 142238.0", "segments id": "image 142238 segment id ",
             "segments area": "image 142238 segment area ", "segments category_id": "image 142238 segment category_id "}


@pytest.mark.parametrize("side, where", [("pred", w) for w in PRED_FLOATS] + [("gt", w) for w in GT_FLOATS])
def test_ids_written_as_whole_floats_are_read_as_integers_with_one_note(side: str, where: str, sample: dict[str, Any],
                                                                       tmp_path: Path, capsys) -> None:
    doc = copy.deepcopy(sample[side])
    _floats(doc, where)
    changed = _write(tmp_path / f"{side}.json", doc)
    gt_json, pred_json = (GT_JSON, changed) if side == "pred" else (changed, sample["pred_json"])
    code, out, err = _score(capsys, gt_json, GT_DIR, pred_json, GT_DIR, extra=("--json",))
    first = (PRED_FLOATS if side == "pred" else GT_FLOATS)[where]
    assert code == 0 and json.loads(out) == sample["json"] and err.count("\n") == 1, err
    assert err.startswith(f"note: {changed}: ") and f"(first: {first}" in err and "read as the integers" in err
    ours = pq_compute(gt_json, pred_json, GT_DIR, GT_DIR)
    assert capsys.readouterr() == ("", err)  # pq_compute's note on stderr, nothing on stdout
    assert_panopticapis(ours, panopticapi(gt_json, pred_json))


@pytest.mark.parametrize("field, value", [("image_id", 142238.5), ("id", 3937500.5), ("category_id", 1.25)])
def test_an_id_written_as_a_float_of_no_whole_value_is_refused_naming_it(field: str, value: float,
                                                                          sample: dict[str, Any], tmp_path: Path,
                                                                          capsys) -> None:
    doc = copy.deepcopy(sample["pred"])
    ann = doc["annotations"][0]
    (ann if field == "image_id" else ann["segments_info"][0])[field] = value
    code, out, err = _score(capsys, GT_JSON, GT_DIR, _write(tmp_path / "pred.json", doc), GT_DIR)
    assert (code, out, err.count("\n")) == (2, "", 1) and f"field '{field}' has the wrong type (float {value}" in err


def test_isthing_as_a_json_bool_is_read_as_iscrowd_is(sample: dict[str, Any], tmp_path: Path, capsys) -> None:
    doc = copy.deepcopy(sample["gt"])
    for c in doc["categories"]:
        c["isthing"] = c["isthing"] == 1
    for a in doc["annotations"]:
        for s in a["segments_info"]:
            s["iscrowd"] = s["iscrowd"] == 1
    gt_json = _write(tmp_path / "gt.json", doc)
    assert json.dumps(doc).count("true") > 10
    code, out, err = _score(capsys, gt_json, GT_DIR, sample["pred_json"], GT_DIR, extra=("--json",))
    assert (code, err) == (0, "") and json.loads(out) == sample["json"]
    assert_panopticapis(pq_compute(gt_json, sample["pred_json"], GT_DIR, GT_DIR),
                        panopticapi(gt_json, sample["pred_json"]))


def test_a_segment_id_0_is_refused_with_its_fix(sample: dict[str, Any], tmp_path: Path, capsys) -> None:
    doc = copy.deepcopy(sample["pred"])
    doc["annotations"][0]["segments_info"][0]["id"] = 0
    code, out, err = _score(capsys, GT_JSON, GT_DIR, _write(tmp_path / "pred.json", doc), GT_DIR)
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert "segment id 0 is outside 1..16777215" in err and "number the segments from 1 in the PNG and in " \
        "segments_info alike (e.g. every id + 1)" in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes: POSIX")
def test_a_prediction_png_that_is_a_pipe_is_named_not_waited_on(sample: dict[str, Any], tmp_path: Path) -> None:
    """A FIFO has no writer: reading it would wait for ever (panopticapi's does); the batch path's C reader and the
    per-image reader both look at what the path is first. In a child process with a limit, so a break fails."""
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for name in sample["names"][1:]:
        (pngs / name).symlink_to(GT_DIR / name)
    os.mkfifo(pngs / sample["names"][0])
    code = (f"import sys; from panbench.cli import main; sys.exit(main({_args(GT_JSON, GT_DIR, GT_JSON, pngs)!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert f"{pngs / sample['names'][0]} is a pipe, not a PNG file" in r.stderr


def test_a_field_of_the_wrong_type_is_refused_with_the_value_to_write(sample: dict[str, Any], tmp_path: Path,
                                                                      capsys) -> None:
    gt = copy.deepcopy(sample["gt"])
    gt["categories"][0]["isthing"] = "true"
    code, _, err = _score(capsys, _write(tmp_path / "gt.json", gt), GT_DIR, GT_JSON, GT_DIR)
    assert code == 2 and err.strip().endswith("field 'isthing' has the wrong type (str, not int); write 1 (a thing) "
                                              "or 0 (stuff), or true/false")
    pred = copy.deepcopy(sample["pred"])
    pred["annotations"][0]["segments_info"][0]["category_id"] = "1"
    code, _, err = _score(capsys, GT_JSON, GT_DIR, _write(tmp_path / "pred.json", pred), GT_DIR)
    assert code == 2 and "field 'category_id' has the wrong type (str, not int); write it as an integer (42, " in err


def test_a_png_that_cannot_be_opened_for_the_machines_reason_is_not_named_by_its_content(monkeypatch) -> None:
    """Too many open files: the PNG is there and is a PNG; the line says it cannot be read, and why."""
    import errno

    from panbench.pq import png

    def emfile(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(png.os, "open", emfile)
    name = GT_DIR / "000000142238.png"
    if not name.is_file():
        pytest.skip("COCO sample not found")
    with pytest.raises(InputError) as e:
        png.read_ids(name, "image 142238 (prediction)")
    assert str(e.value) == (f"image 142238 (prediction): PNG {name} cannot be read (Too many open files); check the "
                            "file and the machine (open files, disk)")
