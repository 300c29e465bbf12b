"""COCO panoptic's rule that a stuff category has at most one segment per image: the demo set keeps it (the
regions drawn with one stuff class merged after the image is painted), ``panbench data`` refuses a written or
converted dataset that breaks it (warns for COCO's own file), ``panbench score`` warns on a ground truth that
breaks it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_demo import JPEGS  # the pinned sha256 of each split's JPEGs

from panbench.cli import main
from panbench.data import demo
from panbench.data.synth import PanopticImage, write_panoptic
from panbench.errors import PanbenchError
from panbench.pq.coco_format import PackedSegments, read_ground_truth, read_json
from panbench.pq.png import read_ids
from panbench.pq.stuff_rule import Repeat, repeated_stuff, stuff_rule_warning

CATS = [{"id": 1, "name": "disk", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0},
        {"id": 5, "name": "sand", "isthing": 0}]


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def _joined(boxes: list[list[int]]) -> list[int]:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return [x0, y0, x1 - x0, y1 - y0]


@pytest.fixture(scope="module")
def val_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[PanopticImage, PanopticImage]]]:
    """The demo val split as `panbench data demo` writes it, with each image's segments before and after the merge."""
    root = tmp_path_factory.mktemp("demo")
    merges: list[tuple[PanopticImage, PanopticImage]] = []
    merge = demo.merge_stuff

    def recorded(img: PanopticImage, cats: list[dict[str, Any]]) -> PanopticImage:
        before = PanopticImage(img.ids.copy(), [dict(s) for s in img.segments_info])
        merges.append((before, merge(img, cats)))
        return merges[-1][1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "merge_stuff", recorded)
        offset, n = demo.SPLITS["val2017"]
        demo.make_split(root, "val2017", n, offset)
    return root, merges


def test_the_demo_ground_truth_has_one_segment_per_stuff_category_and_image(val_split) -> None:
    root, merges = val_split
    ann = root / "annotations"
    data = json.loads((ann / "panoptic_val2017.json").read_text())
    stuff = {c["id"] for c in demo.DEMO_CATEGORIES if not c["isthing"]}
    merged_images = 0
    for a, (before, _) in zip(data["annotations"], merges, strict=True):
        cats = [s["category_id"] for s in a["segments_info"] if s["category_id"] in stuff]
        assert len(cats) == len(set(cats)), (a["image_id"], cats)
        ids = read_ids(ann / "panoptic_val2017" / a["file_name"], "ground truth")
        assert sorted(np.unique(ids[ids > 0]).tolist()) == sorted(s["id"] for s in a["segments_info"])
        for s in a["segments_info"]:
            assert s["area"] == int((ids == s["id"]).sum()), (a["image_id"], s)  # the PNG's pixel count
            assert s["bbox"] == _bbox(ids == s["id"]), (a["image_id"], s)
            if s["category_id"] not in stuff:
                continue
            drawn = [d for d in before.segments_info if d["category_id"] == s["category_id"]]
            assert s["id"] == drawn[0]["id"] and s["area"] == sum(d["area"] for d in drawn)  # areas summed
            assert s["bbox"] == _joined([_bbox(before.ids == d["id"]) for d in drawn])  # boxes joined
            merged_images += len(drawn) > 1
    assert merged_images >= 25  # 25 images had two or more regions of one stuff class (image 2000: two of sand)


def test_the_demo_images_are_painted_from_the_regions_as_drawn(val_split) -> None:
    """The merge comes after the painting: the JPEGs are byte for byte the ones the demo models were measured on."""
    root, _ = val_split
    h = hashlib.sha256()
    for p in sorted((root / "val2017").glob("*.jpg")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    assert h.hexdigest() == JPEGS["val2017"]


def test_the_demo_writer_refuses_a_split_that_breaks_the_rule(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "merge_stuff", lambda img, cats: img)
    with pytest.raises(PanbenchError) as e:
        demo.make_split(tmp_path, "val2017", 3, demo.SPLITS["val2017"][0])
    msg = str(e.value)
    ann = tmp_path / "annotations" / "panoptic_val2017.json"
    assert msg.startswith(f"{ann}: 2 image(s) break the COCO panoptic rule") and "\n" not in msg, msg
    assert "(first: image 2000 (2 segments of 21 sand))" in msg and not ann.exists()


def _converted(root: Path, src: Path, force: bool = False) -> Path:
    """A converter that writes ADE20K's layout with two segments of one stuff class in its second image."""
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    segs = [[{"id": 1, "category_id": 2, "area": 4}, {"id": 2, "category_id": 5, "area": 4}],
            [{"id": 1, "category_id": 5, "area": 4}, {"id": 2, "category_id": 5, "area": 4}]]
    (ann / "ade20k_panoptic_val.json").write_text(json.dumps({
        "images": [{"id": f"ADE_val_{k}", "file_name": f"ADE_val_{k}.jpg", "height": 2, "width": 4} for k in (1, 2)],
        "annotations": [{"image_id": f"ADE_val_{k}", "file_name": f"ADE_val_{k}.png", "segments_info": s}
                        for k, s in zip((1, 2), segs)],
        "categories": CATS}))
    return root


def test_a_conversion_that_breaks_the_rule_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    import panbench.data.ade20k as ade20k

    monkeypatch.setattr(ade20k, "prepare_ade20k", _converted)
    (tmp_path / "src").mkdir()
    rc = main(["data", "ade20k", "--from", str(tmp_path / "src"), "--root", str(tmp_path / "ade")])
    err = capsys.readouterr().err.strip()
    ann = tmp_path / "ade" / "annotations" / "ade20k_panoptic_val.json"
    assert rc == 2 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"panbench: error: {ann}: 1 image(s) break the COCO panoptic rule"), err
    assert "(first: image ADE_val_2 (2 segments of 5 sand))" in err and err.endswith("convert again with --force")


def _coco_root(root: Path, segs: list[list[dict[str, Any]]]) -> Path:
    """A COCO layout with empty files where the images and PNGs go (verify_tree checks that they are there)."""
    (root / "val2017").mkdir(parents=True)
    (root / "annotations" / "panoptic_val2017").mkdir(parents=True)
    for k in range(len(segs)):
        (root / "val2017" / f"{k}.jpg").write_bytes(b"")
        (root / "annotations" / "panoptic_val2017" / f"{k}.png").write_bytes(b"")
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps({
        "images": [{"id": k, "file_name": f"{k}.jpg", "height": 2, "width": 4} for k in range(len(segs))],
        "annotations": [{"image_id": k, "file_name": f"{k}.png", "segments_info": s} for k, s in enumerate(segs)],
        "categories": CATS}))
    return root


def test_cocos_own_file_is_kept_with_a_warning_where_it_breaks_the_rule(tmp_path: Path, capsys) -> None:
    from panbench.data.coco import verify_tree

    two = [{"id": 1, "category_id": 2, "area": 4}, {"id": 2, "category_id": 2, "area": 4}]
    one = [{"id": 1, "category_id": 2, "area": 4}, {"id": 2, "category_id": 1, "area": 4},
           {"id": 3, "category_id": 1, "area": 4}]  # two things of one class: the rule is the stuff classes'
    verify_tree(_coco_root(tmp_path / "bad", [one, two]))
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"panbench: warning: {tmp_path / 'bad' / 'annotations' / 'panoptic_val2017.json'}: 1 "
                          "image(s) break") and "(first: image 1 (2 segments of 2 sky))" in err and "\n" not in err
    verify_tree(_coco_root(tmp_path / "good", [one]))
    assert capsys.readouterr().err == ""


def _ground_truth(root: Path, split_sky: bool) -> list[str]:
    """Two 2x4 images scored against themselves: sky | sand, and in the second image sky | sky (two segments) when
    ``split_sky``, else sky | disk; `score`'s file arguments."""
    left = np.repeat(np.array([[1, 1, 0, 0]], np.uint32), 2, axis=0)
    ims = [(1, PanopticImage(left * 10 + (1 - left) * 11, [{"id": 10, "category_id": 2, "area": 4},
                                                         {"id": 11, "category_id": 5, "area": 4}])),
           (2, PanopticImage(left * 12 + (1 - left) * 13, [{"id": 12, "category_id": 2, "area": 4},
                                                         {"id": 13, "category_id": 2 if split_sky else 1, "area": 4}]))]
    js, png = write_panoptic(root, "gt", ims, CATS)
    pred = root / "pred.json"  # its own file: score reads each of its two JSONs once, on a thread
    pred.write_bytes(js.read_bytes())
    return ["--gt-json", str(js), "--gt-dir", str(png), "--pred-json", str(pred), "--pred-dir", str(png)]


@pytest.mark.parametrize("analysis", [True, False], ids=["analyses", "no-analysis"])
def test_score_warns_in_one_line_on_a_ground_truth_that_breaks_the_rule(tmp_path: Path, capsys, monkeypatch,
                                                                         analysis) -> None:
    """From the document scoring parsed: the ground-truth JSON is read once (by the read-ahead), not again."""
    from panbench.pq import coco_format

    files = _ground_truth(tmp_path, split_sky=True)
    opened: list[str] = []
    monkeypatch.setattr(coco_format, "open", lambda path, *a, **k: opened.append(str(path)) or open(path, *a, **k),
                        raising=False)
    assert main(["score", *files, "--json", *([] if analysis else ["--no-analysis"])]) == 0
    assert opened == []
    cap = capsys.readouterr()
    assert json.loads(cap.out)["n_images"] == 2
    assert cap.err.count("\n") == 1 and cap.err.startswith(f"panbench: warning: {files[1]}: 1 of 2 ground-truth "
                                                           "images have two or more segments of one stuff "
                                                           "category (image 2 (2 segments of 2 sky)); "), cap.err


def test_score_says_nothing_of_a_ground_truth_that_keeps_the_rule(tmp_path: Path, capsys) -> None:
    assert main(["score", *_ground_truth(tmp_path, split_sky=False), "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["PQ"] == 100.0 and cap.err == ""


def test_the_warning_names_the_count_and_the_first_three_images(tmp_path: Path) -> None:
    two = [{"id": 1, "category_id": 5, "area": 1}, {"id": 2, "category_id": 5, "area": 1}]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"annotations": [{"image_id": k, "file_name": f"{k}.png", "segments_info": two}
                                              for k in range(5)], "categories": CATS}))
    line = stuff_rule_warning(read_ground_truth(gt))
    assert line is not None and "5 of 5 ground-truth images" in line
    assert "(image 0 (2 segments of 5 sand), image 1 (2 segments of 5 sand), image 2 (2 segments of 5 sand), ...)" \
        in line


def test_the_check_reads_segments_info_read_in_c_as_json_load_gives_it(tmp_path: Path) -> None:
    """The same repeats whether score's reader kept the segments as C read them or json.load parsed them."""
    gt = Path(_ground_truth(tmp_path, split_sky=True)[1])
    scanned = read_json(gt, "ground truth", scan=True)
    assert all(type(a["segments_info"]) is PackedSegments for a in scanned["annotations"])
    want = [Repeat(2, 2, 2)]
    assert repeated_stuff(scanned["annotations"], CATS) == want
    assert repeated_stuff(json.loads(gt.read_text())["annotations"], CATS) == want


def test_the_warning_is_of_the_ground_truth_given_and_said_each_time(tmp_path: Path) -> None:
    """The warning comes from the document passed, nothing kept between calls."""
    truth = read_ground_truth(Path(_ground_truth(tmp_path, split_sky=True)[1]))
    kept = read_ground_truth(Path(_ground_truth(tmp_path / "keeps", split_sky=False)[1]))
    assert stuff_rule_warning(kept) is None
    assert "1 of 2 ground-truth images" in (stuff_rule_warning(truth) or "")
    assert stuff_rule_warning(truth) == stuff_rule_warning(truth) and stuff_rule_warning(kept) is None
