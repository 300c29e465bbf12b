"""PQ under other implementations' rules equals each implementation on the same images: ``torchmetrics`` equals
torchmetrics 1.9's ``PanopticQuality`` fed (category, segment) per pixel (crowd segments as ordinary ones, VOID as its
void colour, things and stuffs from ``isthing``), ``vernier-corrected`` vernier 0.5.4's corrected evaluator, ``eomt``
EoMT's own evaluation recorded on these images (tests/fixtures/eomt_rules.json). The set
holds crowd segments (two of one category under one prediction), VOID on both sides, two segments of one stuff
category in an image, a JSON area larger than its pixels, a class only predicted, predictions more than half over
VOID, and an image without segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import GENERATED_CATS as CATS

from panbench.cli import main
from panbench.data.synth import random_image
from panbench.metrics import PanopticQuality

torch = pytest.importorskip("torch")
tm = pytest.importorskip("torchmetrics.detection")

THINGS = {c["id"] for c in CATS if c["isthing"]}
STUFFS = {c["id"] for c in CATS if not c["isthing"]}
VOID_CAT = -1  # a category neither thing nor stuff: torchmetrics maps it to its void colour


def _prediction(rng: np.random.Generator, gt_ids: np.ndarray, segs: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """The ground truth shifted, a segment dropped to VOID, one relabelled, crowd flags cleared; ids renumbered."""
    ids = np.roll(gt_ids, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1)).copy()
    kept = []
    for k, s in enumerate(segs):
        if k == 0 and len(segs) > 2:
            ids[ids == s["id"]] = 0
            continue
        cat = s["category_id"]
        if k == 1:  # another category of the same kind
            same = [c["id"] for c in CATS if c["isthing"] == (cat in THINGS) and c["id"] != cat]
            cat = int(rng.choice(same))
        kept.append({"id": s["id"], "category_id": cat, "iscrowd": 0})
    out = []
    for s in kept:
        area = int((ids == s["id"]).sum())
        if area:
            out.append({**s, "area": area})
    return ids, out


def _images() -> list[tuple[np.ndarray, list[dict], np.ndarray, list[dict]]]:
    rng = np.random.default_rng(7)
    imgs = []
    for k in range(10):
        g = random_image(rng, 48, 64, CATS, crowd_prob=0.5, void_fraction=0.05)
        segs = [dict(s) for s in g.segments_info]
        if k == 0:  # two crowd segments of one category
            things = [s for s in segs if s["category_id"] in THINGS]
            for s in things[:2]:
                s["iscrowd"], s["category_id"] = 1, things[0]["category_id"]
        p_ids, p_segs = _prediction(rng, g.ids, segs)
        if k == 1 and p_segs:  # a class the ground truth of this image lacks, over mostly VOID
            p_ids[:20, :20] = 999
            p_segs.append({"id": 999, "category_id": max(THINGS), "iscrowd": 0, "area": int((p_ids == 999).sum())})
            p_segs = [{**s, "area": int((p_ids == s["id"]).sum())} for s in p_segs if (p_ids == s["id"]).any()]
        if k == 2:  # a ground-truth VOID block that a prediction covers: more than half over VOID, no FP
            gt_ids = g.ids.copy()
            gt_ids[30:40, 40:60] = 0
            segs = [{**s, "area": int((gt_ids == s["id"]).sum())} for s in segs if (gt_ids == s["id"]).any()]
            p_ids[28:40, 40:60] = 777
            p_segs = [{**s, "area": int((p_ids == s["id"]).sum())} for s in p_segs if (p_ids == s["id"]).any()]
            p_segs.append({"id": 777, "category_id": min(THINGS), "iscrowd": 0, "area": int((p_ids == 777).sum())})
            imgs.append((gt_ids, segs, p_ids, p_segs))
            continue
        if k == 3:  # a ground-truth area in the JSON larger than its pixels
            segs[-1] = {**segs[-1], "area": segs[-1]["area"] + 10}
        imgs.append((g.ids, segs, p_ids, p_segs))
    imgs.append(_crowd_pair())
    empty = np.zeros((16, 16), np.uint32)
    imgs.append((empty, [], empty.copy(), []))
    return imgs


def _crowd_pair() -> tuple[np.ndarray, list[dict], np.ndarray, list[dict]]:
    """Two crowd segments of one category and a prediction of it lying on both, on neither more than half of it but
    on the two together: panopticapi (the last crowd) counts it a false positive, vernier (every crowd) does not."""
    cat, stuff = min(THINGS), min(STUFFS)
    gt = np.full((20, 40), 3, np.uint32)
    gt[:, :10], gt[:, 30:] = 1, 2
    segs = [{"id": 1, "category_id": cat, "iscrowd": 1, "area": 200}, {"id": 2, "category_id": cat, "iscrowd": 1,
            "area": 200}, {"id": 3, "category_id": stuff, "iscrowd": 0, "area": 400}]
    pred = gt.copy()
    pred[pred != 3] = 0
    pred[:, 4:10], pred[:, 30:36], pred[:2, 10:30] = 5, 5, 5  # 120 pixels on the crowds, 40 beside them
    p_segs = [{"id": 3, "category_id": stuff, "iscrowd": 0, "area": int((pred == 3).sum())},
              {"id": 5, "category_id": cat, "iscrowd": 0, "area": int((pred == 5).sum())}]
    return gt, segs, pred, p_segs


def _pixels(ids: np.ndarray, segs: list[dict]) -> torch.Tensor:
    """(H, W, 2): each pixel's category and segment (its index + 1); VOID and unlisted ids the void category."""
    cat = np.full(ids.shape, VOID_CAT, np.int64)
    inst = np.zeros(ids.shape, np.int64)
    for k, s in enumerate(segs, 1):
        m = ids == s["id"]
        cat[m], inst[m] = s["category_id"], k
    return torch.from_numpy(np.stack([cat, inst], -1))


def _reference(imgs: list) -> tuple[dict[int, tuple[int, int, int, float]], tuple[float, float, float]]:
    metric = tm.PanopticQuality(THINGS, STUFFS, allow_unknown_preds_category=True, return_sq_and_rq=True)
    for gt_ids, segs, p_ids, p_segs in imgs:
        metric.update(_pixels(p_ids, p_segs)[None], _pixels(gt_ids, segs)[None])
    pq, sq, rq = (float(v) for v in metric.compute())
    order = [*sorted(THINGS), *sorted(STUFFS)]  # torchmetrics' continuous ids: things sorted, then stuffs
    per = {cid: (int(metric.true_positives[k]), int(metric.false_positives[k]), int(metric.false_negatives[k]),
                 float(metric.iou_sum[k])) for k, cid in enumerate(order)}
    return per, (pq, sq, rq)


def test_the_torchmetrics_rule_equals_torchmetrics_per_class_and_in_the_mean() -> None:
    imgs = _images()
    ours = PanopticQuality(CATS, rules=["torchmetrics"])
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        ours.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    res = ours.compute()
    got = res.rules["torchmetrics"]
    per, (pq, sq, rq) = _reference(imgs)
    assert any(s["iscrowd"] for _, segs, _, _ in imgs for s in segs)
    for cid, (tp, fp, fn, _) in per.items():
        c = got["per_class"][str(cid)]
        assert (c["TP"], c["FP"], c["FN"]) == (tp, fp, fn), cid
    for name, want in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
        assert abs(got[name] - 100 * want) <= 1e-4, (name, got[name], 100 * want)  # 1e-6 on the 0-1 scale
    assert abs(got["PQ"] - res.metrics["PQ"]) > 0.1  # the rules differ on this set: the test can tell them apart


def test_score_rules_prints_each_rule_and_panopticapi_s_is_the_record_s(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    imgs = _images()[:4]
    cats = json.loads(json.dumps(CATS))
    gt, pred = {"categories": cats, "images": [], "annotations": []}, {"annotations": []}
    for d in ("gt", "pred"):
        (tmp_path / d).mkdir()
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        name = f"{i}.png"
        gt["images"].append({"id": i, "file_name": name, "height": gt_ids.shape[0], "width": gt_ids.shape[1]})
        gt["annotations"].append({"image_id": i, "file_name": name, "segments_info": segs})
        pred["annotations"].append({"image_id": i, "file_name": name, "segments_info": p_segs})
        for d, ids in (("gt", gt_ids), ("pred", p_ids)):
            rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)
            Image.fromarray(rgb).save(tmp_path / d / name)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    args = ["score", "--gt-json", str(tmp_path / "gt.json"), "--gt-dir", str(tmp_path / "gt"), "--pred-json",
            str(tmp_path / "pred.json"), "--pred-dir", str(tmp_path / "pred"), "--rules", "torchmetrics,panopticapi"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["rules"]) == ["panopticapi", "torchmetrics"] and out["rules"]["panopticapi"]["PQ"] == out["PQ"]
    metric = PanopticQuality(CATS, rules=["torchmetrics"])
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        metric.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    assert out["rules"]["torchmetrics"] == json.loads(json.dumps(metric.compute().rules["torchmetrics"]))
    assert [r["quirk"] for r in out["rules_attribution"]["torchmetrics"]][:2] == [
        "crowd segments as ordinary segments", "ground-truth areas from the pixels"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "PQ under each rule" in text and "  torchmetrics " in text
    assert "torchmetrics minus panopticapi, by quirk" in text and "  one segment per stuff category " in text
    with pytest.raises(SystemExit) as e:
        main([*args[:-1], "nosuch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    assert len(err) == 1 and "--rules: no rule 'nosuch'; name one or more of panopticapi, torchmetrics" in err[0], err


def test_the_vernier_corrected_rule_equals_vernier_and_differs_from_panopticapi_on_the_crowd_pair() -> None:
    vp = pytest.importorskip("vernier.panoptic")
    imgs = _images()
    gt = vp.Dataset.from_arrays({i: g.astype(np.uint32) for i, (g, _, _, _) in enumerate(imgs)},
                                json.dumps({str(i): s for i, (_, s, _, _) in enumerate(imgs)}).encode(),
                                json.dumps(CATS).encode())
    dt = vp.Predictions.from_arrays({i: p.astype(np.uint32) for i, (_, _, p, _) in enumerate(imgs)},
                                    json.dumps({str(i): s for i, (_, _, _, s) in enumerate(imgs)}).encode())
    ref = vp.Evaluator(parity_mode="corrected").evaluate(gt, dt)
    ours = PanopticQuality(CATS, rules=["vernier-corrected"])
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        ours.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    res = ours.compute()
    got = res.rules["vernier-corrected"]
    for cid, c in ref.per_class().items():
        mine = got["per_class"][str(cid)]
        assert (mine["TP"], mine["FP"], mine["FN"]) == (c.n_tp, c.n_fp, c.n_fn), cid
    for key, want in (("PQ", ref.pq), ("SQ", ref.sq), ("RQ", ref.rq), ("PQ_th", ref.pq_things),
                      ("PQ_st", ref.pq_stuff)):
        assert abs(got[key] - 100 * want) <= 1e-7, (key, got[key], 100 * want)  # 1e-9 on the 0-1 scale
    cat = str(min(THINGS))  # the crowd pair's prediction: no FP here, one under panopticapi's last crowd
    assert res.metrics["per_class"][cat]["FP"] == got["per_class"][cat]["FP"] + 1


def test_the_eomt_rule_equals_eomt_s_own_evaluation_recorded_on_the_same_images() -> None:
    """tests/fixtures/eomt_rules.json: EoMT's functions run as written on these images (scripts/
    record_eomt_fixture.py); the image without segments left out, as EoMT cannot evaluate it."""
    ref = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "eomt_rules.json").read_text())
    imgs = _images()
    ours = PanopticQuality(CATS, rules=["eomt"])
    for i in ref["images"]:
        gt_ids, segs, p_ids, p_segs = imgs[i]
        ours.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    got = ours.compute().rules["eomt"]
    logged, state = ref["logged"], ref["state"]
    things = [cid for cid in ref["class_ids"] if cid in THINGS]
    order = [*things, *(cid for cid in ref["class_ids"] if cid in STUFFS)]  # torchmetrics' continuous ids
    for k, cid in enumerate(order):
        c = got["per_class"][str(cid)]
        assert (c["TP"], c["FP"], c["FN"]) == (state["true_positives"][k], state["false_positives"][k],
                                               state["false_negatives"][k]), cid
    for ours_key, theirs in (("PQ", "pq_all"), ("SQ", "sq_all"), ("RQ", "rq_all"), ("PQ_th", "pq_things"),
                             ("SQ_th", "sq_things"), ("PQ_st", "pq_stuff"), ("RQ_st", "rq_stuff")):
        assert abs(got[ours_key] - 100 * logged[f"metrics/val_{theirs}"]) <= 1e-4, ours_key  # 1e-6 on 0-1
    for k, cid in enumerate(order):  # EoMT logs per class by torchmetrics' continuous id
        assert abs(got["per_class"][str(cid)]["PQ"] - 100 * logged[f"metrics/val_pq_class_{k}"]) <= 1e-4, cid
