"""The segment-score analyses (panbench/analysis/scores.py): PQ against the score threshold equals re-scoring with the
low-scoring segments removed, and the calibration (ECE) equals a plain loop over the segments and torchmetrics'
calibration error, and recovers a known miscalibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.analysis import AnalysisInputs, AnalysisSet, ScoreSums, calibration, score_threshold
from panbench.analysis.collect import computes
from panbench.data.synth import PanopticImage, coco_like_categories, perturb, random_image, write_panoptic
from panbench.errors import InputError
from panbench.pq.evaluator import score_pair
from panbench.pq.matching import CategoryTable
from panbench.pq.png import read_ids
from panbench.pq.sums import PQStats, pq_summary
from panbench.reporting.text import format_analyses

CURVE_KEYS = {"PQ": "PQ", "PQ_th": "PQ_th", "PQ_st": "PQ_st", "SQ": "SQ", "RQ": "RQ"}


def with_scores(rng: np.random.Generator, pred: PanopticImage, unscored: float = 0.2) -> PanopticImage:
    """``pred`` with a score on each segment (none on a share ``unscored``), some of them on the grid's values."""
    segs = []
    for s in pred.segments_info:
        u = rng.random()
        score = None if u < unscored else float(rng.choice([0.3, 0.5, 0.8])) if u < 0.35 else float(rng.random())
        segs.append({**s, **({"score": score} if score is not None else {})})
    return PanopticImage(pred.ids, segs)


def plain_scores(gt: PanopticImage, pred: PanopticImage, cats: CategoryTable) -> tuple[list, list, list, list]:
    """The scores of one image's TPs (ground-truth order) and counted FPs (prediction order), with their categories,
    from the pixels by panopticapi's rules written out (NaN: no score)."""
    g_ids, p_ids = gt.ids.astype(np.int64).ravel(), pred.ids.astype(np.int64).ravel()
    codes, n = np.unique(g_ids * 2**24 + p_ids, return_counts=True)
    px = {(int(c) >> 24, int(c) & (2**24 - 1)): int(k) for c, k in zip(codes, n)}  # (gt id, pred id) -> pixels
    cat = {c: k for k, c in enumerate(cats.ids)}
    p_area = {s["id"]: sum(k for (_, p), k in px.items() if p == s["id"]) for s in pred.segments_info}
    matched: set[int] = set()
    tp_c, tp_s = [], []
    for g in gt.segments_info:
        for p in pred.segments_info:
            inter, on_void = px.get((g["id"], p["id"]), 0), px.get((0, p["id"]), 0)
            union = p_area[p["id"]] + g["area"] - inter - on_void
            if not g.get("iscrowd") and g["category_id"] == p["category_id"] and inter and inter / union > 0.5:
                matched.add(p["id"])
                tp_c.append(cat[g["category_id"]])
                tp_s.append(p.get("score", np.nan))
    crowd = {g["category_id"]: g["id"] for g in gt.segments_info if g.get("iscrowd")}
    fp_c, fp_s = [], []
    for p in pred.segments_info:
        ignored = px.get((0, p["id"]), 0) + px.get((crowd.get(p["category_id"], -1), p["id"]), 0)
        if p["id"] not in matched and ignored / p_area[p["id"]] <= 0.5:
            fp_c.append(cat[p["category_id"]])
            fp_s.append(p.get("score", np.nan))
    return tp_c, tp_s, fp_c, fp_s


def unscored(img: PanopticImage) -> PanopticImage:
    return PanopticImage(img.ids, [{k: v for k, v in s.items() if k != "score"} for s in img.segments_info])


def scored_set(pairs: list[tuple[PanopticImage, PanopticImage]], cats: CategoryTable) -> tuple[AnalysisSet, PQStats]:
    """The columns of the images (the match's, with the scores of :func:`plain_scores`) and their PQ sums."""
    stats = PQStats.zeros(len(cats))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("tp_cats", "tp_ious", "tp_score", "tp_img", "fn_cats",
                                                           "fn_img", "fp_cats", "fp_score", "fp_img")}
    for i, (gt, pred) in enumerate(pairs):
        res = score_pair(cats, gt.ids, gt.segments_info, pred.ids, unscored(pred).segments_info)
        stats.add_image(res.stats)
        tp_c, tp_s, fp_c, fp_s = plain_scores(gt, pred, cats)
        m = res.match
        assert list(m.tp_cats) == tp_c and list(m.fp_cats) == fp_c  # the rows the scores were written for
        for k, v in (("tp_cats", m.tp_cats), ("tp_ious", m.tp_ious), ("tp_score", tp_s), ("fn_cats", m.fn_cats),
                     ("fp_cats", m.fp_cats), ("fp_score", fp_s)):
            parts[k].append(np.asarray(v, np.float64 if k in ("tp_ious", "tp_score", "fp_score") else np.int64))
        for g, n in (("tp", len(tp_c)), ("fn", len(m.fn_cats)), ("fp", len(fp_c))):
            parts[g + "_img"].append(np.full(n, i, np.int64))
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    return AnalysisSet(len(cats), list(range(len(pairs))), cols, cats.ids, cats.isthing), stats


def removed_below(img: PanopticImage, t: float) -> PanopticImage:
    """``img`` with each segment scoring below ``t`` removed: out of segments_info, its pixels VOID."""
    ids = img.ids.copy()
    keep = []
    for s in img.segments_info:
        if s.get("score") is not None and s["score"] < t:
            ids[ids == s["id"]] = 0
        else:
            keep.append(s)
    return unscored(PanopticImage(ids, keep))


def rescored(pairs: list[tuple[PanopticImage, PanopticImage]], cats: CategoryTable, t: float) -> dict[str, Any]:
    stats = PQStats.zeros(len(cats))
    for gt, pred in pairs:
        p = removed_below(pred, t)
        stats.add_image(score_pair(cats, gt.ids, gt.segments_info, p.ids, p.segments_info).stats)
    return pq_summary(stats, cats.ids, cats.isthing)


def check_against_rescoring(pairs: list[tuple[PanopticImage, PanopticImage]], cats: CategoryTable,
                            own: float, at: list[float]) -> dict[str, Any]:
    aset, stats = scored_set(pairs, cats)
    st = score_threshold(ScoreSums.of(aset), cats.isthing, own)
    run = pq_summary(stats, cats.ids, cats.isthing)
    assert {k: st[k][0] for k in CURVE_KEYS} == {k: run[k] for k in CURVE_KEYS}  # nothing removed: the run, exactly
    for t in at:
        k = st["thresholds"].index(t)
        want = rescored(pairs, cats, t)
        assert [st[key][k] for key in CURVE_KEYS] == pytest.approx([want[key] for key in CURVE_KEYS], abs=1e-9), t
    return st


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[tuple[PanopticImage, PanopticImage]], CategoryTable]:
    """12 small images with crowd segments, VOID and predictions with and without scores."""
    cats = coco_like_categories()
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(12):
        gt = random_image(rng, 36, 48, cats, crowd_prob=0.3, void_fraction=0.08)
        pairs.append((gt, with_scores(rng, perturb(rng, gt, cats))))
    return pairs, CategoryTable.from_coco(cats)


def test_pq_against_threshold_equals_rescoring_without_the_removed_segments(synthetic) -> None:
    pairs, cats = synthetic
    st = check_against_rescoring(pairs, cats, 0.375, [0.3, 0.375, 0.5, 0.61, 0.8, 1.0])
    t = st["thresholds"]
    assert len(t) == 102 and t == sorted(t) and t[0] == 0.0 and t[-1] == 1.0 and 0.375 in t
    assert all(len(st[k]) == 102 for k in CURVE_KEYS)
    best = max(st["PQ"])
    assert st["best"] == {"threshold": t[st["PQ"].index(best)], "PQ": best}  # the lowest threshold reaching it
    assert st["own"] == {"threshold": 0.375, "PQ": st["PQ"][t.index(0.375)]}
    assert st["gain"] == best - st["own"]["PQ"] >= 0
    scores = [s.get("score") for _, p in pairs for s in p.segments_info]
    assert 0 < st["unscored"] < st["segments"] + st["unscored"] <= len(scores)
    aset = scored_set(pairs, cats)[0]
    assert score_threshold(ScoreSums.of(aset), cats.isthing, 0.5)["thresholds"] == \
        [k / 100 for k in range(101)]  # the own threshold already on the grid: not twice
    assert computes["score_threshold"](AnalysisInputs(aset, cats.isthing, 0, own_threshold=0.375)) == \
        {"score_threshold": st}  # the run's own threshold reaches the analysis
    with pytest.raises(InputError, match=r"own score threshold 1.5 is not a number in \[0, 1\]"):
        score_threshold(ScoreSums.of(aset), cats.isthing, 1.5)


def test_pq_against_threshold_on_the_coco_sample_equals_rescoring(coco_sample: Path) -> None:
    ann = json.loads((coco_sample / "annotations" / "panoptic_val2017.json").read_text())
    rng = np.random.default_rng(5)
    pairs = []
    for a in ann["annotations"]:
        ids = read_ids(coco_sample / "annotations" / "panoptic_val2017" / a["file_name"], "gt", role="ground truth")
        gt = PanopticImage(ids, a["segments_info"])
        pairs.append((gt, with_scores(rng, perturb(rng, gt, ann["categories"]), unscored=0.1)))
    check_against_rescoring(pairs, CategoryTable.from_coco(ann["categories"]), 0.8, [0.3, 0.5, 0.55, 0.9])


def plain_calibration(scores: list[float], correct: list[float], n_bins: int = 10) -> dict[str, Any]:
    """ECE over equal-width and equal-mass bins and the equal-width bins, a loop over the segments."""
    count, conf, acc = [0] * n_bins, [0.0] * n_bins, [0.0] * n_bins
    for s, c in zip(scores, correct):
        b = min(int(np.floor(n_bins * s)), n_bins - 1)
        count[b], conf[b], acc[b] = count[b] + 1, conf[b] + s, acc[b] + c
    n = len(scores)
    ece = sum(count[b] / n * abs(acc[b] / count[b] - conf[b] / count[b]) for b in range(n_bins) if count[b])
    order = sorted(range(n), key=lambda i: scores[i])  # stable: ties keep TPs before FPs, image order
    mass, at = 0.0, 0
    for g in range(n_bins):
        size = n // n_bins + (g < n % n_bins)
        idx = order[at:at + size]
        at += size
        if idx:
            mass += size / n * abs(sum(correct[i] for i in idx) / size - sum(scores[i] for i in idx) / size)
    return {"ece": ece, "ece_mass": mass, "count": count,
            "score": [conf[b] / count[b] if count[b] else None for b in range(n_bins)],
            "accuracy": [acc[b] / count[b] if count[b] else None for b in range(n_bins)]}


def segment_columns(rng: np.random.Generator, scores: np.ndarray, correct: np.ndarray, n_images: int,
                    n_categories: int = 4) -> AnalysisSet:
    """Columns of segments with these scores: the correct ones TPs, the others FPs, on random images and categories
    (even ones things); images in order within each group."""
    img = np.sort(rng.integers(0, n_images, len(scores)))
    cat = rng.integers(0, n_categories, len(scores))
    tp, fp = correct == 1, correct == 0
    cols = {"tp_cats": cat[tp], "tp_ious": rng.uniform(0.5, 1, int(tp.sum())), "tp_score": scores[tp],
            "tp_img": img[tp], "fn_cats": np.zeros(0, np.int64), "fn_img": np.zeros(0, np.int64),
            "fp_cats": cat[fp], "fp_score": scores[fp], "fp_img": img[fp]}
    return AnalysisSet(n_categories, list(range(n_images)), cols, list(range(1, n_categories + 1)),
                       [k % 2 == 0 for k in range(n_categories)])


def test_calibration_equals_a_loop_over_the_segments_and_its_interval_the_resampled_images() -> None:
    rng = np.random.default_rng(7)
    scores = np.concatenate([rng.random(300), np.full(20, 0.5), [0.0, 1.0, 0.1, 0.9]])  # ties; both ends
    correct = (rng.random(len(scores)) < scores).astype(np.float64)
    a = segment_columns(rng, scores, correct, 30)
    got = calibration(ScoreSums.of(a), a.isthing, 200, seed=3)
    s = np.concatenate([a.tp_score, a.fp_score])
    c = np.concatenate([np.ones(len(a.tp_score)), np.zeros(len(a.fp_score))])
    img = np.concatenate([a.tp_img, a.fp_img])
    thing = np.array(a.isthing)[np.concatenate([a.tp_cats, a.fp_cats])]
    assert got["n_bins"] == 10 and got["segments"] == len(s)
    for sfx, sel in (("", np.ones(len(s), bool)), ("_th", thing), ("_st", ~thing)):
        want = plain_calibration(s[sel].tolist(), c[sel].tolist())
        assert got["ece" + sfx] == pytest.approx(want["ece"], abs=1e-9)
        assert got["ece_mass" + sfx] == pytest.approx(want["ece_mass"], abs=1e-9)
        bins = got["bins" + sfx]
        assert bins["edges"] == [k / 10 for k in range(11)] and bins["count"] == want["count"]
        for key in ("score", "accuracy"):
            assert [None if v is None else pytest.approx(v, abs=1e-12) for v in want[key]] == bins[key]
        w = np.array([np.bincount(d, minlength=30) for d in np.random.default_rng(3).integers(0, 30, (200, 30))])
        b = np.minimum(np.floor(10 * s[sel]), 9).astype(int)
        per_bin = np.array([np.bincount(img[sel][b == k], (c - s)[sel][b == k], minlength=30) for k in range(10)])
        ece = np.abs(w @ per_bin.T).sum(1) / (w @ np.bincount(img[sel], minlength=30))
        assert [got["low"]["ece" + sfx], got["high"]["ece" + sfx]] == pytest.approx(
            np.percentile(ece, [2.5, 97.5]), abs=1e-9)
        assert got["low"]["ece" + sfx] <= got["ece" + sfx] <= got["high"]["ece" + sfx]


def test_calibration_equals_torchmetrics_binary_calibration_error() -> None:
    """An outside implementation on the same arrays: torchmetrics' ``binary_calibration_error`` (10 equal-width bins,
    l1) in float64.  Its bins are ``bucketize(s, linspace(0, 1, 11), right=True) - 1``, a 1.0 in a bin of its own: no
    score here lies on an edge or at 1.0, where the two binnings part."""
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    rng = np.random.default_rng(5)
    scores = rng.random(4000)
    scores = scores[np.abs(10 * scores - np.round(10 * scores)) > 1e-6]
    # over- and under-confident by turns along the scores: bins of both signs, so that the ECE depends on the
    # binning (where every bin errs one way, it is the mean gap whatever the bins)
    correct = (rng.random(len(scores)) < np.clip(scores + 0.3 * np.sin(7.3 * np.pi * scores), 0, 1)).astype(float)
    a = segment_columns(rng, scores, correct, 40)
    got = calibration(ScoreSums.of(a), a.isthing, 0)
    s = np.concatenate([a.tp_score, a.fp_score])
    c = np.concatenate([np.ones(len(a.tp_score), np.int64), np.zeros(len(a.fp_score), np.int64)])
    thing = np.array(a.isthing)[np.concatenate([a.tp_cats, a.fp_cats])]
    for sfx, sel in (("", np.ones(len(s), bool)), ("_th", thing), ("_st", ~thing)):
        want = tm.binary_calibration_error(torch.tensor(s[sel], dtype=torch.float64), torch.tensor(c[sel]),
                                           n_bins=10, norm="l1")
        assert want.dtype == torch.float64 and got["ece" + sfx] == pytest.approx(float(want), abs=1e-9), sfx


def test_a_group_without_scored_segments_has_null_values() -> None:
    rng = np.random.default_rng(2)
    a = segment_columns(rng, rng.random(40), (rng.random(40) < 0.5).astype(np.float64), 12)
    a.isthing = [True] * a.n_categories  # no stuff category
    got = calibration(ScoreSums.of(a), a.isthing, 100)
    assert got["ece_st"] is None and got["ece_mass_st"] is None and got["low"]["ece_st"] is None
    assert got["bins_st"]["count"] == [0] * 10 and got["bins_st"]["score"] == [None] * 10
    assert got["ece_th"] == got["ece"] is not None and got["low"]["ece_th"] == got["low"]["ece"] is not None


@pytest.mark.parametrize(("accuracy", "score_high", "ece"), [
    (lambda s: s, 1.0, 0.0),  # calibrated
    (lambda s: s**2, 1.0, 1 / 6),  # the integral of s - s^2 over [0, 1]
    (lambda s: s + 0.1, 0.9, 0.1),  # 0.1 under-confident everywhere
], ids=["calibrated", "squared", "offset"])
def test_calibration_recovers_a_known_miscalibration(accuracy, score_high: float, ece: float) -> None:
    rng = np.random.default_rng(11)
    scores = rng.uniform(0, score_high, 100_000)
    a = segment_columns(rng, scores, (rng.random(len(scores)) < accuracy(scores)).astype(np.float64), 50)
    got = calibration(ScoreSums.of(a), a.isthing, 0)
    assert "low" not in got  # no interval asked
    for key in ("ece", "ece_th", "ece_st", "ece_mass", "ece_mass_th", "ece_mass_st"):
        assert got[key] == pytest.approx(ece, abs=0.01), key  # sampling error well below 0.01 at 25k+ segments


def test_a_run_without_scores_has_neither_analysis_and_says_why(synthetic) -> None:
    pairs, cats = synthetic
    a, _ = scored_set([(g, unscored(p)) for g, p in pairs], cats)
    inp = AnalysisInputs(a, cats.isthing, 100, own_threshold=0.5)
    assert computes["score_threshold"](inp) == {} and computes["calibration"](inp) == {}
    analysed = {"by_size": {"small": {"n": 0}}, "n_images": len(pairs)}
    (line,) = [x for x in format_analyses(analysed) if "score" in x]
    assert line.startswith("score threshold and calibration: none (no predicted segment has a usable score")
    assert not any("score" in x for x in format_analyses({"n_images": 3}))  # no analysis ran: nothing to say


def test_score_of_predictions_without_scores_says_what_they_need_and_names_no_fusion_option(synthetic, tmp_path,
                                                                                           capsys) -> None:
    """`panbench score` of another system's predictions: --fusion mmdet is eval's, not theirs; the line says what
    predictions need to have scores."""
    from panbench.cli import main

    pairs, _ = synthetic
    categories = coco_like_categories()
    gj, gd = write_panoptic(tmp_path, "gt", [(i, g) for i, (g, _) in enumerate(pairs, 1)], categories)
    pj, pd = write_panoptic(tmp_path, "pred", [(i, unscored(p)) for i, (_, p) in enumerate(pairs, 1)], categories)
    assert main(["score", "--gt-json", str(gj), "--gt-dir", str(gd), "--pred-json", str(pj), "--pred-dir",
                 str(pd)]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "score threshold and calibration" in x]
    assert "fusion" not in line, line
    assert line.strip() == ("score threshold and calibration: none (no predicted segment has a usable score: "
                            "predictions get them as a \"score\" per segment in segments_info, the model's, a float "
                            "in [0, 1] (one outside it leaves every score out, with a note))")


def test_the_no_score_line_of_a_run_of_mmdet_s_own_fusion_names_the_option_to_leave_out() -> None:
    analysed = {"by_size": {"small": {"n": 0}}, "n_images": 3}
    (ours,) = [x for x in format_analyses({**analysed, "fusion": "panbench"}) if "score" in x]
    (theirs,) = [x for x in format_analyses({**analysed, "fusion": "mmdet"}) if "score" in x]
    assert "fusion" not in ours
    assert theirs == ("score threshold and calibration: none (no predicted segment has a usable score: mmdet's own "
                      "fusion (--fusion mmdet) gives none; leave --fusion mmdet out: panbench's fusion keeps each "
                      "segment's score)")


def test_score_writes_both_analyses_of_scored_predictions_and_no_analysis_leaves_them_out(synthetic, tmp_path,
                                                                                          capsys) -> None:
    from panbench.cli import main

    pairs, cats = synthetic
    categories = coco_like_categories()
    gj, gd = write_panoptic(tmp_path, "gt", [(i, g) for i, (g, _) in enumerate(pairs, 1)], categories)
    pj, pd = write_panoptic(tmp_path, "pred", [(i, p) for i, (_, p) in enumerate(pairs, 1)], categories)
    args = ["score", "--gt-json", str(gj), "--gt-dir", str(gd), "--pred-json", str(pj), "--pred-dir", str(pd)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    s = ScoreSums.of(scored_set(pairs, cats)[0])
    assert out["score_threshold"] == json.loads(json.dumps(score_threshold(s, cats.isthing)))
    assert out["calibration"] == json.loads(json.dumps(calibration(s, cats.isthing, 1000)))
    assert out["score_threshold"]["own"] is None and set(out["calibration"]["low"]) == {"ece", "ece_th", "ece_st"}
    assert main([*args, "--json", "--no-analysis"]) == 0
    assert not {"score_threshold", "calibration"} & set(json.loads(capsys.readouterr().out))
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "PQ by score threshold: best" in text and "calibration of segment scores: ECE" in text


def test_the_calibration_intervals_per_image_sums_are_each_segments_bin_difference_and_its_groups_count() -> None:
    """``image_bin_sums``' sparse rows against one loop over the segments: per image, a segment adds its
    ``correct - score`` (in IoU units, each rounded) to its group's bin, and 1 to its group's count."""
    from panbench.analysis.scores import N_BINS, image_bin_sums, score_bin
    from panbench.pq.sums import IOU_SCALE

    rng = np.random.default_rng(3)
    n, n_images = 5000, 40
    scores = np.concatenate([rng.random(n - 3), [0.0, 1.0, 0.5]])
    correct = (rng.random(n) < 0.6).astype(np.float64)
    thing = rng.random(n) < 0.7
    img = np.sort(rng.integers(0, n_images - 1, n))  # the last image has no segment
    k = 2 * N_BINS + 2
    want = np.zeros((n_images, k), np.int64)
    for s, c, t, i, b in zip(scores, correct, thing, img, score_bin(scores)):
        want[i, (0 if t else N_BINS) + b] += int(np.rint(c * IOU_SCALE)) - int(np.rint(s * IOU_SCALE))
        want[i, 2 * N_BINS + (0 if t else 1)] += 1
    indptr, cols, vals = image_bin_sums(scores, correct, thing, img, n_images)
    got = np.zeros((n_images, k), np.int64)
    got[np.repeat(np.arange(n_images), np.diff(indptr)), cols] = vals
    assert np.array_equal(got, want) and (vals != 0).all() and len(indptr) == n_images + 1
