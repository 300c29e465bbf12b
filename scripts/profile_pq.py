#!/usr/bin/env python
"""Where `panbench score`'s time goes, stage by stage, on the real and the synthetic set of bench_pq.py.

In process, one thread, every image of the set (the stages in the order `score` runs them; each timed over
all images with `time.perf_counter_ns`, the rest of the loop outside its timer):

  json          reading and parsing both JSONs into (ground truth, prediction) pairs (`load_pairs`)
  png read      one open/read of each PNG file
  png chunks    the header checks, the chunk walk and the IDAT CRCs
  inflate       libdeflate's zlib inflate of the IDAT stream
  unfilter      the C unfilter of the scanlines straight to ids
  segments      segments_info parsed and checked against the categories
  intersection  the intersection table (C pair counts)
  match         the area checks and the match (C)
  stats         the PQ contributions of the match (C fold)
  sums          adding the contributions into the per-category sums
  analyses      the end-of-run analyses on the per-image matches (intervals, by size, dagger, errors)

The batch path as `score` runs it at its defaults (threads, analyses on), one whole child process per repeat: the
wall time of each phase (start-up and imports; both JSONs; the batch pipeline, decode + count + match on the
threads while the calling thread copies the results into columns and adds them up; "matches gathered": the
columns handed to the analyses; the analyses;
printing), the process's CPU time, and the C calls' own time per image on one thread (``pair_tables``, timed
around each call).

Whole processes (median of --repeat runs): interpreter start-up with `import panbench.cli.score` and what it
imports; `score --procs 1 --no-analysis`; `score --procs 2 --no-analysis`; from them the worker hand-off
(2 workers minus the serial part minus half the parallel part).

    .venv/bin/python scripts/profile_pq.py --images 1000
    .venv/bin/python scripts/profile_pq.py --images 5000 --timeline
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_pq import make_data  # noqa: E402
from pq_bench_data import SAMPLE, make_real_set  # noqa: E402

PY = sys.executable
STAGES = ("json", "png read", "png chunks", "inflate", "unfilter", "segments", "intersection", "match", "stats",
          "sums", "analyses")


def in_process(work: Path) -> tuple[dict[str, float], int]:
    """Seconds per stage over every image of ``work`` (one thread)."""
    from panbench.analysis.collect import AnalysisSet
    from panbench.analysis.scoring import run_fields
    from panbench.pq import evaluator, png
    from panbench.pq.coco_format import parse_segments
    from panbench.pq.kernels import _native as ext
    from panbench.pq.kernels import workspace
    from panbench.pq.score import load_pairs, read_truth
    from panbench.pq.sums import PQStats

    t: dict[str, int] = dict.fromkeys(STAGES, 0)
    clock = time.perf_counter_ns
    c0 = clock()
    # as score's batch path reads them
    cats, pairs = load_pairs(read_truth(work / "gt.json"), work / "pred.json", packed=True)
    t["json"] = clock() - c0
    sums, matches = PQStats.zeros(len(cats)), []
    ids = {}
    for gt_ann, pred_ann in pairs:
        for side, folder, ann in (("gt", "gt", gt_ann), ("pred", "pred", pred_ann)):
            path = work / folder / ann["file_name"]
            c0 = clock()
            data = png._read_png(path, "x")
            c1 = clock()
            hdr = png.check_png(data, path, "x")
            idat = png.png_idat(data, path, "x")
            c2 = clock()
            raw, w, h, ch = png.png_scanlines(idat, path, "x", hdr)
            c3 = clock()
            out = workspace(side, (h, w), np.uint32)
            ext.unfilter_ids(raw, w, h, ch, out)
            c4 = clock()
            ids[side] = out
            t["png read"] += c1 - c0
            t["png chunks"] += c2 - c1
            t["inflate"] += c3 - c2
            t["unfilter"] += c4 - c3
        c0 = clock()
        gt = parse_segments(gt_ann["segments_info"], cats, "x", gt=True)
        pred = parse_segments(pred_ann["segments_info"], cats, "x", gt=False)
        c1 = clock()
        inter = evaluator.intersection_table(ids["gt"], gt, ids["pred"], pred, "x")
        c2 = clock()
        evaluator._check_areas(inter, gt, pred, "x")
        match = evaluator.match_image(inter, gt, pred)
        c3 = clock()
        st = evaluator._image_result(inter, gt, pred, match).stats
        c4 = clock()
        sums.add_images([st])
        c5 = clock()
        matches.append(match)
        t["segments"] += c1 - c0
        t["intersection"] += c2 - c1
        t["match"] += c3 - c2
        t["stats"] += c4 - c3
        t["sums"] += c5 - c4
    c0 = clock()
    aset = AnalysisSet.from_images(matches, len(cats), [g["image_id"] for g, _ in pairs], cats.ids, cats.isthing)
    run_fields(aset, cats)
    t["analyses"] = clock() - c0
    return {k: v / 1e9 for k, v in t.items()}, len(pairs)


def whole(cmd: list[str], repeat: int) -> float:
    """Median wall seconds of a whole child process."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def profile(name: str, work: Path, repeat: int) -> None:
    runs = [in_process(work) for _ in range(repeat)]
    n = runs[0][1]
    med = {k: statistics.median(r[0][k] for r in runs) for k in STAGES}
    total = sum(med.values())
    print(f"\n{name}: {n} images, in process, 1 thread, median of {repeat}")
    print(f"  {'stage':14} {'seconds':>8} {'ms/img':>8} {'share':>6}")
    for k in STAGES:
        print(f"  {k:14} {med[k]:8.3f} {1000 * med[k] / n:8.3f} {100 * med[k] / total:5.1f}%")
    print(f"  {'total':14} {total:8.3f} {1000 * total / n:8.3f}")
    files = [str(work / f) for f in ("gt.json", "gt", "pred.json", "pred")]
    score = [PY, "-m", "panbench", "score", "--gt-json", files[0], "--gt-dir", files[1], "--pred-json", files[2],
             "--pred-dir", files[3], "--json", "--no-analysis"]
    start = whole([PY, "-c", "import panbench.cli, panbench.cli.score, panbench.pq.score"], repeat)
    bare = whole([PY, "-c", "pass"], repeat)
    one = whole([*score, "--procs", "1"], repeat)
    two = whole([*score, "--procs", "2"], repeat)
    serial = start + med["json"]
    parallel = one - serial
    print(f"  whole processes, median of {repeat}: interpreter alone {bare:.3f} s, start-up with panbench's imports "
          f"{start:.3f} s; score --no-analysis 1 worker {one:.3f} s, 2 workers {two:.3f} s "
          f"(speed-up {one / two:.2f}x)")
    print(f"  serial part (start-up + json) {serial:.3f} s; parallel part at 1 worker {parallel:.3f} s; 2 workers "
          f"beyond serial + parallel/2: {two - serial - parallel / 2:+.3f} s (fork, hand-off, the last task's wait)")


TIMELINE = """
import contextlib, io, json, resource, sys, time
t0 = time.perf_counter()
from panbench.cli import main
import panbench.analysis.scoring as scoring, panbench.pq.batch as batch, panbench.pq.score as score
marks = {'imports': time.perf_counter()}
def mark(name, fn):
    def run(*a, **k):
        out = fn(*a, **k)
        marks[name] = time.perf_counter()
        return out
    return run
score.load_pairs = mark('json', score.load_pairs)
batch.score_batch = mark('pipeline', batch.score_batch)
run_fields = scoring.run_fields
def fields(*a, **k):
    marks['matches gathered'] = time.perf_counter()
    return mark('analyses', run_fields)(*a, **k)
scoring.run_fields = fields
gj, gd, pj, pd, procs = sys.argv[1:6]
with contextlib.redirect_stdout(io.StringIO()):
    main(['score', '--gt-json', gj, '--gt-dir', gd, '--pred-json', pj, '--pred-dir', pd, '--json']
         + (['--procs', procs] if procs != 'default' else []))
marks['printing'] = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
phases, last = {}, t0
for k, v in sorted(marks.items(), key=lambda kv: kv[1]):
    phases[k], last = v - last, v
print(json.dumps({'phases': phases, 'total': last - t0, 'cpu': ru.ru_utime + ru.ru_stime}))
"""

C_CALLS = """
import json, sys, time
import panbench.pq.batch as batch
from panbench.pq.score import Scoring, score_stream
batch.available()
from panbench.pq import kernels
ext, spent = kernels._native, [0.0]
class Timed:
    def __getattr__(self, name):
        return getattr(ext, name)
    def pair_tables(self, items, limit):
        t = time.perf_counter()
        out = ext.pair_tables(items, limit)
        spent[0] += time.perf_counter() - t
        return out
kernels._native = Timed()
gj, gd, pj, pd = sys.argv[1:5]
t = time.perf_counter()
ev, pairs = score_stream(read_truth(gj), gd, pj, pd, 1, Scoring(keep_images=True))
print(json.dumps({'c': spent[0], 'all': time.perf_counter() - t, 'n': len(pairs)}))
"""


def timeline(name: str, work: Path, repeat: int) -> None:
    """The batch path's phases at score's defaults (whole processes) and its C calls' share on one thread."""
    import json

    files = [str(work / f) for f in ("gt.json", "gt", "pred.json", "pred")]
    runs = [json.loads(subprocess.run([PY, "-c", TIMELINE, *files, "default"], check=True, capture_output=True,
                                      text=True, cwd=ROOT).stdout) for _ in range(repeat)]
    calls = [json.loads(subprocess.run([PY, "-c", C_CALLS, *files], check=True, capture_output=True, text=True,
                                       cwd=ROOT).stdout) for _ in range(repeat)]
    n = calls[0]["n"]
    print(f"\n{name}: score at its defaults ({os.cpu_count()} cores), whole process, median of {repeat}")
    for k in runs[0]["phases"]:
        print(f"  {k:18} {statistics.median(r['phases'][k] for r in runs):7.3f} s")
    total, cpu = (statistics.median(r[k] for r in runs) for k in ("total", "cpu"))
    print(f"  {'total':18} {total:7.3f} s (CPU {cpu:.3f} s: {cpu / total:.2f} cores busy on average)")
    c, whole_in = (statistics.median(r[k] for r in calls) for k in ("c", "all"))
    print(f"  one thread, in process: the C calls (read, check, inflate, unfilter, count, match) {1000 * c / n:.3f} "
          f"ms/img, the rest of the scoring (JSON, segments, results, sums) {1000 * (whole_in - c) / n:.3f} ms/img")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-pq"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=Path, default=SAMPLE)
    ap.add_argument("--set", choices=("real", "synthetic", "both"), default="both")
    ap.add_argument("--timeline", action="store_true", help="the batch path's phases at score's defaults instead")
    a = ap.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"
    sets = []
    if a.set in ("real", "both"):
        real = a.workdir / f"real{a.images}"
        real.mkdir(parents=True, exist_ok=True)
        print(make_real_set(real, a.images, a.sample))
        sets.append(("real set (COCO's own PNGs)", real))
    if a.set in ("synthetic", "both"):
        synth = a.workdir / f"n{a.images}"
        synth.mkdir(parents=True, exist_ok=True)
        make_data(synth, a.images)
        sets.append(("synthetic set", synth))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, work in sets:
        (timeline if a.timeline else profile)(name, work, a.repeat)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
