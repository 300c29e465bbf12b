"""`panbench score` says why a PQ is low: each format mistake applied to predictions of COCO's own PNGs (the shared
sample, replicated by scripts/pq_bench_data.py) is found, with the PQ of the corrected prediction; a correct
prediction, random labels and two swapped classes get no diagnosis; refused inputs name the mistake."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panbench.cli import main
from panbench.package import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import pq_bench_data  # noqa: E402
from test_diagnosis_fixes import categories, relabelled  # noqa: E402

pytestmark = pytest.mark.skipif(not (pq_bench_data.SAMPLE / "panoptic_val2017.json").is_file(),
                                reason=f"the COCO panoptic sample is not at {pq_bench_data.SAMPLE}")


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """12 images of COCO's PNGs and predictions whose masks err (shifted, eroded, split, dropped, hallucinated)
    and whose labels are right: the prediction every mistake below is applied to."""
    work = tmp_path_factory.mktemp("real")
    kept = dict(pq_bench_data.PERTURBATIONS)
    pq_bench_data.PERTURBATIONS["relabel"] = 0.0
    try:
        pq_bench_data.make_real_set(work, 12, seed=3)
    finally:
        pq_bench_data.PERTURBATIONS.update(kept)
    return work


def ground_truth_as_prediction(gt_json: Path, gt_dir: Path, work: Path, n: int = 12) -> Path:
    """The first ``n`` images of a ground truth, and the ground truth as their prediction with every third segment
    (and every crowd region) dropped to VOID: masks that miss, no segment of a category the image lacks, so a class
    order's every category can be placed."""
    from panbench.data.synth import id2rgb
    from panbench.pq.png import read_ids

    gt = json.loads(gt_json.read_text())
    gt["annotations"] = gt["annotations"][:n]
    kept = {a["image_id"] for a in gt["annotations"]}
    gt["images"] = [im for im in gt["images"] if im["id"] in kept]
    for side in ("gt", "pred"):
        (work / side).mkdir()
    pred = []
    for a in gt["annotations"]:
        shutil.copy(gt_dir / a["file_name"], work / "gt" / a["file_name"])
        ids = read_ids(gt_dir / a["file_name"], "", "pred").astype(np.uint32)
        keep = [s for k, s in enumerate(a["segments_info"]) if k % 3 != 2 and not s.get("iscrowd", 0)]
        ids[~np.isin(ids, [s["id"] for s in keep])] = 0
        Image.fromarray(id2rgb(ids)).save(work / "pred" / a["file_name"])
        pred.append({**a, "segments_info": [{**s, "iscrowd": 0} for s in keep]})
    (work / "gt.json").write_text(json.dumps(gt))
    (work / "pred.json").write_text(json.dumps({"annotations": pred, "categories": gt["categories"]}))
    return work


@pytest.fixture(scope="module", params=["coco", "demo"])
def dropped(request, real: Path, tmp_path_factory) -> Path:
    """COCO's own PNGs (the replicated sample) or the demo set, predicted by :func:`ground_truth_as_prediction`."""
    work = tmp_path_factory.mktemp(f"dropped-{request.param}")
    if request.param == "coco":
        return ground_truth_as_prediction(real / "gt.json", real / "gt", work)
    demo = REPO_ROOT / "data" / "demo" / "annotations"
    return ground_truth_as_prediction(demo / "panoptic_val2017.json", demo / "panoptic_val2017", work)


def run_score(real: Path, capsys, pred_json: Path | None = None, pred_dir: Path | None = None,
              *extra: str) -> tuple[int, str, str]:
    code = main(["score", "--gt-json", str(real / "gt.json"), "--gt-dir", str(real / "gt"),
                 "--pred-json", str(pred_json or real / "pred.json"), "--pred-dir", str(pred_dir or real / "pred"),
                 "--no-analysis", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def class_order(real: Path) -> dict[int, int]:
    """Another class order that keeps the things/stuff split: each category written as the next of its kind."""
    cats = categories(real)
    out = {}
    for kind in (0, 1):
        ids = [c["id"] for c in cats if c.get("isthing", 0) == kind]
        out.update(zip(ids, ids[1:] + ids[:1], strict=True))
    return out


def test_another_class_order_is_found_with_the_pq_of_the_corrected_prediction(dropped, tmp_path, capsys):
    code, out, _ = run_score(dropped, capsys, None, None, "--json")
    right = json.loads(out)
    assert code == 0 and "diagnosis" not in right and 20 < right["PQ"] < 90
    order = class_order(dropped)
    code, out, _ = run_score(dropped, capsys, relabelled(dropped, tmp_path, order.__getitem__), None, "--json")
    wrong = json.loads(out)
    assert code == 0 and wrong["PQ"] < 5
    [finding] = wrong["diagnosis"]
    assert finding["kind"] == "category_mapping" and "another class order" in finding["message"]
    assert finding["pq_if_fixed"] == right["PQ"]


def test_a_class_order_that_leaves_categories_unplaced_has_no_pq_if_fixed(real, tmp_path, capsys):
    """Predictions with hallucinated segments: a category seen only there covers no ground truth of its own, so
    the order cannot be read whole from the masks and no fix is applied."""
    code, out, _ = run_score(real, capsys, relabelled(real, tmp_path, class_order(real).__getitem__), None, "--json")
    [finding] = json.loads(out)["diagnosis"]
    assert finding["kind"] == "category_mapping" and finding["pq_if_fixed"] is None
    assert "cover no ground truth of their own" in finding["message"]


def test_the_terminal_prints_the_diagnosis_under_the_table_and_no_diagnosis_turns_it_off(dropped, tmp_path,
                                                                                       capsys):
    real = dropped
    pred = relabelled(real, tmp_path, class_order(real).__getitem__)
    code, out, _ = run_score(real, capsys, pred)
    assert code == 0
    table_end = out.index("Stuff")
    assert out.index("category_mapping") > table_end and "PQ with the fix" in out
    code, quiet, _ = run_score(real, capsys, pred, None, "--no-diagnosis")
    assert code == 0 and "category_mapping" not in quiet
    code, out, _ = run_score(real, capsys, pred, None, "--no-diagnosis", "--json")
    assert "diagnosis" not in json.loads(out)


def test_a_record_of_score_name_carries_the_diagnosis(dropped, tmp_path, capsys):
    real = dropped
    pred = relabelled(real, tmp_path, class_order(real).__getitem__)
    code, _, err = run_score(real, capsys, pred, None, "--name", "wrong-order", "--results", str(tmp_path / "r"))
    assert code == 0
    record = json.loads(Path(err.split("record: ")[1].strip()).read_text())
    assert [d["kind"] for d in record["diagnosis"]] == ["category_mapping"]
    assert record["diagnosis"][0]["pq_if_fixed"] > record["metrics"]["PQ"]


def test_labels_drawn_at_random_get_no_diagnosis(real, tmp_path, capsys):
    """A poor model in the right format: good masks, every label drawn at random."""
    ids = [c["id"] for c in categories(real)]
    rng = np.random.default_rng(0)
    code, out, _ = run_score(real, capsys, relabelled(real, tmp_path, lambda _: int(rng.choice(ids))), None, "--json")
    assert code == 0 and "diagnosis" not in json.loads(out)


def test_two_consistently_swapped_classes_get_no_diagnosis(real, tmp_path, capsys):
    pred = json.loads((real / "pred.json").read_text())
    counts: dict[int, int] = {}
    for a in pred["annotations"]:
        for s in a["segments_info"]:
            counts[s["category_id"]] = counts.get(s["category_id"], 0) + s["area"]
    a, b = sorted(counts, key=counts.get)[-2:]  # the two categories with most pixels
    swap = {a: b, b: a}
    code, out, _ = run_score(real, capsys, relabelled(real, tmp_path, lambda c: swap.get(c, c)), None, "--json")
    assert code == 0 and "diagnosis" not in json.loads(out)


@pytest.mark.parametrize(("base", "fix"), [(0, "categories[i]['id']"), (1, "categories[i - 1]['id']")])
def test_indexes_of_the_category_list_are_refused_naming_the_fix(dropped, tmp_path, capsys, base, fix):
    real = dropped
    index = {c["id"]: k + base for k, c in enumerate(categories(real))}
    code, _, err = run_score(real, capsys, relabelled(real, tmp_path, index.__getitem__))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "indexes of the ground truth's category list" in err and fix in err


def test_pngs_written_in_bgr_order_are_refused_naming_the_channel_order(dropped, tmp_path, capsys):
    real = dropped
    bgr = tmp_path / "pred"
    shutil.copytree(real / "pred", bgr)
    for png in bgr.glob("*.png"):
        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"))
        Image.fromarray(np.ascontiguousarray(rgb[:, :, ::-1])).save(png)
    code, _, err = run_score(real, capsys, None, bgr)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "red and blue channels are swapped" in err and "absent from segments_info" in err


def rewritten_pngs(real: Path, out: Path, rewrite) -> Path:
    """A copy of the prediction's PNGs, each id map passed through ``rewrite(ids, segments_info)``."""
    from panbench.data.synth import id2rgb
    from panbench.pq.png import read_ids

    out.mkdir()
    for a in json.loads((real / "pred.json").read_text())["annotations"]:
        ids = read_ids(real / "pred" / a["file_name"], "", "pred").astype(np.uint32)
        Image.fromarray(id2rgb(rewrite(ids, a["segments_info"]))).save(out / a["file_name"])
    return out


def test_ids_encoded_as_category_and_instance_are_refused_naming_the_encoding(dropped, tmp_path, capsys):
    """detectron2's panoptic_seg written as the PNG: category_id * 1000 + instance, segments_info as it was."""
    def encode(ids, segs):
        out = np.zeros_like(ids)
        for k, s in enumerate(segs):
            out[ids == s["id"]] = s["category_id"] * 1000 + k
        return out

    code, _, err = run_score(dropped, capsys, None, rewritten_pngs(dropped, tmp_path / "enc", encode))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "category_id * 1000 + instance" in err and "absent from segments_info" in err


def test_a_prediction_at_the_networks_input_size_is_refused_naming_the_resize(dropped, tmp_path, capsys):
    scaled = rewritten_pngs(dropped, tmp_path / "x2", lambda ids, _: ids.repeat(2, axis=0).repeat(2, axis=1))
    code, _, err = run_score(dropped, capsys, None, scaled)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "scaled by 2" in err and "resize it back" in err and "rescale=True" in err
