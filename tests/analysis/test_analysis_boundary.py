"""Boundary PQ against slow references written from the definition (pixel loops, dicts), on
awkward cases: segments on the image border, thin segments, VOID, crowd."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import label_map
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panbench.pq.boundary import boundary_image_stats, dilation
from panbench.pq.evaluator import pair_table, score_pair
from panbench.pq.kernels import boundary_mask
from panbench.pq.matching import CategoryTable
from panbench.pq.sums import PQStats, pq_summary


def slow_boundary(ids: np.ndarray, d: int) -> np.ndarray:
    """Pixel p is on its region's boundary when a pixel of another id, or the outside of the image,
    is within Chebyshev distance d."""
    h, w = ids.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if min(y + 1, x + 1, h - y, w - x) <= d:  # the border counts as contour
                out[y, x] = True
                continue
            win = ids[y - d : y + d + 1, x - d : x + d + 1]
            out[y, x] = bool((win != ids[y, x]).any())
    return out


def erosion_boundary(ids: np.ndarray, seg_id: int, d: int) -> np.ndarray:
    """The same by morphology: the mask minus its erosion (3x3, d times) inside a zero frame."""
    m = (ids == seg_id).astype(np.uint8)
    framed = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(framed, np.ones((3, 3), np.uint8), iterations=d)[1:-1, 1:-1]
    return (m - eroded) > 0


@pytest.mark.parametrize("d", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", range(4))
def test_boundary_mask_equals_both_references(d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 4, (13, 17)).astype(np.uint32)
    ids[3:11, 2:15] = 7  # a big block, thin lines through it, a block touching the border
    ids[6, 2:15] = 8
    ids[:, 16] = 9
    ids[0:5, 0:5] = 10
    b = boundary_mask(ids, d)
    assert np.array_equal(b, slow_boundary(ids, d))
    for sid in np.unique(ids):
        assert np.array_equal(b & (ids == sid), erosion_boundary(ids, int(sid), d)), sid


def test_dilation_follows_the_image_diagonal() -> None:
    assert dilation(480, 640) == 16 and dilation(10, 10) == 1 and dilation(1, 1) == 1
    assert dilation(1000, 1000) == round(0.02 * 1000 * 2**0.5)


CATS = [{"id": 1, "isthing": 1}, {"id": 2, "isthing": 1}, {"id": 3, "isthing": 0}]
TABLE = CategoryTable.from_coco(CATS)


def slow_boundary_pq(images, ratio: float) -> dict:
    """Per image: dict-counted mask and boundary intersections, min(mask IoU, boundary IoU) > 0.5,
    panopticapi's FN / FP / crowd / VOID rules; per-category sums; PQ averages."""
    per = {c["id"]: [0.0, 0, 0, 0] for c in CATS}
    for g_ids, g_info, p_ids, p_info in images:
        h, w = g_ids.shape
        d = max(1, int(round(ratio * (h * h + w * w) ** 0.5)))
        gs = {s["id"]: s for s in g_info}
        ps = {s["id"]: dict(s, area=int((p_ids == s["id"]).sum())) for s in p_info}
        pairs, bpairs, gb_area, pb_area = slow_counts(g_ids, p_ids, gs, ps, d)
        gm, pm = set(), set()
        for (g, p), n in pairs.items():
            if g not in gs or p not in ps or gs[g].get("iscrowd", 0) or gs[g]["category_id"] != ps[p]["category_id"]:
                continue
            iou = n / (ps[p]["area"] + gs[g]["area"] - n - pairs.get((0, p), 0))
            bi = bpairs.get((g, p), 0)
            biou = bi / (pb_area.get(p, 0) + gb_area.get(g, 0) - bi - bpairs.get((0, p), 0))
            iou = min(iou, biou)
            if iou > 0.5:
                per[gs[g]["category_id"]][0] += iou
                per[gs[g]["category_id"]][1] += 1
                gm.add(g)
                pm.add(p)
        crowd = {}
        for g, s in gs.items():
            if g in gm:
                continue
            if s.get("iscrowd", 0):
                crowd[s["category_id"]] = g
                continue
            per[s["category_id"]][3] += 1
        for p, s in ps.items():
            if p in pm:
                continue
            c = s["category_id"]
            ign = pairs.get((0, p), 0) + (pairs.get((crowd[c], p), 0) if c in crowd else 0)
            if ign / s["area"] > 0.5:
                continue
            per[s["category_id"]][2] += 1
    out = {}
    for sfx, sel in (("", None), ("_th", True), ("_st", False)):
        vals = [per[c["id"]] for c in CATS if sel is None or bool(c["isthing"]) == sel]
        vals = [v for v in vals if v[1] + v[2] + v[3] > 0]
        out["PQ" + sfx] = 100 * sum(v[0] / (v[1] + 0.5 * v[2] + 0.5 * v[3]) for v in vals) / len(vals) if vals else 0.0
    return out


def slow_counts(g_ids, p_ids, gs: dict, ps: dict, d: int) -> tuple[dict, dict, dict, dict]:
    """Pixel by pixel: mask pairs, boundary pairs (a predicted boundary pixel on a ground-truth boundary or
    on VOID) and the boundary areas of the listed segments."""
    gb, pb = slow_boundary(g_ids, d), slow_boundary(p_ids, d)
    pairs, bpairs, gb_area, pb_area = {}, {}, {}, {}
    h, w = g_ids.shape
    for y in range(h):
        for x in range(w):
            g, p = int(g_ids[y, x]), int(p_ids[y, x])
            pairs[g, p] = pairs.get((g, p), 0) + 1
            if pb[y, x] and p in ps:
                pb_area[p] = pb_area.get(p, 0) + 1
            if gb[y, x] and g in gs:
                gb_area[g] = gb_area.get(g, 0) + 1
            if pb[y, x] and (gb[y, x] or g == 0):
                bpairs[g, p] = bpairs.get((g, p), 0) + 1
    return pairs, bpairs, gb_area, pb_area


def ours(images, ratio: float) -> dict:
    stats = PQStats.zeros(len(TABLE))
    for g_ids, g_info, p_ids, p_info in images:
        inter, gt, pred = pair_table(TABLE, g_ids, g_info, p_ids, p_info, "image")
        stats.add_image(boundary_image_stats(g_ids, gt, p_ids, pred, inter, ratio))
    return pq_summary(stats, TABLE.ids, TABLE.isthing)


def relabel(img, rng_cats):
    for s, c in zip(img.segments_info, rng_cats):
        s["category_id"] = c
    return img


@st.composite
def boundary_pair(draw):
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    g = draw(label_map(shape, n_max=4, crowd=True))
    p = draw(label_map(shape, n_max=4))
    cats = [c["id"] for c in CATS]
    relabel(g, [draw(st.sampled_from(cats)) for _ in g.segments_info])
    relabel(p, [draw(st.sampled_from(cats)) for _ in p.segments_info])
    return g.ids, g.segments_info, p.ids, p.segments_info


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(boundary_pair(), min_size=1, max_size=3), st.sampled_from([0.02, 0.1, 0.25]))
def test_boundary_pq_equals_the_slow_reference(images, ratio) -> None:
    o, r = ours(images, ratio), slow_boundary_pq(images, ratio)
    for k in r:
        assert o[k] == pytest.approx(r[k], abs=1e-9), k


def test_awkward_cases_hand_built() -> None:
    """A thin line, a border segment, VOID next to a prediction, a crowd; boundary PQ <= PQ."""
    g = np.zeros((20, 30), np.uint32)
    g[:, :] = 5  # stuff everywhere
    g[0:8, 0:10] = 11  # thing on the border
    g[12, 3:27] = 12  # a one-pixel line
    g[14:19, 20:29] = 13  # crowd
    g[15:18, 1:6] = 0  # VOID
    p = g.copy()
    p[0:8, 9] = 5  # the border thing loses a column
    p[13, 3:27] = 12  # the line shifted by one row
    p[15:18, 1:6] = 21  # a prediction on VOID
    g_info = [{"id": 5, "category_id": 3, "area": int((g == 5).sum())},
              {"id": 11, "category_id": 1, "area": int((g == 11).sum())},
              {"id": 12, "category_id": 2, "area": int((g == 12).sum())},
              {"id": 13, "category_id": 1, "area": int((g == 13).sum()), "iscrowd": 1}]
    p_info = [{"id": 5, "category_id": 3}, {"id": 11, "category_id": 1}, {"id": 12, "category_id": 2},
              {"id": 13, "category_id": 1}, {"id": 21, "category_id": 2}]
    images = [(g, g_info, p, p_info)]
    for ratio in (0.02, 0.1):
        o, r = ours(images, ratio), slow_boundary_pq(images, ratio)
        assert o["PQ"] == pytest.approx(r["PQ"], abs=1e-9)
        plain = score_pair(TABLE, g, g_info, p, p_info).stats
        st_plain = PQStats.zeros(len(TABLE))
        st_plain.add_image(plain)
        assert o["PQ"] <= pq_summary(st_plain, TABLE.ids, TABLE.isthing)["PQ"] + 1e-12


def test_predicted_boundary_on_void_leaves_the_union() -> None:
    """gt: a 30x30 block on VOID; pred: the block and 3 columns of VOID.  Mask IoU 1 (VOID leaves the
    union); boundary (d = 1): 88 shared ring pixels, 34 predicted ring pixels on VOID."""
    g = np.zeros((40, 40), np.uint32)
    g[5:35, 5:35] = 7
    p = np.zeros((40, 40), np.uint32)
    p[5:35, 5:38] = 9
    images = [(g, [{"id": 7, "category_id": 1, "area": 900}], p, [{"id": 9, "category_id": 1}])]
    assert dilation(40, 40) == 1
    o = ours(images, 0.02)
    assert o["PQ"] == pytest.approx(100 * 88 / (122 + 116 - 88 - 34), abs=1e-9)
    assert o["PQ"] == pytest.approx(slow_boundary_pq(images, 0.02)["PQ"], abs=1e-9)


@pytest.mark.parametrize("avx2", [True, False])
@pytest.mark.parametrize("shape,d", [((48, 64), 1), ((48, 64), 4), ((1, 30), 1), ((30, 1), 2), ((5, 7), 9),
                                     ((37, 71), 3), ((60, 83), 16), ((9, 9), 4)])
def test_c_and_numpy_tables_agree(shape, d, avx2) -> None:
    """The C tables (with the AVX2 row scan and with the portable one) equal the numpy ones."""
    from panbench.pq import boundary

    if boundary._native.use_avx2(avx2) != avx2:
        boundary._native.use_avx2(True)
        pytest.skip("this CPU has no AVX2")
    try:
        _tables_agree(shape, d)
    finally:
        boundary._native.use_avx2(True)


def _tables_agree(shape, d) -> None:
    from panbench.data.synth import coco_like_categories, perturb, random_image
    from panbench.pq import boundary
    from panbench.pq.coco_format import parse_segments

    cats_json = coco_like_categories(5, 4)
    cats = CategoryTable.from_coco(cats_json)
    rng = np.random.default_rng(d)
    for _ in range(3):
        g = random_image(rng, max(shape[0], 8), max(shape[1], 8), cats_json, crowd_prob=0.3)
        p = perturb(rng, g, cats_json)
        g_ids, p_ids = g.ids[: shape[0], : shape[1]].copy(), p.ids[: shape[0], : shape[1]].copy()
        g_ids[0, 0] = 12345  # an id in no ground-truth segment
        gt = parse_segments(g.segments_info, cats, "gt", gt=True)
        pred = parse_segments([s for s in p.segments_info if (p_ids == s["id"]).any()], cats, "pred", gt=False)
        c = boundary.boundary_tables(g_ids, gt, p_ids, pred, d)
        n = boundary.boundary_tables(g_ids, gt, p_ids, pred, d, native=False)
        for a, b in zip(c, n):
            assert np.array_equal(a, b)
    # pixel noise: runs of one to a few pixels, several id changes within 8 pixels
    g_ids = gt.ids[rng.integers(0, min(3, len(gt)), shape)].astype(np.uint32)
    p_ids = pred.ids[rng.integers(0, min(3, len(pred)), shape)].astype(np.uint32)
    g_ids[rng.random(shape) < 0.2] = 0
    keep = [s for s in p.segments_info if (p_ids == s["id"]).any()]
    pred = parse_segments(keep, cats, "pred", gt=False)
    c = boundary.boundary_tables(g_ids, gt, p_ids, pred, d)
    n = boundary.boundary_tables(g_ids, gt, p_ids, pred, d, native=False)
    assert all(np.array_equal(a, b) for a, b in zip(c, n))


def test_unknown_predicted_id_is_one_line() -> None:
    from panbench.errors import InputError
    from panbench.pq import boundary
    from panbench.pq.coco_format import parse_segments

    ids = np.ones((4, 4), np.uint32)
    gt = parse_segments([{"id": 1, "category_id": 1, "area": 16}], TABLE, "gt", gt=True)
    pred = parse_segments([{"id": 2, "category_id": 1}], TABLE, "pred", gt=False)
    for native in (True, False):
        with pytest.raises(InputError, match="PNG segment id 1 is absent"):
            boundary.boundary_tables(ids, gt, ids, pred, 1, native=native)


def test_c_counts_saturate_on_tall_images() -> None:
    """40000 rows: the C column counts are 16-bit and must saturate, not wrap."""
    from panbench.pq import boundary
    from panbench.pq.coco_format import parse_segments

    ids = np.full((40000, 20), 5, np.uint32)  # wide enough for the SIMD paths
    gt = parse_segments([{"id": 5, "category_id": 1, "area": ids.size}], TABLE, "gt", gt=True)
    pred = parse_segments([{"id": 5, "category_id": 1}], TABLE, "pred", gt=False)
    c = boundary.boundary_tables(ids, gt, ids, pred, 1)
    n = boundary.boundary_tables(ids, gt, ids, pred, 1, native=False)
    assert all(np.array_equal(a, b) for a, b in zip(c, n))
    assert c[1].tolist() == [ids.size - 18 * 39998]  # all but the inner rows of the inner columns
