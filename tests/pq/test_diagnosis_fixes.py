"""`panbench score` names the real mistake behind a broken prediction of the demo set, with the PQ its fix gives:
image ids paired with other images' files (on images of many sizes and of one), one group's class order (things or
stuff alone), mmdet's id encoding when the first image has two segments, indexes of the ids in ascending order and a
constant offset (refused, the fix checked against the masks); two swapped classes and a poor model get nothing; and
``pq_compute`` warns on every call as the metrics' ``compute()`` does."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panbench import DiagnosisWarning, pq_compute
from panbench.cli import main
from panbench.pq.png import read_ids


def id2rgb(ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def predicted(demo_root: Path, work: Path, crop: tuple[int, int] | None = None) -> Path:
    """The demo set's ground truth (cropped to ``crop``, height x width, top left: images of one size) and its
    prediction: the ground truth's masks with every third segment dropped to VOID, the labels right."""
    ann = demo_root / "annotations"
    gt = json.loads((ann / "panoptic_val2017.json").read_text())
    for side in ("gt", "pred"):
        (work / side).mkdir(parents=True)
    sizes = {}
    pred = []
    for a in gt["annotations"]:
        ids = read_ids(ann / "panoptic_val2017" / a["file_name"], "").astype(np.uint32)
        if crop is not None:
            ids = np.ascontiguousarray(ids[:crop[0], :crop[1]])
        u, c = np.unique(ids, return_counts=True)
        area = dict(zip(u.tolist(), c.tolist(), strict=True))
        a["segments_info"] = [{**s, "area": area[s["id"]]} for s in a["segments_info"] if s["id"] in area]
        sizes[a["image_id"]] = ids.shape
        Image.fromarray(id2rgb(ids)).save(work / "gt" / a["file_name"])
        keep = [s for k, s in enumerate(a["segments_info"]) if k % 3 != 2]
        ids[~np.isin(ids, [s["id"] for s in keep])] = 0
        Image.fromarray(id2rgb(ids)).save(work / "pred" / a["file_name"])
        pred.append({"image_id": a["image_id"], "file_name": a["file_name"],
                     "segments_info": [{"id": s["id"], "category_id": s["category_id"], "iscrowd": 0} for s in keep]})
    for im in gt["images"]:
        im["height"], im["width"] = sizes[im["id"]]
    (work / "gt.json").write_text(json.dumps(gt))
    (work / "pred.json").write_text(json.dumps({"annotations": pred, "categories": gt["categories"]}))
    return work


@pytest.fixture(scope="module")
def demo(demo_root, tmp_path_factory) -> Path:
    """The demo set (images of many sizes) and its prediction."""
    return predicted(demo_root, tmp_path_factory.mktemp("demo-pred"))


@pytest.fixture(scope="module")
def one_size(demo_root, tmp_path_factory) -> Path:
    """The demo set cropped to 96 x 128 (every image one size, as most of COCO's are 640 x 480)."""
    return predicted(demo_root, tmp_path_factory.mktemp("one-size"), (96, 128))


def run_score(work: Path, capsys, pred_json: Path | None = None, pred_dir: Path | None = None
              ) -> tuple[int, dict | None, str]:
    """``score --json --no-analysis``: exit code, the JSON printed (None when refused) and standard error."""
    code = main(["score", "--gt-json", str(work / "gt.json"), "--gt-dir", str(work / "gt"),
                 "--pred-json", str(pred_json or work / "pred.json"), "--pred-dir", str(pred_dir or work / "pred"),
                 "--no-analysis", "--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out) if code == 0 else None, out.err


def right_pq(work: Path, capsys) -> float:
    code, res, _ = run_score(work, capsys)
    assert code == 0 and res is not None and "diagnosis" not in res and 40 < res["PQ"] < 95
    return float(res["PQ"])


def rewritten(work: Path, out: Path, segment=None, annotation=None) -> Path:
    """A copy of the prediction JSON with ``segment(s)`` applied to each segment, ``annotation(k, a)`` to each
    annotation; the PNGs shared."""
    pred = json.loads((work / "pred.json").read_text())
    for k, a in enumerate(pred["annotations"]):
        if annotation is not None:
            annotation(k, a)
        for s in a["segments_info"]:
            if segment is not None:
                segment(s)
    out.mkdir(exist_ok=True)
    path = out / "pred.json"
    path.write_text(json.dumps(pred))
    return path


def relabelled(work: Path, out: Path, relabel) -> Path:
    return rewritten(work, out, segment=lambda s: s.update(category_id=relabel(s["category_id"])))


def categories(work: Path) -> list[dict]:
    return json.loads((work / "gt.json").read_text())["categories"]


def rotated(work: Path, isthing: int) -> dict[int, int]:
    """Each category of one kind written as the next of that kind; the other kind right."""
    ids = [c["id"] for c in categories(work) if c["isthing"] == isthing]
    return dict(zip(ids, ids[1:] + ids[:1], strict=True))


def shifted_ids(k: int, a: dict, ids: list) -> None:
    a["image_id"] = ids[(k + 1) % len(ids)]  # each prediction's image_id is the next image's, its file its own


@pytest.mark.parametrize("which", ["demo", "one_size"])
def test_image_ids_shifted_against_the_files_are_refused_naming_the_pairing_with_the_pq_once_fixed(
        which, request, tmp_path, capsys):
    """On images of many sizes the symptom was a size mismatch ("predict at the original image size"); on images of
    one size a PQ near zero without a word."""
    work = request.getfixturevalue(which)
    pq = right_pq(work, capsys)
    ids = [a["image_id"] for a in json.loads((work / "pred.json").read_text())["annotations"]]
    pred = rewritten(work, tmp_path, annotation=lambda k, a: shifted_ids(k, a, ids))
    code, _, err = run_score(work, capsys, pred)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    first = json.loads((work / "pred.json").read_text())["annotations"][0]
    assert f"the prediction for image {ids[1]} names file {first['file_name']}, which is image {ids[0]}" in err
    assert "original image size" not in err and f"gives PQ {pq:.2f} once fixed" in err


def test_file_names_shifted_against_the_image_ids_are_named_with_the_file_name_fix_and_its_pq(demo, tmp_path, capsys):
    """Each prediction's image_id and segments_info its own image's, its file_name the next image's: re-pairing the
    image ids by file name would put each image's segments_info on another image's PNG; the PNG of each image is on
    disk under its own name, so naming each prediction's file as the ground truth does is the fix."""
    pq = right_pq(demo, capsys)
    names = [a["file_name"] for a in json.loads((demo / "pred.json").read_text())["annotations"]]
    pred = rewritten(demo, tmp_path, annotation=lambda k, a: a.update(file_name=names[(k + 1) % len(names)]))
    code, _, err = run_score(demo, capsys, pred)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"names file {names[1]}, which is image" in err
    assert "write each prediction's file_name as the ground truth's file of its image_id" in err
    assert "write each prediction's image_id" not in err and f"gives PQ {pq:.2f} once fixed" in err


def test_a_prediction_given_another_predictions_image_id_is_named_by_its_file_not_as_a_duplicate(demo, tmp_path,
                                                                                                   capsys):
    """Prediction 5's image_id set to image 6's, its file its own: two predictions of image 6, none of image 5."""
    pq = right_pq(demo, capsys)
    anns = json.loads((demo / "pred.json").read_text())["annotations"]
    ids, name = [a["image_id"] for a in anns], anns[5]["file_name"]
    pred = rewritten(demo, tmp_path, annotation=lambda k, a: a.update(image_id=ids[6]) if k == 5 else None)
    code, _, err = run_score(demo, capsys, pred)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"the prediction for image {ids[6]} names file {name}, which is image {ids[5]}" in err
    assert "duplicate" not in err and "write each prediction's image_id as the ground-truth JSON pairs it" in err
    assert f"gives PQ {pq:.2f} once fixed" in err


def test_image_ids_and_file_names_shifted_both_ways_are_named_without_a_fix(demo, tmp_path, capsys):
    """Each prediction's segments_info its own image's, its image_id the next image's, its file the previous
    image's: neither re-pairing puts each segments_info on its own image's PNG, so no fix is given."""
    anns = json.loads((demo / "pred.json").read_text())["annotations"]
    ids, names = [a["image_id"] for a in anns], [a["file_name"] for a in anns]
    pred = rewritten(demo, tmp_path, annotation=lambda k, a: a.update(image_id=ids[(k + 1) % len(ids)],
                                                                      file_name=names[k - 1]))
    code, _, err = run_score(demo, capsys, pred)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"the prediction for image {ids[1]} names file {names[-1]}, which is image {ids[-1]}" in err
    assert "neither re-pairing" in err and "once fixed" not in err
    assert "write each prediction's image_id as" not in err and "write each prediction's file_name as" not in err


@pytest.mark.parametrize(("isthing", "group"), [(1, "thing"), (0, "stuff")])
def test_one_groups_class_order_is_found_with_the_pq_of_the_fix(demo, tmp_path, capsys, isthing, group):
    """The thing classes' order rotated (stuff right): hidden from the rule over all pixels, where the stuff
    classes hold most; the stuff classes' order rotated (things right) too."""
    pq = right_pq(demo, capsys)
    order = rotated(demo, isthing)
    code, res, _ = run_score(demo, capsys, relabelled(demo, tmp_path, lambda c: order.get(c, c)))
    assert code == 0 and res is not None
    assert res["PQ_th" if isthing else "PQ_st"] < 1
    [finding] = res["diagnosis"]
    assert finding["kind"] == "category_mapping" and "another class order" in finding["message"]
    assert finding["pq_if_fixed"] == pq


def test_the_thing_classes_order_alone_is_named_as_theirs(demo, tmp_path, capsys):
    order = rotated(demo, 1)
    code, res, _ = run_score(demo, capsys, relabelled(demo, tmp_path, lambda c: order.get(c, c)))
    assert res is not None and "the thing classes' predicted categories" in res["diagnosis"][0]["message"]
    assert "the stuff classes are right" in res["diagnosis"][0]["message"]


@pytest.mark.parametrize("isthing", [1, 0])
def test_two_swapped_classes_of_one_group_get_no_diagnosis(demo, tmp_path, capsys, isthing):
    a, b = [c["id"] for c in categories(demo) if c["isthing"] == isthing][:2]
    swap = {a: b, b: a}
    code, res, _ = run_score(demo, capsys, relabelled(demo, tmp_path, lambda c: swap.get(c, c)))
    assert code == 0 and res is not None and "diagnosis" not in res


@pytest.mark.parametrize("seed", range(4))
def test_a_poor_model_gets_no_diagnosis(demo, tmp_path, capsys, seed):
    """Good masks, labels drawn at random (each group's PQ near zero)."""
    ids = [c["id"] for c in categories(demo)]
    rng = np.random.default_rng(seed)
    code, res, _ = run_score(demo, capsys, relabelled(demo, tmp_path, lambda _: int(rng.choice(ids))))
    assert code == 0 and res is not None and res["PQ"] < 30 and "diagnosis" not in res


@pytest.mark.parametrize(("order", "fix"), [
    ("ascending", "write sorted(c['id'] for c in categories)[i - 1] for index i"),
    ("listed", "write categories[i - 1]['id'] for index i"),
])
def test_one_based_indexes_are_refused_with_the_order_the_masks_show_and_the_pq_once_fixed(
        demo, tmp_path, capsys, order, fix):
    """The demo's categories are not listed in ascending id order: the fix of indexes over the sorted ids is not
    categories[i - 1]['id'] (which gives a low PQ), and the masks tell the two apart."""
    pq = right_pq(demo, capsys)
    listed = [c["id"] for c in categories(demo)]
    ids = sorted(listed) if order == "ascending" else listed
    assert sorted(listed) != listed
    code, _, err = run_score(demo, capsys, relabelled(demo, tmp_path, lambda c: ids.index(c) + 1))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert fix in err and f"gives PQ {pq:.2f} once fixed" in err


def test_ids_offset_by_a_constant_are_refused_naming_the_offset_and_the_pq_once_fixed(demo, tmp_path, capsys):
    pq = right_pq(demo, capsys)
    code, _, err = run_score(demo, capsys, relabelled(demo, tmp_path, lambda c: c + 100))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "the ground truth's +100" in err and "subtract 100 from each category_id" in err
    assert f"gives PQ {pq:.2f} once fixed" in err


def test_mmdets_id_encoding_is_named_over_the_images_when_the_first_has_two_segments(demo, tmp_path, capsys):
    """mmdet's sem_seg written as the PNG (label + instance * 1000; stuff instance 0), segments_info as it was; the
    first image keeps two segments, whose two encoded ids alone fit no rule."""
    cats = categories(demo)
    label = {c["id"]: k for k, c in enumerate(cats)}
    thing = {c["id"] for c in cats if c["isthing"]}
    pred = json.loads((demo / "pred.json").read_text())
    (tmp_path / "pred").mkdir()
    for n, a in enumerate(pred["annotations"]):
        ids = read_ids(demo / "pred" / a["file_name"], "").astype(np.uint32)
        if n == 0:  # two segments, one thing and one stuff
            stuff = next(s for s in a["segments_info"] if s["category_id"] not in thing)
            obj = next(s for s in a["segments_info"] if s["category_id"] in thing)
            a["segments_info"] = [stuff, obj]
            ids[~np.isin(ids, [stuff["id"], obj["id"]])] = 0
        out = np.zeros_like(ids)
        for k, s in enumerate(a["segments_info"], 1):
            inst = k if s["category_id"] in thing else 0
            out[ids == s["id"]] = label[s["category_id"]] + inst * 1000
        Image.fromarray(id2rgb(out)).save(tmp_path / "pred" / a["file_name"])
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    code, _, err = run_score(demo, capsys, tmp_path / "pred.json", tmp_path / "pred")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "INSTANCE_OFFSET" in err and "over 60 images" in err and "once fixed" in err, err
    assert float(err.split("gives PQ ")[1].split()[0]) > 40


def test_pq_compute_warns_on_every_call_and_a_users_ignore_filter_silences_it(demo, tmp_path):
    """panopticapi's entry point keeps panopticapi's dict and says why its PQ is low, as compute() does; the warning
    comes again on a second call (Python's default filter shows a message once per place)."""
    order = rotated(demo, 1)
    pred = relabelled(demo, tmp_path, lambda c: order.get(c, c))
    calls = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):
            calls.append(pq_compute(demo / "gt.json", pred, demo / "gt", demo / "pred"))
    found = [w for w in caught if issubclass(w.category, DiagnosisWarning)]
    assert len(found) == 2 and "category_mapping" in str(found[0].message) and "once fixed" in str(found[0].message)
    assert found[0].filename == __file__
    assert calls[0]["Things"]["pq"] < 0.01 and set(calls[0]) == {"All", "Things", "Stuff", "per_class"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DiagnosisWarning)
        pq_compute(demo / "gt.json", pred, demo / "gt", demo / "pred")
    assert not caught


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_pq_compute_called_from_python_c_or_stdin_returns_its_numbers_with_the_warning(demo, tmp_path, how):
    """Code that is not a file (``python -c``, a script read from stdin): the warning names ``<string>`` or
    ``<stdin>``, and the numbers come back (the warning machinery cannot read that code's lines)."""
    import subprocess
    import sys

    order = rotated(demo, 1)
    pred = relabelled(demo, tmp_path, lambda c: order.get(c, c))
    code = (f"from panbench import pq_compute; r = pq_compute({str(demo / 'gt.json')!r}, {str(pred)!r}, "
            f"{str(demo / 'gt')!r}, {str(demo / 'pred')!r}); print('PQ', r['All']['pq'])")
    args, stdin = ([sys.executable, "-c", code], None) if how == "-c" else ([sys.executable, "-"], code)
    r = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("PQ "), r.stderr[-2000:]
    assert "DiagnosisWarning" in r.stderr and "category_mapping" in r.stderr, r.stderr[-2000:]


def test_image_ids_shifted_past_the_last_image_are_named_before_the_missing_prediction(demo, tmp_path, capsys):
    """Each prediction's image_id the next image's, the last one's an id the ground truth lacks: the first image
    then has no prediction, which is the symptom, not the mistake."""
    pq = right_pq(demo, capsys)
    ids = [a["image_id"] for a in json.loads((demo / "pred.json").read_text())["annotations"]]
    nxt = ids[1:] + [max(ids) + 1]
    code, _, err = run_score(demo, capsys, rewritten(demo, tmp_path, annotation=lambda k, a: a.update(image_id=nxt[k])))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"the prediction for image {ids[1]} names file" in err and f"gives PQ {pq:.2f} once fixed" in err


@pytest.mark.parametrize(("rule", "fix"), [
    (lambda c, ids: c + 100, "subtract 100 from each category_id"),
    (lambda c, ids: sorted(ids).index(c) + 1, "write sorted(c['id'] for c in categories)[i - 1] for index i"),
])
def test_a_poorer_models_offset_or_indexes_are_named_by_the_rule_its_masks_follow_most(demo, tmp_path, capsys,
                                                                                        rule, fix):
    """Two labels in five drawn at random: the masks follow no mapping closely, the rule still explains most."""
    ids = [c["id"] for c in categories(demo)]
    rng = np.random.default_rng(5)
    poor = relabelled(demo, tmp_path / "poor", lambda c: int(rng.choice(ids)) if rng.random() < 0.4 else c)
    code, res, _ = run_score(demo, capsys, poor)
    assert code == 0 and res is not None
    code, _, err = run_score(demo, capsys, relabelled(poor.parent, tmp_path / "broken", lambda c: rule(c, ids)))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert fix in err and f"gives PQ {res['PQ']:.2f} once fixed" in err
