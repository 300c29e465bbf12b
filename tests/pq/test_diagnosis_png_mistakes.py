"""`panbench score` names the mistake behind a prediction made from the COCO sample's own ground truth and broken as
users break theirs: the categories' colours saved instead of the ids, every PNG id its segments_info id + 1,
segments_info renumbered 1..n over the PNG's own ids, file names of the images (``.jpg``) beside their PNGs, a
transposed map, and category ids + 1 in one image only; each refused in one line with the fix (and the PQ the fix
gives where it is exact), and a prediction whose only mistake is an empty listed segment still told to drop it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from panbench.cli import main
from panbench.pq.png import read_ids

Broken = Callable[[int, np.ndarray, list[dict], str], tuple[np.ndarray, list[dict], str]]


def _write(ids: np.ndarray, path: Path) -> None:
    ids = ids.astype(np.uint32)
    Image.fromarray(np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)).save(path)


def score(coco_sample: Path, tmp: Path, capsys, broken: Broken) -> tuple[int, str]:
    """``score`` of the ground truth as its own prediction, broken by ``broken`` (image index, ids, segments_info,
    file_name -> the same, broken): the exit code and standard error."""
    ann = coco_sample / "annotations"
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    (tmp / "pred").mkdir()
    anns = []
    for k, a in enumerate(gt["annotations"]):
        ids = read_ids(ann / "panoptic_val2017" / a["file_name"], "").astype(np.int64)
        segs = [{"id": s["id"], "category_id": s["category_id"], "iscrowd": 0} for s in a["segments_info"]]
        ids, segs, name = broken(k, ids, segs, a["file_name"])
        _write(ids, tmp / "pred" / a["file_name"])
        anns.append({"image_id": a["image_id"], "file_name": name, "segments_info": segs})
    (tmp / "pred.json").write_text(json.dumps({"annotations": anns}))
    code = main(["score", "--gt-json", str(ann / "panoptic_val2017.json"), "--gt-dir", str(ann / "panoptic_val2017"),
                 "--pred-json", str(tmp / "pred.json"), "--pred-dir", str(tmp / "pred"), "--no-analysis", "--json"])
    err = capsys.readouterr().err.strip()
    assert code == 0 or len(err.splitlines()) == 1, err
    return code, err


def _colours(coco_sample: Path) -> dict[int, list[int]]:
    gt = json.loads((coco_sample / "annotations" / "panoptic_val2017.json").read_text())
    return {c["id"]: c["color"] for c in gt["categories"]}


def test_the_categories_colours_saved_for_the_ids_are_named(coco_sample: Path, tmp_path: Path, capsys) -> None:
    colors = _colours(coco_sample)

    def colour(k: int, ids: np.ndarray, segs: list[dict], name: str):
        out = np.zeros_like(ids)
        for s in segs:
            r, g, b = colors[s["category_id"]]
            out[ids == s["id"]] = r + 256 * g + 65536 * b
        return out, segs, name

    code, err = score(coco_sample, tmp_path, capsys, colour)
    assert code == 2 and "the PNG holds the categories' colours (a visualisation" in err, err
    assert "drop empty segments" not in err and "pq_if_fixed" not in err


def test_every_png_id_plus_one_is_named_with_the_pq_of_the_ids_moved_back(coco_sample: Path, tmp_path: Path,
                                                                          capsys) -> None:
    code, err = score(coco_sample, tmp_path, capsys, lambda k, ids, segs, name: (np.where(ids > 0, ids + 1, 0),
                                                                                  segs, name))
    assert code == 2 and "the PNG's ids are segments_info's +1" in err and "subtract 1 from the PNG's ids" in err
    assert "(this prediction gives PQ 100.00 once fixed)" in err, err  # the ground truth itself, once moved back


def test_segments_info_renumbered_over_the_pngs_own_ids_is_named(coco_sample: Path, tmp_path: Path, capsys) -> None:
    code, err = score(coco_sample, tmp_path, capsys,
                      lambda k, ids, segs, name: (ids, [{**s, "id": i + 1} for i, s in enumerate(segs)], name))
    assert code == 2 and "segments_info was renumbered and the PNG was not" in err, err
    assert "list every segment of the PNG" not in err


def test_the_images_jpg_name_beside_its_png_is_named_with_the_png_s(coco_sample: Path, tmp_path: Path,
                                                                    capsys) -> None:
    code, err = score(coco_sample, tmp_path, capsys,
                      lambda k, ids, segs, name: (ids, segs, name.replace(".png", ".jpg")))
    assert code == 2 and "not its PNG; give file_name '000000" in err and ".png'" in err, err


def test_a_transposed_map_is_named_as_height_and_width_swapped(coco_sample: Path, tmp_path: Path, capsys) -> None:
    code, err = score(coco_sample, tmp_path, capsys, lambda k, ids, segs, name: (ids.T.copy(), segs, name))
    assert code == 2 and "height and width swapped (the map transposed): write its transpose (ids.T)" in err, err


def test_category_ids_plus_one_in_one_image_only_are_named_with_that_image(coco_sample: Path, tmp_path: Path,
                                                                           capsys) -> None:
    def shifted(k: int, ids: np.ndarray, segs: list[dict], name: str):  # image 439180 holds category 125: 126 unknown
        return ids, [{**s, "category_id": s["category_id"] + 1} for s in segs] if k == 1 else segs, name

    code, err = score(coco_sample, tmp_path, capsys, shifted)
    assert code == 2 and "the predicted category ids of image 439180 are the ground truth's +1" in err, err
    assert "unlike the other 1 image: subtract 1 from those images' category ids" in err


def test_an_empty_listed_segment_alone_is_still_told_to_drop_it(coco_sample: Path, tmp_path: Path, capsys) -> None:
    """Stuff segments of the ground truth have their category's colour as their id: a prediction that is right but
    for one listed segment left out of its PNG must not be told it saved the colours."""
    def emptied(k: int, ids: np.ndarray, segs: list[dict], name: str):
        return (np.where(ids == segs[0]["id"], 0, ids) if k == 0 else ids), segs, name

    code, err = score(coco_sample, tmp_path, capsys, emptied)
    assert code == 2 and err.endswith("is absent from the PNG; drop empty segments from segments_info"), err


def test_the_diagnosis_of_unlisted_ids_passes_over_category_ids_that_are_not_integers() -> None:
    """An image not yet checked may list a segment without a category id (or a text): the diagnosis of another
    image's ids reads past it, and the refusal stays the one line."""
    from panbench.pq.diagnosis import unlisted_ids
    from panbench.pq.matching import CategoryTable

    cats = CategoryTable([1, 2], ["a", "b"], [True, False])
    found = unlisted_ids([([0, 11, 12], [10, 11], [1, None]), ([0, 21], [20], ["x"])], cats)
    assert found is not None and found.kind == "id_offset"
