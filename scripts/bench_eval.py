#!/usr/bin/env python
"""End to end: ``panbench eval`` against MMDetection's own test loop, same checkpoints and images.

What each row runs (every run a whole child process: imports, model and data set-up, inference,
scoring; demo val split, the committed demo checkpoints, ``--limit N`` images or all 60):

  mmdet stock        MMDetection's test loop (``scripts/mmdet_reference.py``: what ``tools/test.py``
                     runs, mmengine ``Runner.test`` + ``CocoPanopticMetric``, which writes each
                     prediction as a PNG and scores it with panopticapi) on the model's config as it
                     is.  Mask2Former's config computes the instance output beside the panoptic one
                     (``test_cfg.instance_on=True``).  One process; ``--workers`` data-loading workers.
  mmdet pan-only     the same loop on the config panbench runs: ``panbench.models.mmdet.family.panoptic_only``
                     (Mask2Former: ``instance_on=False``; for configs where it changes nothing the
                     row repeats the stock row's runs and says so).
  panbench 1proc     ``panbench eval --cpu-procs 1 --workers W``: one inference process (the same
                     process layout as the mmdet rows), its loop, scoring in memory in a thread.
  panbench forked    ``panbench eval`` with its default ``--cpu-procs 0``: one inference process per
                     core, forked after the model is loaded, ``cores / N`` torch threads each.

Every panbench row runs panbench's defaults (``--fusion panbench``: each architecture's own fusion rules,
vectorized, pixel-identical to mmdet's; COCO mask AP on, which the mmdet rows do not compute) and
``--flops-images 0`` (no GFLOPs pass: the mmdet rows count none).  The post-processing table adds, per model
and round, ``panbench 1proc --fusion mmdet`` and ``panbench 1proc --no-ap`` and prints, from each run's
record, per timed image: the forward, the fusion, the post-processing (fusion, segments, AP's instances and
their RLEs), the scoring (PQ, AP's ground-truth RLEs) and the wall time, and the fusion's share of the wall
time; segments, instances and scoring run on a thread beside the forward (the fusion too where the forward runs
on a GPU; on the CPU it runs in the forward), so forward + post + scoring can exceed the wall.
Their PQ metrics are checked against mmdet's stock run, their AP (``--fusion mmdet`` and panbench's) against
each other.

The grid table (``--skip-grid`` leaves it out) runs, per model and round, ``panbench eval`` (forked, defaults)
and the same with a 4-setting ``--grid`` of its own thresholds (GRID below: every setting from one forward,
docs/eval.md, "Grids"), in turn, the order reversed every other round, and prints their medians and ratio
(target: at most 1.5x for demo-mask2former) and the peak resident memory of a process (the records' larger of
``cpu_peak_mib`` and ``cpu_children_peak_mib``); the grid's record of the model's own setting must have the single
run's nine metrics exactly, else the script exits 1.

So, per model: stock / pan-only is what the config costs, pan-only / 1proc what the loop costs
(same config, same layout), 1proc / forked what the process layout gains, stock / forked all of it.
The rows are run ``--repeat`` times; in every round each model's four runs go in turn, and the
order is reversed every other round (so no side always runs first).  Medians are compared.  All
nine metrics of every run must agree with MMDetection's stock run to 1e-9 (a NaN on either side
fails), else the script exits 1 before printing any ratio.

    .venv/bin/python scripts/bench_eval.py [--models mask2former,maskformer,panoptic-fpn] [--limit N]
        [--workers 1] [--repeat 3] [--skip-batch-amp] [--skip-grid | --grid-only]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mmdet_reference  # noqa: E402  (beside this script)

from panbench.pq.matching import METRIC_KEYS  # noqa: E402

SIDES = ("mmdet stock", "mmdet pan-only", "panbench 1proc", "panbench forked")
FUSION_SIDE = "panbench 1proc --fusion mmdet"  # the fusion table's "before"
NO_AP_SIDE = "panbench 1proc --no-ap"  # the post-processing table's run without AP
TOLERANCE = 1e-9


def mmdet_run(config: Path, ckpt: Path, data_root: Path, limit: int | None, workers: int,
              panoptic_only: bool) -> tuple[dict[str, float], float]:
    """Nine metrics and whole-process wall seconds of MMDetection's test loop."""
    refs, wall = mmdet_reference.run_references([(config, ckpt)], data_root, limit=limit, workers=workers,
                                     panoptic_only=panoptic_only, cwd=ROOT)
    return refs[0].metrics, wall


LAST_TIMINGS: dict[str, float] = {}  # the record's timings (and its AP) of the last panbench_eval


def panbench_eval(name: str, ckpt: Path, data_root: Path, limit: int | None, workers: int, cpu_procs: int,
                  batch_size: int = 1, amp: str | None = None, fusion: str = "panbench",
                  extra: tuple[str, ...] = (), results: Path | None = None) -> tuple[dict[str, float], float]:
    """Nine metrics and whole-process wall seconds of ``panbench eval`` (its timings in LAST_TIMINGS)."""
    res = results or Path(tempfile.mkdtemp(prefix="bench_eval_pb_"))
    cmd = [sys.executable, "-m", "panbench", "eval", "--model", name, "--dataset", "demo", "--data-root",
           str(data_root), "--checkpoint", str(ckpt), "--workers", str(workers), "--batch-size", str(batch_size),
           "--results", str(res), "--no-progress", "--no-resume", "--device", "cpu", "--cpu-procs", str(cpu_procs),
           "--fusion", fusion, "--flops-images", "0"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if amp:
        cmd += ["--amp", amp]
    cmd += list(extra)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode:
        from panbench.errors import PanbenchError

        raise PanbenchError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "panbench eval failed")
    rec = json.loads(sorted((res / "runs").glob("*.json"))[0].read_text())
    LAST_TIMINGS.clear()
    LAST_TIMINGS.update(rec["timings"])
    LAST_TIMINGS["ap"] = (rec.get("ap") or {}).get("AP", math.nan)
    return {k: rec["metrics"][k] for k in METRIC_KEYS}, wall


GRID = {"demo-mask2former": ("object_mask_thr=0.6,0.7,0.8,0.9",),
        "demo-maskformer": ("object_mask_thr=0.6,0.7,0.8,0.9",),
        "demo-panoptic-fpn": ("mask_overlap=0.3,0.5", "stuff_area_limit=0,256")}


def grid_table(models: list, data_root: Path, limit: int | None, workers: int, repeat: int) -> None:
    """One run against a 4-setting grid of each model (module docstring), whole-process wall seconds."""
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(repeat):
        for spec, ckpt, _ in models:
            grid = tuple(a for g in GRID[spec.name] for a in ("--grid", g))
            for side in (("one", "grid") if rep % 2 == 0 else ("grid", "one")):
                res = Path(tempfile.mkdtemp(prefix="bench_eval_grid_"))
                metrics, wall = panbench_eval(spec.name, ckpt, data_root, limit, workers, 0, results=res,
                                              extra=grid if side == "grid" else ())
                memory = json.loads(sorted((res / "runs").glob("*.json"))[0].read_text())["memory"]
                times.setdefault((spec.name, side + " MiB"), []).append(
                    max(memory.get("cpu_peak_mib") or 0, memory.get("cpu_children_peak_mib") or 0))
                if side == "grid":
                    doc = json.loads(next((res / "grids").glob("*.json")).read_text())
                    own = json.loads((res / doc["settings"][doc["default"]]["record"]).read_text())["metrics"]
                    times.setdefault((spec.name, "own"), []).append(own)
                else:
                    times.setdefault((spec.name, "metrics"), []).append(metrics)
                times.setdefault((spec.name, side), []).append(wall)
    print(f"\n--grid: whole-process wall seconds of one run and of a 4-setting grid (forked), median of {repeat}")
    print(f"{'model':20} {'grid':>38} {'one':>7} {'grid s':>7} {'ratio':>6} {'one MiB':>8} {'grid MiB':>8}")
    bad = []
    for spec, _, _ in models:
        one, grid = statistics.median(times[(spec.name, "one")]), statistics.median(times[(spec.name, "grid")])
        if any(worst_difference(m, {k: o[k] for k in METRIC_KEYS}) != 0
               for m, o in zip(times[(spec.name, "metrics")], times[(spec.name, "own")])):
            bad.append(spec.name)
        mib = [statistics.median(times[(spec.name, f"{side} MiB")]) for side in ("one", "grid")]
        print(f"{spec.name:20} {' '.join(GRID[spec.name]):>38} {one:7.2f} {grid:7.2f} {grid / one:5.2f}x "
              f"{mib[0]:8.0f} {mib[1]:8.0f}")
    if bad:
        print(f"the grid's own setting differs from the single run: {', '.join(bad)}")
        raise SystemExit(1)
    print("the grid's record of each model's own setting: the single run's nine metrics exactly")


def worst_difference(a: dict[str, float], b: dict[str, float]) -> float:
    """Largest |difference| over the nine metrics; NaN when either side has a NaN (fails any check)."""
    diffs = [abs(a[k] - b[k]) for k in METRIC_KEYS]
    return math.nan if any(math.isnan(d) for d in diffs) else max(diffs)


def post_table(models: list, shares: dict[tuple[str, str], list[dict[str, float]]], repeat: int) -> None:
    """The post-processing table (panbench 1proc: AP on with mmdet's and panbench's fusion, AP off), medians of
    the records' timings per timed image; exits 1 when the two fusions' AP differ."""
    runs = ("mmdet", "panbench", "panbench --no-ap")
    print(f"\npost-processing of panbench 1proc, ms per timed image from the records (median of {repeat}); "
          "post = fusion + segments + AP's instances")
    print(f"{'model':20} {'run':>17} {'forward':>8} {'fusion':>7} {'post':>7} {'scoring':>8} {'wall':>7} "
          f"{'share':>6} {'AP':>9}")
    bad = []
    for spec, _, _ in models:
        for run in runs:
            ts = shares[(spec.name, run)]

            def ms(key: str, ts: list[dict[str, float]] = ts) -> float:
                return statistics.median(1000 * t[key] / max(t["timed_images"], 1) for t in ts)

            share = statistics.median(t["fusion_s"] / t["wall_s"] for t in ts if t["wall_s"] > 0)
            print(f"{spec.name:20} {run:>17} {ms('forward_s'):8.2f} {ms('fusion_s'):7.2f} {ms('postprocess_s'):7.2f} "
                  f"{ms('scoring_s'):8.2f} {statistics.median(t['ms_per_image'] for t in ts):7.2f} "
                  f"{100 * share:5.1f}% {ts[0]['ap']:9.4f}")
        aps = {run: {t["ap"] for t in shares[(spec.name, run)]} for run in runs[:2]}
        if len(aps["mmdet"] | aps["panbench"]) != 1:
            bad.append(f"{spec.name}: AP {aps}")
        on, off = shares[(spec.name, "panbench")], shares[(spec.name, "panbench --no-ap")]
        cost = statistics.median(1000 * (t["postprocess_s"] + t["scoring_s"]) / max(t["timed_images"], 1)
                                 for t in on) - statistics.median(
            1000 * (t["postprocess_s"] + t["scoring_s"]) / max(t["timed_images"], 1) for t in off)
        print(f"{spec.name:20} AP's post-processing + scoring: {cost:+.2f} ms per image (target <= 1 ms)")
    if bad:
        print("AP differs between mmdet's fusion and panbench's: " + "; ".join(bad))
        raise SystemExit(1)
    print("AP of every run: the same with mmdet's fusion and panbench's (printed above; mmdet stock computes none)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mask2former,maskformer,panoptic-fpn")
    ap.add_argument("--workers", type=int, default=1, help="data-loading workers for both (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are compared")
    ap.add_argument("--limit", type=int, help="the first N demo val images (default: all 60)")
    ap.add_argument("--skip-batch-amp", action="store_true", help="leave out the batch/AMP table")
    ap.add_argument("--skip-grid", action="store_true", help="leave out the grid table")
    ap.add_argument("--grid-only", action="store_true", help="the grid table alone (no MMDetection runs)")
    ap.add_argument("--skip-fusion", action="store_true",
                    help="leave out the fusion table (panbench 1proc with --fusion mmdet against its default)")
    a = ap.parse_args()

    from panbench.data.demo import make_demo
    from panbench.errors import PanbenchError
    from panbench.models.mmdet.family import panoptic_only
    from panbench.models.mmdet.mm import load_config
    from panbench.models.registry import resolve

    data_root = make_demo(ROOT / "data" / "demo")
    models = []
    for name in a.models.split(","):
        spec = resolve(name, dataset="demo")[0]
        ckpt = sorted((ROOT / "checkpoints" / "demo").glob(f"{spec.name}-*.pth"))[-1]
        changed = panoptic_only(load_config(spec.config))
        models.append((spec, ckpt, changed))
        if not a.grid_only:
            print(f"{spec.name}: panbench's config changes {', '.join(changed) or 'nothing'} "
                  f"({'mmdet pan-only is run' if changed else 'mmdet pan-only repeats mmdet stock'})")
    if a.grid_only:
        grid_table(models, data_root, a.limit, a.workers, a.repeat)
        return

    runs: dict[tuple[str, str], list[tuple[dict[str, float], float]]] = {}
    shares: dict[tuple[str, str], list[dict[str, float]]] = {}
    for rep in range(a.repeat):
        order = SIDES if rep % 2 == 0 else tuple(reversed(SIDES))
        for spec, ckpt, changed in models:
            for side in order:
                if side == "mmdet pan-only" and not changed:
                    continue
                if side.startswith("mmdet"):
                    out = mmdet_run(spec.config, ckpt, data_root, a.limit, a.workers, side == "mmdet pan-only")
                else:
                    out = panbench_eval(spec.name, ckpt, data_root, a.limit, a.workers,
                                        1 if side == "panbench 1proc" else 0)
                    if side == "panbench 1proc":
                        shares.setdefault((spec.name, "panbench"), []).append(dict(LAST_TIMINGS))
                runs.setdefault((spec.name, side), []).append(out)
            if not a.skip_fusion:  # panbench's loop with mmdet's fusion (the fusion's share before), and without AP
                runs.setdefault((spec.name, FUSION_SIDE), []).append(
                    panbench_eval(spec.name, ckpt, data_root, a.limit, a.workers, 1, fusion="mmdet"))
                shares.setdefault((spec.name, "mmdet"), []).append(dict(LAST_TIMINGS))
                runs.setdefault((spec.name, NO_AP_SIDE), []).append(
                    panbench_eval(spec.name, ckpt, data_root, a.limit, a.workers, 1, extra=("--no-ap",)))
                shares.setdefault((spec.name, "panbench --no-ap"), []).append(dict(LAST_TIMINGS))
            if not changed:
                runs[(spec.name, "mmdet pan-only")] = runs[(spec.name, "mmdet stock")]
            print(f"  round {rep + 1}/{a.repeat} {spec.name} (order: {' -> '.join(order)}): " + ", ".join(
                f"{side} {runs[(spec.name, side)][-1][1]:.2f} s" for side in SIDES), flush=True)

    worst = 0.0
    for spec, _, _ in models:
        ref = runs[(spec.name, "mmdet stock")][0][0]
        for side in (*SIDES, FUSION_SIDE, NO_AP_SIDE):
            for metrics, _ in runs.get((spec.name, side), []):
                d = worst_difference(ref, metrics)
                worst = d if math.isnan(d) else max(worst, d)
    agree = not math.isnan(worst) and worst <= TOLERANCE
    print(f"\nall nine metrics of every run against mmdet stock: max |diff| {worst:.2e} "
          f"({'OK' if agree else 'FAILED'}, tolerance {TOLERANCE:g}; a NaN fails)")
    if not agree:
        for (name, side), v in runs.items():
            print(f"  {name:20} {side:16} PQ " + ", ".join(f"{m['PQ']!r}" for m, _ in v))
        raise SystemExit(1)

    n = a.limit or 60
    med = {k: statistics.median(t for _, t in v) for k, v in runs.items()}
    print(f"\n{n} demo val images; whole-process wall seconds, median of {a.repeat} rounds")
    print(f"{'model':20} {'PQ':>10} " + " ".join(f"{s:>15}" for s in SIDES)
          + f" {'config':>7} {'loop':>7} {'layout':>7} {'total':>7}")
    tot = dict.fromkeys(SIDES, 0.0)
    for spec, _, _ in models:
        t = [med[(spec.name, s)] for s in SIDES]
        for s, x in zip(SIDES, t):
            tot[s] += x
        print(f"{spec.name:20} {runs[(spec.name, 'mmdet stock')][0][0]['PQ']:10.6f} "
              + " ".join(f"{x:15.2f}" for x in t)
              + f" {t[0] / t[1]:6.2f}x {t[1] / t[2]:6.2f}x {t[2] / t[3]:6.2f}x {t[0] / t[3]:6.2f}x")
    t = [tot[s] for s in SIDES]
    print(f"{'total':20} {'':10} " + " ".join(f"{x:15.2f}" for x in t)
          + f" {t[0] / t[1]:6.2f}x {t[1] / t[2]:6.2f}x {t[2] / t[3]:6.2f}x {t[0] / t[3]:6.2f}x")
    print("config = mmdet stock / mmdet pan-only; loop = mmdet pan-only / panbench 1proc (same config, one "
          "process);\nlayout = panbench 1proc / panbench forked; total = mmdet stock / panbench forked "
          "(target >= 1.5x)")

    if not a.skip_fusion:
        post_table(models, shares, a.repeat)
    if not a.skip_grid:
        grid_table(models, data_root, a.limit, a.workers, a.repeat)

    if a.skip_batch_amp:
        return
    print("\nbatched and mixed-precision inference: PQ difference to fp32 batch 1 (panbench forked, same images)")
    print(f"{'model':20} {'setting':>12} {'PQ':>10} {'diff':>9} {'s':>7}")
    for spec, ckpt, _ in models:
        pq_ref = runs[(spec.name, "panbench forked")][0][0]["PQ"]
        for bs, amp in ((4, None), (1, "bf16"), (4, "bf16")):
            try:
                m, t1 = panbench_eval(spec.name, ckpt, data_root, a.limit, a.workers, 0, bs, amp)
            except PanbenchError as e:
                print(f"{spec.name:20} {f'b{bs} ' + (amp or 'fp32'):>12} unsupported: {str(e)[:90]}")
                continue
            print(f"{spec.name:20} {f'b{bs} ' + (amp or 'fp32'):>12} {m['PQ']:10.4f} {m['PQ'] - pq_ref:+9.4f} "
                  f"{t1:7.2f}")


if __name__ == "__main__":
    main()
