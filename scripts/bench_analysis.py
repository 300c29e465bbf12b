#!/usr/bin/env python
"""Cost of the analyses, on synthetic data, printed side by side.

1. Bootstrap at COCO val scale: 5000 images, 133 categories (80 things, 53 stuff), 1000 resamples,
   one run (``bootstrap_ci``) and a paired comparison of two runs (``paired_bootstrap``, with the
   per-class intervals); the target is under 5 s on 2 cores.  The per-image matches are synthetic
   (random categories, IoUs, areas and overlaps; about 11 categories and 20 segments per image),
   not scores of any model.
2. PQ by size, PQ-dagger and the error breakdown on the same matches.
3. Per-image cost of keeping the result: ``score_pair(...).stats`` vs ``score_pair`` (the same, the
   ``ImageResult`` kept) and vs boundary PQ on top (``score_pair(boundary=True)``) on in-memory
   640x480 synthetic images (no PNG decoding, so the ratios are the strictest possible; in
   ``score`` the decoding makes them smaller).  Medians of interleaved repeats.

    .venv/bin/python scripts/bench_analysis.py            # threads: OPENBLAS/OMP set to 2 below
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panbench.analysis import (  # noqa: E402
    AnalysisSet,
    RunSums,
    bootstrap_ci,
    error_breakdown,
    paired_bootstrap,
    pq_by_size,
    pq_dagger,
)
from panbench.pq.matching import BOOL_FIELDS, FLOAT_FIELDS, MATCH_FIELDS  # noqa: E402


def synthetic_set(rng: np.random.Generator, n_images: int, n_cat: int, per_image: int = 20) -> AnalysisSet:
    """Random per-image matches in the shape of COCO val (synthetic, not a measurement of a model)."""
    cols: dict[str, np.ndarray] = {}
    sizes = {"tp": per_image * 6 // 10, "fn": per_image * 2 // 10, "fp": per_image * 2 // 10, "gt": per_image * 8 // 10}
    for g, k in sizes.items():
        n = n_images * k
        cols[g + "_img"] = np.repeat(np.arange(n_images, dtype=np.int64), k)
        img_cats = rng.integers(0, n_cat, (n_images, 11))  # ~11 categories per image
        cols[g + "_cats"] = np.take_along_axis(img_cats, rng.integers(0, 11, (n_images, k)), 1).ravel()
    for name in MATCH_FIELDS:
        if name in cols:
            continue
        n = len(cols[name.split("_", 1)[0] + "_img"])
        if name in BOOL_FIELDS:
            cols[name] = rng.random(n) < 0.3
        elif name in FLOAT_FIELDS:
            cols[name] = rng.uniform(0.5, 1.0, n) if name == "tp_ious" else rng.uniform(0, 0.6, n)
        else:
            cols[name] = rng.lognormal(8, 2, n).astype(np.int64) + 1
    return AnalysisSet(n_cat, list(range(n_images)), cols)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def synthetic_images(n_images: int) -> tuple[Any, list[tuple[Any, Any]]]:
    """The category table and ``n_images`` (ground truth, perturbed prediction) pairs, 640x480."""
    from panbench.data.synth import coco_like_categories, perturb, random_image
    from panbench.pq.matching import CategoryTable

    rng = np.random.default_rng(1)
    cats_json = coco_like_categories(80, 53)
    imgs = []
    for _ in range(n_images):
        g = random_image(rng, 480, 640, cats_json, n_things=(5, 30), n_stuff=(3, 8))
        imgs.append((g, perturb(rng, g, cats_json)))
    return CategoryTable.from_coco(cats_json), imgs


def bench_matches(n_images: int, repeat: int) -> tuple[float, ...]:
    """Seconds per image: in memory (plain, match, match + boundary), then from PNG files as
    ``score`` reads them (the same three)."""
    import tempfile

    from panbench.data.synth import write_png
    from panbench.pq.evaluator import score_pair
    from panbench.pq.png import read_ids

    cats, imgs = synthetic_images(n_images)
    tmp = Path(tempfile.mkdtemp(prefix="bench_analysis_"))
    files = []
    for k, (g, p) in enumerate(imgs):
        write_png(tmp / f"g{k}.png", g.ids)
        write_png(tmp / f"p{k}.png", p.ids)
        files.append((tmp / f"g{k}.png", g.segments_info, tmp / f"p{k}.png", p.segments_info))

    def from_files(kind: str) -> float:
        t = time.perf_counter()
        for gf, gi, pf, pi in files:
            g_ids, p_ids = read_ids(gf, "image", "gt"), read_ids(pf, "image", "pred")
            score_pair(cats, g_ids, gi, p_ids, pi, "image", boundary=kind == "boundary")
        return time.perf_counter() - t

    files_t: dict[str, list[float]] = {"plain": [], "match": [], "boundary": []}
    plain, full, bnd = [], [], []
    for _ in range(repeat):  # interleaved
        t = time.perf_counter()
        for g, p in imgs:
            score_pair(cats, g.ids, g.segments_info, p.ids, p.segments_info, "image")
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        for g, p in imgs:
            score_pair(cats, g.ids, g.segments_info, p.ids, p.segments_info, "image")
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        for g, p in imgs:
            score_pair(cats, g.ids, g.segments_info, p.ids, p.segments_info, "image", boundary=True)
        bnd.append(time.perf_counter() - t)
        for kind, times in files_t.items():
            times.append(from_files(kind))
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return tuple(statistics.median(x) / n_images for x in (plain, full, bnd, *files_t.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--categories", type=int, default=133)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--match-images", type=int, default=40, help="images for the per-image match cost")
    ap.add_argument("--matches-only", action="store_true", help="only the per-image costs (part 3)")
    args = ap.parse_args()
    if args.matches_only:
        matches(args)
        return
    rng = np.random.default_rng(0)
    isthing = [k < 80 for k in range(args.categories)]
    a, b = synthetic_set(rng, args.images, args.categories), synthetic_set(rng, args.images, args.categories)
    ra, rb = RunSums.from_analysis(a, "synthetic"), RunSums.from_analysis(b, "synthetic")
    print(f"synthetic matches: {args.images} images, {args.categories} categories, {args.resamples} resamples, "
          f"threads {os.environ['OPENBLAS_NUM_THREADS']}, {os.cpu_count()} cpus")
    t_sums = timed(lambda: RunSums.from_analysis(a), args.repeat)
    t_ci = timed(lambda: bootstrap_ci(ra, isthing, n_resamples=args.resamples), args.repeat)
    t_pair = timed(lambda: paired_bootstrap(ra, rb, isthing, n_resamples=args.resamples), args.repeat)
    t_rest = timed(lambda: (pq_by_size(a, isthing), pq_dagger(a, isthing), error_breakdown(a, isthing)), args.repeat)
    print(f"  per-image sums (N x C)             {t_sums:8.3f} s")
    print(f"  bootstrap_ci, one run              {t_ci:8.3f} s   target < 5 s: {'ok' if t_ci < 5 else 'MISSED'}")
    print(f"  paired_bootstrap + per class       {t_pair:8.3f} s   target < 5 s: {'ok' if t_pair < 5 else 'MISSED'}")
    print(f"  by size + PQ-dagger + errors       {t_rest:8.3f} s")
    bootstrap_stages(ra, isthing, args)
    if args.match_images:
        matches(args)


def bootstrap_stages(run: RunSums, isthing: list[bool], args: argparse.Namespace) -> None:
    """Where bootstrap_ci's time goes (each stage alone, medians of --repeat): its exact sums (C over the sparse
    per-image sums on 1 and 2 threads; the same integers through BLAS, the tests' reference) against the float64
    product of the resample counts that they replaced.  Before timing: the three exact ways give the same
    integers, and the intervals of the exact sums and of the float64 product are compared (printed)."""
    from panbench.analysis import bootstrap as b
    from panbench.analysis import resample as rs

    sys.path.insert(0, str(ROOT / "tests" / "analysis"))
    from resample_reference import blas_sums  # the exact sums without C: the tests' reference

    n, r, c = run.n_images, args.resamples, run.iou.shape[1]
    x, things = run.stacked(), np.asarray(isthing, bool)
    fixed = rs.fixed_sums(x, [slice(0, c)])
    if fixed is None:
        raise SystemExit("sums this large take the float64 product: no exact sums to time")
    exact = rs.resampled_sums(fixed, r, 0, 1)
    blas = np.concatenate([blas_sums(w, fixed) for w in rs.count_chunks(n, r, 0, 250)])
    if not (np.array_equal(exact, rs.resampled_sums(fixed, r, 0, 2)) and np.array_equal(exact, blas)):
        raise SystemExit("the exact sums differ between C on 1 and 2 threads and BLAS")
    f64, f32 = b._factors(x, c)
    dense = np.concatenate([b._product(w, f64, f32) for w in rs.count_chunks(n, r, 0, 250)])
    iv_exact = {k: b._interval(v, 0.95) for k, v in b._ci_values(rs.as_float(exact, [slice(0, c)]), c, things).items()}
    iv_dense = {k: b._interval(v, 0.95) for k, v in b._ci_values(dense, c, things).items()}
    gap = max(float(np.abs(iv_exact[k] - iv_dense[k]).max()) for k in iv_exact)
    s = rs.as_float(exact, [slice(0, c)])
    stages = {
        "draws (rng.integers, R x N)": lambda: np.random.default_rng(0).integers(0, n, size=(r, n)),
        "exact sums: draws + C over sparse rows, 1 thread": lambda: rs.resampled_sums(fixed, r, 0, 1),
        "exact sums: draws + C over sparse rows, 2 threads": lambda: rs.resampled_sums(fixed, r, 0, 2),
        "exact sums: draws + counts + BLAS in pieces (no C)": lambda: [blas_sums(w, fixed)
                                                                     for w in rs.count_chunks(n, r, 0, 250)],
        "replaced: draws + counts + float64 product W @ X": lambda: [b._product(w, f64, f32)
                                                                   for w in rs.count_chunks(n, r, 0, 250)],
        "metrics of every resample and percentiles": lambda: b._interval(b._ci_values(s, c, things)["PQ"], 0.95),
    }
    t = {k: timed(fn, args.repeat) for k, fn in stages.items()}
    nnz = int((fixed != 0).sum())
    print(f"  bootstrap_ci's stages ({n} images, {r} resamples, {nnz / n:.1f} nonzeros of {3 * c} per image; the "
          "exact sums equal on C 1 thread, 2 threads and BLAS, checked):")
    for k, v in t.items():
        print(f"    {k:52} {v:8.3f} s")
    replaced = t["replaced: draws + counts + float64 product W @ X"]
    print(f"    the replaced product / exact sums on 2 threads: {replaced / t[list(t)[2]]:.2f}x; intervals of the "
          f"exact sums vs the float64 product: largest difference {gap:.2e} (PQ points)")


def matches(args: argparse.Namespace) -> None:
    """Part 3: the per-image costs, printed side by side."""
    if args.match_images:
        plain, full, bnd, f_plain, f_full, f_bnd = bench_matches(args.match_images, args.repeat)
        print(f"per-image match, {args.match_images} in-memory 640x480 synthetic images (median of {args.repeat}):")
        print(f"  score_pair(...).stats           {1e3 * plain:8.2f} ms/image")
        print(f"  score_pair                      {1e3 * full:8.2f} ms/image   ratio {full / plain:.3f}")
        print(f"  + boundary PQ (d = 16)             {1e3 * bnd:8.2f} ms/image   ratio {bnd / plain:.3f}")
        print("  from PNG files, as score reads them (decode + the above):")
        print(f"  read_ids x 2 + score_pair       {1e3 * f_plain:8.2f} ms/image")
        print(f"  ... + per-image match              {1e3 * f_full:8.2f} ms/image   ratio {f_full / f_plain:.3f}")
        print(f"  ... + match + boundary PQ          {1e3 * f_bnd:8.2f} ms/image   ratio {f_bnd / f_plain:.3f}   "
              f"target < 2: {'ok' if f_bnd < 2 * f_plain else 'MISSED'}")


if __name__ == "__main__":
    main()
