"""PQ under other implementations' rules equals each implementation on the same images: ``torchmetrics`` equals
torchmetrics 1.9's ``PanopticQuality`` fed (category, segment) per pixel (crowd segments as ordinary ones, VOID as its
void colour, things and stuffs from ``isthing``), ``vernier-corrected`` vernier 0.5.4's corrected evaluator, ``eomt``
EoMT's own evaluation recorded on these images (tests/fixtures/eomt_rules.json). The set
holds crowd segments (two of one category under one prediction), VOID on both sides, two segments of one stuff
category in an image, a JSON area larger than its pixels, a class only predicted, predictions more than half over
VOID, and an image without segments."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rule_references import vernier_evaluation
from rule_sets import CATS, THINGS, VOID_CAT, image_set_fixture, images  # noqa: F401 - the fixture

from panbench import pq_compute
from panbench.cli import main
from panbench.errors import InputError
from panbench.metrics import PanopticQuality

torch = pytest.importorskip("torch")
tm = pytest.importorskip("torchmetrics.detection")

def _update(rule: str, imgs: list, cats: list[dict], only: list[int] | None = None) -> Any:
    ours = PanopticQuality(cats, rules=[rule])
    for i in range(len(imgs)) if only is None else only:
        gt_ids, segs, p_ids, p_segs = imgs[i]
        ours.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    return ours.compute()


def _pixels(ids: np.ndarray, segs: list[dict]) -> torch.Tensor:
    """(H, W, 2): each pixel's category and segment (its index + 1); VOID and unlisted ids the void category."""
    cat = np.full(ids.shape, VOID_CAT, np.int64)
    inst = np.zeros(ids.shape, np.int64)
    for k, s in enumerate(segs, 1):
        m = ids == s["id"]
        cat[m], inst[m] = s["category_id"], k
    return torch.from_numpy(np.stack([cat, inst], -1))


def _reference(imgs: list, cats: list[dict]) -> tuple[dict[int, tuple[int, int, int, float]],
                                                     tuple[float, float, float]]:
    things, stuffs = {c["id"] for c in cats if c["isthing"]}, {c["id"] for c in cats if not c["isthing"]}
    metric = tm.PanopticQuality(things, stuffs, allow_unknown_preds_category=True, return_sq_and_rq=True)
    for gt_ids, segs, p_ids, p_segs in imgs:
        metric.update(_pixels(p_ids, p_segs)[None], _pixels(gt_ids, segs)[None])
    pq, sq, rq = (float(v) for v in metric.compute())
    order = [*sorted(things), *sorted(stuffs)]  # torchmetrics' continuous ids: things sorted, then stuffs
    per = {cid: (int(metric.true_positives[k]), int(metric.false_positives[k]), int(metric.false_negatives[k]),
                 float(metric.iou_sum[k])) for k, cid in enumerate(order)}
    return per, (pq, sq, rq)


def test_the_torchmetrics_rule_equals_torchmetrics_per_class_and_in_the_mean(image_set) -> None:
    _, imgs, cats = image_set
    res = _update("torchmetrics", imgs, cats)
    got = res.rules["torchmetrics"]
    per, (pq, sq, rq) = _reference(imgs, cats)
    assert any(s["iscrowd"] for _, segs, _, _ in imgs for s in segs)
    for cid, (tp, fp, fn, _) in per.items():
        c = got["per_class"][str(cid)]
        assert (c["TP"], c["FP"], c["FN"]) == (tp, fp, fn), cid
    for name, want in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
        assert abs(got[name] - 100 * want) <= 1e-4, (name, got[name], 100 * want)  # 1e-6 on the 0-1 scale
    assert abs(got["PQ"] - res.metrics["PQ"]) > 0.1  # the rules differ on this set: the test can tell them apart


def write_files(tmp_path: Path, imgs: list, cats: list[dict]) -> list[str]:
    """The images as COCO panoptic files under ``tmp_path``: ``score``'s four file arguments."""
    from PIL import Image

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
    return ["--gt-json", str(tmp_path / "gt.json"), "--gt-dir", str(tmp_path / "gt"), "--pred-json",
            str(tmp_path / "pred.json"), "--pred-dir", str(tmp_path / "pred")]


def test_score_rules_prints_each_rule_and_panopticapi_s_is_the_record_s(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    imgs = images()[:4]
    files = write_files(tmp_path, imgs, json.loads(json.dumps(CATS)))
    args = ["score", *files, "--rules", "torchmetrics,panopticapi"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["rules"]) == ["panopticapi", "torchmetrics"] and out["rules"]["panopticapi"]["PQ"] == out["PQ"]
    assert main(["score", *files, "--rules", "torchmetrics", "--rules", "eomt,panopticapi", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["rules"]) == ["panopticapi", "torchmetrics", "eomt"]  # added
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


EVERY_RULE = "panopticapi,torchmetrics,vernier-corrected,eomt"


def test_score_counts_the_rules_from_the_tables_of_its_batch_path_as_every_other_path_does(
        image_set, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``score --rules`` (every rule) on the C batch path (threads, the rules' sums from the tables it counts),
    on the per-image path (``PANBENCH_PER_IMAGE=1``; and beside an evaluator that needs the id maps, whose images
    the Rules evaluator counts again) and ``PanopticQuality(rules=...)``: the same rules and attribution, exactly."""
    from panbench.pq import quirks

    name, imgs, cats = image_set
    files = write_files(tmp_path, imgs, cats)
    everything = tmp_path / "everything.py"  # the example evaluator declaring nothing: the per-image path
    example = Path(__file__).parents[2] / "examples" / "evaluators" / "image_count.py"
    everything.write_text(example.read_text().replace('    needs = {"segments"}', ""))
    runs = []
    seen: list[int] = []
    real = quirks.RuleStates.sums_of  # the tables counted where PQ's are (RuleStates.merge adds sums, not tables)
    monkeypatch.setattr(quirks.RuleStates, "sums_of", lambda self, tables: (seen.append(len(tables)),
                                                                           real(self, tables))[1])
    for extra, env in (([], None), (["--procs", "1"], None), ([], "1"),
                       (["--evaluator", f"{everything}:ImageCount"], None)):
        monkeypatch.delenv("PANBENCH_PER_IMAGE", raising=False)
        if env:
            monkeypatch.setenv("PANBENCH_PER_IMAGE", env)
        assert main(["score", *files, "--rules", EVERY_RULE, "--procs", "2", *extra, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        runs.append({k: out[k] for k in ("rules", "rules_attribution")})
        if not runs[1:]:
            assert seen, "the batch path handed no table to the rules"
    metric = PanopticQuality(cats, rules=EVERY_RULE.split(","))
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        metric.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    res = metric.compute()
    runs.append(json.loads(json.dumps({"rules": res.rules, "rules_attribution": res.rules_attribution})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a diagnosis of the set's mistakes
        api = pq_compute(files[1], files[5], files[3], files[7], rules=EVERY_RULE.split(","))
    runs.append(json.loads(json.dumps({"rules": api["rules"], "rules_attribution": api["rules_attribution"]})))
    assert all(r == runs[0] for r in runs), name
    with pytest.raises(InputError, match="rules: no rule 'nosuch'; name one or more of panopticapi"):
        pq_compute(files[1], files[5], files[3], files[7], rules="nosuch")


def test_the_vernier_corrected_rule_equals_vernier_and_differs_from_panopticapi_on_the_crowd_pair(image_set) -> None:
    name, imgs, cats = image_set
    ref = vernier_evaluation(imgs, cats)
    res = _update("vernier-corrected", imgs, cats)
    got = res.rules["vernier-corrected"]
    for cid, c in ref.per_class().items():
        mine = got["per_class"][str(cid)]
        assert (mine["TP"], mine["FP"], mine["FN"]) == (c.n_tp, c.n_fp, c.n_fn), cid
    for key, want in (("PQ", ref.pq), ("SQ", ref.sq), ("RQ", ref.rq), ("PQ_th", ref.pq_things),
                      ("PQ_st", ref.pq_stuff)):
        assert abs(got[key] - 100 * want) <= 1e-7, (key, got[key], 100 * want)  # 1e-9 on the 0-1 scale
    if name == "synthetic":  # the crowd pair's prediction: no FP here, one under panopticapi's last crowd
        cat = str(min(THINGS))
        assert res.metrics["per_class"][cat]["FP"] == got["per_class"][cat]["FP"] + 1


def test_the_eomt_rule_equals_eomt_s_own_evaluation_recorded_on_the_same_images(image_set) -> None:
    """tests/fixtures/eomt_rules.json: EoMT's functions run as written on these images (scripts/
    record_eomt_fixture.py); an image without segments left out, as EoMT cannot evaluate one."""
    name, imgs, cats = image_set
    ref = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "eomt_rules.json").read_text())[name]
    got = _update("eomt", imgs, cats, ref["images"]).rules["eomt"]
    logged, state = ref["logged"], ref["state"]
    thing_ids = {c["id"] for c in cats if c["isthing"]}
    things = [cid for cid in ref["class_ids"] if cid in thing_ids]
    order = [*things, *(cid for cid in ref["class_ids"] if cid not in thing_ids)]  # torchmetrics' continuous ids
    for k, cid in enumerate(order):
        c = got["per_class"][str(cid)]
        assert (c["TP"], c["FP"], c["FN"]) == (state["true_positives"][k], state["false_positives"][k],
                                               state["false_negatives"][k]), cid
    for ours_key, theirs in (("PQ", "pq_all"), ("SQ", "sq_all"), ("RQ", "rq_all"), ("PQ_th", "pq_things"),
                             ("SQ_th", "sq_things"), ("PQ_st", "pq_stuff"), ("RQ_st", "rq_stuff")):
        assert abs(got[ours_key] - 100 * logged[f"metrics/val_{theirs}"]) <= 1e-4, ours_key  # 1e-6 on 0-1
    for k, cid in enumerate(order):  # EoMT logs per class by torchmetrics' continuous id
        assert abs(got["per_class"][str(cid)]["PQ"] - 100 * logged[f"metrics/val_pq_class_{k}"]) <= 1e-4, cid


@pytest.mark.parametrize("rules", [5, ["eomt", 3], {"eomt": 1}])
def test_the_api_refuses_rules_that_are_not_names_in_one_line(rules: Any) -> None:
    with pytest.raises(InputError, match=r"is not rule names; give one name or a list of them, e.g. rules=\['torchme"):
        PanopticQuality(CATS, rules=rules)


def test_a_driver_that_scores_in_bulk_without_counting_the_rules_is_refused_not_read_as_zero(image_set) -> None:
    """Images scored in bulk bring the rules' sums in the accumulator the scoring counted them into
    (``Scoring(rules=Evaluators.rules)``): images scored without them are an internal error, not every rule's PQ 0."""
    from panbench.errors import PanbenchError
    from panbench.evaluators import Evaluators
    from panbench.pq.accumulator import PanopticAccumulator
    from panbench.pq.matching import CategoryTable

    _, imgs, cats = image_set
    table = CategoryTable.from_coco(cats)
    evaluators = Evaluators.for_run(table, analyses=False, semantic=False, rules=("torchmetrics",))
    assert evaluators.takes_scored and evaluators.rules == ("torchmetrics",)
    with pytest.raises(PanbenchError, match=r"internal: the sums of the rules \(\) of 0 images came for "
                                            r"\('torchmetrics',\) of 2 scored in bulk"):
        evaluators.add_scored(PanopticAccumulator(table), [0, 1])
    counted = PanopticAccumulator(table, rules=evaluators.rules)
    with pytest.raises(PanbenchError, match="of 0 images came for"):  # counted for none of the images
        evaluators.add_scored(counted, [0, 1])
