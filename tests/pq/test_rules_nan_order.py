"""PQ under other implementations' rules where their references say "undefined" or average over absent classes, and
whatever order the JSON lists its categories in (docs/pq-rules.md): each rule is NaN exactly where its reference is
(torchmetrics 1.9 and vernier 0.5.4 from .venv, EoMT's own functions from its source in ../shared/vendor), NaN
survives ``score --json`` and the record, ``eomt`` says how many classes its mean counts as 0, and every rule's
numbers, ``eomt``'s against EoMT's own, do not change when the categories are shuffled."""

from __future__ import annotations

import functools
import json
import math
import random
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rule_references import vernier_evaluation
from rule_sets import CATS, THINGS, VOID_CAT, crowd_pair, images

from panbench.cli import main
from panbench.metrics import PanopticQuality

torch = pytest.importorskip("torch")
tm = pytest.importorskip("torchmetrics.detection")
# EoMT's functions count into torchmetrics' metric without its update(): its compute() warns of that
pytestmark = pytest.mark.filterwarnings("ignore:The ``compute`` method of metric PanopticQuality:UserWarning")

ROOT = Path(__file__).resolve().parents[2]
EOMT_TARBALL = ROOT.parent / "shared" / "vendor" / "eomt-7bd19dd.tar.gz"
GROUPS = {"": "all", "_th": "things", "_st": "stuff"}
KEYS = [f"{m}{g}" for g in GROUPS for m in ("PQ", "SQ", "RQ")]

Image = tuple[np.ndarray, list[dict], np.ndarray, list[dict]]


def _ours(rule: str, imgs: list[Image], cats: list[dict]) -> dict[str, Any]:
    m = PanopticQuality(cats, rules=[rule])
    for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
        m.update(p_ids, p_segs, gt_ids, segs, image_id=i)
    return m.compute().rules[rule]


# ---- the references, each its own code ----

def _pixels(ids: np.ndarray, segs: list[dict]) -> Any:
    """(H, W, 2): each pixel's category and segment (its index + 1); VOID and unlisted ids the void category."""
    cat, inst = np.full(ids.shape, VOID_CAT, np.int64), np.zeros(ids.shape, np.int64)
    for k, s in enumerate(segs, 1):
        m = ids == s["id"]
        cat[m], inst[m] = s["category_id"], k
    return torch.from_numpy(np.stack([cat, inst], -1))


def torchmetrics_numbers(imgs: list[Image], cats: list[dict]) -> dict[str, float]:
    """torchmetrics 1.9's ``PanopticQuality``: PQ, SQ and RQ from ``compute()``, a group's from
    ``_panoptic_quality_compute`` on its classes' counts (the mean it takes, torchmetrics reporting no group)."""
    from torchmetrics.functional.detection._panoptic_quality_common import _panoptic_quality_compute

    things, stuffs = {c["id"] for c in cats if c["isthing"]}, {c["id"] for c in cats if not c["isthing"]}
    metric = tm.PanopticQuality(things, stuffs, allow_unknown_preds_category=True, return_sq_and_rq=True)
    for gt_ids, segs, p_ids, p_segs in imgs:
        metric.update(_pixels(p_ids, p_segs)[None], _pixels(gt_ids, segs)[None])
    out = dict(zip(("PQ", "SQ", "RQ"), (float(v) for v in metric.compute())))
    n_things = len(things)  # its continuous ids: the things first, then the stuffs
    for suffix, part in (("_th", slice(0, n_things)), ("_st", slice(n_things, None))):
        got = _panoptic_quality_compute(metric.iou_sum[part], metric.true_positives[part],
                                        metric.false_positives[part], metric.false_negatives[part])
        out.update({k + suffix: float(v) for k, v in zip(("PQ", "SQ", "RQ"), got[3:])})
    return out


def vernier_numbers(imgs: list[Image], cats: list[dict]) -> dict[str, float]:
    ref = vernier_evaluation(imgs, cats)
    return {f"{m}{g}": float(getattr(ref, m.lower() + {"": "", "_th": "_things", "_st": "_stuff"}[g]))
            for g in GROUPS for m in ("PQ", "SQ", "RQ")}


@functools.cache
def _eomt(folder: str) -> tuple[type, Any]:
    """EoMT's evaluation class, from its source (the vendored tarball's ``training/lightning_module.py``), and the
    recorder that runs it as EoMT's data builds its input (scripts/record_eomt_fixture.py)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import record_eomt_fixture as rec
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    name = "eomt-7bd19dd/training/lightning_module.py"
    with tarfile.open(EOMT_TARBALL) as tar:
        tar.extract(name, folder, filter="data")
    return rec.eomt_module(Path(folder) / name), rec.record


@pytest.fixture(scope="module")
def eomt_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``eomt_run(imgs, cats)``: EoMT's own functions on the images (its ``record``: the per-class counts and what it
    logs); skipped where the vendored source is not found."""
    if not EOMT_TARBALL.is_file():
        pytest.skip(f"{EOMT_TARBALL} not found (../shared/vendor)")
    cls, record = _eomt(str(tmp_path_factory.mktemp("eomt")))
    return lambda imgs, cats: record(cls, imgs, cats)


def eomt_numbers(got: dict[str, Any]) -> dict[str, float]:
    logged = got["logged"]
    return {f"{m}{g}": logged[f"metrics/val_{m.lower()}_{name}"] for g, name in GROUPS.items()
            for m in ("PQ", "SQ", "RQ")}


# ---- the empty cases ----

def _all_void_prediction() -> tuple[list[Image], list[dict]]:
    """Images of the synthetic set, each predicted VOID everywhere: torchmetrics drops every target as under VOID."""
    return [(g, s, np.zeros_like(p), []) for g, s, p, _ in images()[:3]], CATS


def _void_ground_truth() -> tuple[list[Image], list[dict]]:
    """A ground truth all VOID and predictions of a thing and a stuff over it (EoMT cannot evaluate such an image)."""
    gt, pred = np.zeros((12, 16), np.uint32), np.zeros((12, 16), np.uint32)
    pred[:, :8], pred[:, 8:] = 3, 4
    segs = [{"id": 3, "category_id": min(THINGS), "iscrowd": 0, "area": 96},
            {"id": 4, "category_id": CATS[-1]["id"], "iscrowd": 0, "area": 96}]
    return [(gt, [], pred, segs)], CATS


def _one_kind(isthing: int) -> tuple[list[Image], list[dict]]:
    """Categories of one kind only (the other group has no class at all), one segment predicted exactly."""
    cats = [{"id": 4, "name": "a", "isthing": isthing}, {"id": 2, "name": "b", "isthing": isthing}]
    ids = np.zeros((8, 10), np.uint32)
    ids[:, :6] = 7
    segs = [{"id": 7, "category_id": 2, "iscrowd": 0, "area": 48}]
    return [(ids, segs, ids.copy(), segs)], cats


CASES = {"all VOID predicted": _all_void_prediction, "ground truth all VOID": _void_ground_truth,
         "stuff categories only": lambda: _one_kind(0), "thing categories only": lambda: _one_kind(1)}
#: where each rule's reference gives NaN in each case (the rest: numbers)
NAN = {("torchmetrics", "all VOID predicted"): KEYS, ("torchmetrics", "ground truth all VOID"): KEYS,
       ("torchmetrics", "stuff categories only"): ["PQ_th", "SQ_th", "RQ_th"],
       ("torchmetrics", "thing categories only"): ["PQ_st", "SQ_st", "RQ_st"],
       ("eomt", "stuff categories only"): ["PQ_th", "SQ_th", "RQ_th"],
       ("eomt", "thing categories only"): ["PQ_st", "SQ_st", "RQ_st"]}


def _same(got: dict[str, Any], want: dict[str, float], where: Any) -> None:
    for k, v in want.items():
        assert math.isnan(got[k]) == math.isnan(v), (where, k, got[k], v)
        if not math.isnan(v):
            assert abs(got[k] - 100 * v) <= 1e-4, (where, k, got[k], 100 * v)  # 1e-6 on the 0-1 scale


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("rule", ["torchmetrics", "vernier-corrected", "eomt"])
def test_each_rule_is_nan_exactly_where_its_reference_gives_nan(rule: str, case: str, request) -> None:
    imgs, cats = CASES[case]()
    if rule == "eomt" and case == "ground truth all VOID":
        pytest.skip("EoMT cannot evaluate an image without segments (it indexes the image's crowd flags)")
    if rule == "torchmetrics":
        want = torchmetrics_numbers(imgs, cats)
    elif rule == "vernier-corrected":
        want = vernier_numbers(imgs, cats)
    else:
        want = eomt_numbers(request.getfixturevalue("eomt_run")(imgs, cats))
    got = _ours(rule, imgs, cats)
    assert sorted(k for k in KEYS if math.isnan(want[k])) == sorted(NAN.get((rule, case), [])), want  # the case
    _same(got, want, (rule, case))


def test_a_rule_left_undefined_stays_nan_in_score_json_and_in_the_record(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An all-VOID prediction under torchmetrics' rules: JSON's NaN in ``score --json`` and in the stored record,
    read back as NaN; panopticapi's numbers beside it unchanged (0: every target a false negative)."""
    from test_rules import write_files

    from panbench.records.io import load_records

    imgs, cats = _all_void_prediction()
    files = write_files(tmp_path, imgs, cats)
    assert main(["score", *files, "--rules", "torchmetrics", "--json"]) == 0
    out = capsys.readouterr().out
    got = json.loads(out)
    assert "NaN" in out and math.isnan(got["rules"]["torchmetrics"]["PQ"]) and got["PQ"] == 0.0
    rows = got["rules_attribution"]["torchmetrics"]  # they sum to the rule's PQ minus panopticapi's: NaN
    assert rows[-1]["quirk"] == "float32 divisions" and math.isnan(rows[-1]["PQ"])
    assert all(not math.isnan(r["PQ"]) for r in rows[:-1])
    assert main(["score", *files, "--rules", "torchmetrics", "--name", "void", "--results", str(tmp_path / "r"),
                 "--no-analysis"]) == 0
    capsys.readouterr()
    (rec,) = load_records(tmp_path / "r")
    assert rec.rules is not None and all(math.isnan(rec.rules["torchmetrics"][k]) for k in KEYS)
    assert rec.metrics["PQ"] == 0.0


# ---- the classes that EoMT's mean counts as 0 ----

def test_eomt_on_a_perfect_prediction_of_the_coco_sample_says_125_of_133_classes_count_0(
        coco_sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = coco_sample / "annotations"
    files = ["--gt-json", str(a / "panoptic_val2017.json"), "--gt-dir", str(a / "panoptic_val2017"),
             "--pred-json", str(a / "panoptic_val2017.json"), "--pred-dir", str(a / "panoptic_val2017")]
    assert main(["score", *files, "--rules", "eomt,torchmetrics", "--json"]) == 0
    rules = json.loads(capsys.readouterr().out)["rules"]
    assert (rules["eomt"]["absent_classes"], rules["eomt"]["classes_averaged"]) == (125, 133)
    assert round(rules["eomt"]["PQ"], 2) == 6.02 and "absent_classes" not in rules["torchmetrics"]
    assert main(["score", *files, "--rules", "eomt,torchmetrics"]) == 0
    out = capsys.readouterr().out
    assert "  eomt: 125 of 133 classes absent, counted as 0 (its mean is over every class)" in out, out
    assert "torchmetrics: " not in out


# ---- the categories' order ----

def crowds_under_a_prediction(cat: int, stuff: int) -> Image:
    """Two crowd segments of ``cat`` (neither matched), a segment of it matched and a prediction of it on the first
    crowd alone: it is a false positive or not as the crowd that stands for the category under EoMT's patch is the
    second or the first, which comes from the order of a set of (class, instance) colours."""
    gt = np.full((20, 40), 3, np.uint32)
    gt[:, :10], gt[:, 30:], gt[10:, 12:20] = 1, 2, 4
    segs = [{"id": 1, "category_id": cat, "iscrowd": 1, "area": 200},
            {"id": 2, "category_id": cat, "iscrowd": 1, "area": 200},
            {"id": 3, "category_id": stuff, "iscrowd": 0, "area": int((gt == 3).sum())},
            {"id": 4, "category_id": cat, "iscrowd": 0, "area": 80}]
    pred = gt.copy()
    pred[(pred == 1) | (pred == 2)] = 0
    pred[:, 4:10] = 5  # 120 pixels, all on the first crowd
    p_segs = [{"id": k, "category_id": c, "iscrowd": 0, "area": int((pred == k).sum())}
              for k, c in ((3, stuff), (4, cat), (5, cat))]
    return gt, segs, pred, p_segs


#: the issue's case: categories listed out of id order (EoMT's class: the position among the sorted ids)
OUT_OF_ORDER = [{"id": 5, "name": "c", "isthing": 1}, {"id": 9, "name": "s", "isthing": 0},
                {"id": 1, "name": "a", "isthing": 1}, {"id": 2, "name": "b", "isthing": 1}]


def _shuffled(cats: list[dict], seed: int) -> list[dict]:
    out = [dict(c) for c in cats]
    random.Random(seed).shuffle(out)
    return out


def test_eomt_equals_eomt_s_own_functions_with_the_categories_listed_out_of_id_order(eomt_run) -> None:
    """Each crowd case under every thing category of :data:`OUT_OF_ORDER` (EoMT's own: 25.00, one listing took 16.67
    for two of them), then the synthetic set and the crowd pair with their categories shuffled: every class's TP, FP
    and FN and PQ, SQ and RQ for All, Things and Stuff as EoMT's functions give them."""
    sets = [([crowds_under_a_prediction(cat, 9)], OUT_OF_ORDER) for cat in (1, 2, 5)]
    sets += [(images()[:-1], _shuffled(CATS, seed)) for seed in (0, 1)]
    sets += [([crowd_pair()], _shuffled(CATS, 2))]
    for k, (imgs, cats) in enumerate(sets):
        ref = eomt_run(imgs, cats)
        got = _ours("eomt", imgs, cats)
        _same(got, eomt_numbers(ref), k)
        thing_ids = {c["id"] for c in cats if c["isthing"]}
        order = [*(c for c in ref["class_ids"] if c in thing_ids), *(c for c in ref["class_ids"] if c not in thing_ids)]
        for j, cid in enumerate(order):  # torchmetrics' continuous ids: the things, then the stuffs, each sorted
            c, s = got["per_class"][str(cid)], ref["state"]
            assert (c["TP"], c["FP"], c["FN"]) == (s["true_positives"][j], s["false_positives"][j],
                                                   s["false_negatives"][j]), (k, cid)


def _by_id(res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A rules result in one form whatever the order of its categories (JSON with sorted keys), and apart
    ``panopticapi``'s entry, panbench's own metrics (whose mean follows the JSON's order, in the last bits)."""
    res = json.loads(json.dumps(res))
    own = res["rules"].pop("panopticapi")
    return json.dumps(res, sort_keys=True), own


def _same_own(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys() and a["per_class"] == b["per_class"]
    assert all(a[k] == pytest.approx(b[k], abs=1e-9) for k in KEYS)


EVERY_RULE = "panopticapi,torchmetrics,vernier-corrected,eomt"


def test_every_rule_gives_the_same_numbers_whatever_order_the_json_lists_the_categories_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``score --rules`` (the C batch path, and in Python the images whose crowd EoMT's set order picks) on the
    synthetic set and the crowd cases, the categories of both JSONs in their order, then shuffled: the same rules
    and attribution, exactly; and the Python API likewise."""
    imgs = [*images()[:-1], crowd_pair(), *(crowds_under_a_prediction(c, max(c["id"] for c in CATS
                                                                             if not c["isthing"]))
                                            for c in (min(THINGS), max(THINGS)))]
    runs, api = [], []
    for seed in (None, 0, 1, 2):
        cats = CATS if seed is None else _shuffled(CATS, seed)
        files = _files(tmp_path / f"s{seed}", imgs, cats)
        assert main(["score", *files, "--rules", EVERY_RULE, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        runs.append(_by_id({k: out[k] for k in ("rules", "rules_attribution")}))
        m = PanopticQuality(cats, rules=EVERY_RULE.split(","))
        for i, (gt_ids, segs, p_ids, p_segs) in enumerate(imgs):
            m.update(p_ids, p_segs, gt_ids, segs, image_id=i)
        res = m.compute()
        api.append(_by_id({"rules": res.rules, "rules_attribution": res.rules_attribution}))
    for got in (*runs[1:], *api):
        assert got[0] == runs[0][0]
        _same_own(got[1], runs[0][1])


def _files(folder: Path, imgs: list[Image], cats: list[dict]) -> list[str]:
    """:func:`test_rules.write_files`, the prediction JSON listing the categories too (in the same order)."""
    from test_rules import write_files

    folder.mkdir()
    files = write_files(folder, imgs, cats)
    pred = folder / "pred.json"
    pred.write_text(json.dumps({**json.loads(pred.read_text()), "categories": cats}))
    return files
