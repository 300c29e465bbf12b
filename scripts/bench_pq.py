#!/usr/bin/env python
"""PQ scoring speed: panbench vs panopticapi vs hotcoco, side by side in one run.

Two data sets, each compared the ways below (``--set real|synthetic|both``, default both):

- real: COCO's own annotation PNGs (the two-image val2017 sample in ../shared/data replicated to ``--images``
  distinct files, each cropped, rolled and re-encoded; or with ``--coco DIR`` every val2017 ground-truth PNG,
  byte for byte) as the ground truth, and predictions perturbed the ways a model errs (shift, erosion, merge,
  split, relabel, drop, hallucinated segments; scripts/pq_bench_data.py);
- synthetic: generated 640x480 id maps with about 20 segments each, ground truth and perturbed predictions,
  written with PIL like COCO's converters (panbench.data.synth).

Whole processes (the timer is around the child process: interpreter start, imports, reading both
JSONs, decoding both PNG folders, scoring, printing); panbench runs with ``--no-analysis`` here, so
every side computes PQ only (the analyses' cost is measured separately, below):

  panbench score (1 thread)  vs  panopticapi pq_compute_single_core (1 core)
                             vs  panopticapi pq_compute (all cores)
                             vs  hotcoco PanopticEval (its own threads, and 1 thread; and with numpy's
                                 OpenBLAS on one thread, as panbench score loads it)
  panbench score (default: a thread per available core)  vs  hotcoco PanopticEval (default: its own
                             threads): each tool as a user runs it, at its defaults

The floor: a child process that only decodes both PNG folders into id maps (no JSON, no scoring,
one thread) with each decoder available (the batch path's C decode, one file a call: ``decode_ids``;
panbench's per-image ``read_ids``; pyspng, PIL; the last two with panbench's C ``rgb2id``), each map's ids
summed so that no decode can be skipped; the fastest is what a PNG-based scorer cannot beat, and panbench's
single thread is compared with it (whole processes, and in process).

In process (each side in its own child process; the timer starts after the imports and stops
when the metrics are computed; interpreter start and imports are outside it):

  hotcoco in process          inside: PanopticEval(gt.json, pred.json, gt_dir, pred_dir) and
                              evaluate(): both JSONs, both PNG folders, scoring
  panbench files in process   inside: score_files(..., workers=1): both JSONs, both PNG folders, scoring
                              (what hotcoco does), one thread
  panbench in-memory preds    inside: both JSONs, the ground-truth PNGs, scoring; outside: decoding
                              the prediction PNGs (they stand for a model's output, which eval
                              scores from memory; hotcoco has no in-memory input)

Each headline ratio of medians is printed beside the median of its per-round ratios: the two sides run back to
back in each round (panbench at every default between hotcoco and ``--no-analysis``, the order turned every
round), so that a drift of the machine's speed between the rounds cancels out; ``--headline ROUNDS`` runs only
that trio, as many rounds as asked (a round of the whole comparison takes panopticapi's seconds too).  The caller's
BLAS thread counts (OPENBLAS/GOTO/OMP/MKL_NUM_THREADS) are left out of every child's environment: each tool runs
at its own defaults, and the rows that set a count say so.

Before any timing, the same numbers: ``score --json`` at its defaults on the batch path (default threads and 1
thread) must print the same text as on the per-image path (``PANBENCH_PER_IMAGE=1``), every metric, per-class
count and analysis included, or the script exits 1.  Every tool's PQ must equal panbench's to 1e-9, or the script
exits 1 before printing any ratio.
Also panbench's peak memory at N/4 and N images.

Every child process runs with Python's bytecode caches on (as an installed package; the script clears
PYTHONDONTWRITEBYTECODE).

The analyses, interleaved with the runs above (``--analyses-only``: only these):

  panbench score (default: PQ + per-image matches + intervals, PQ by size, PQ-dagger, errors)
                             vs  panbench score --no-analysis (PQ only)      target: under 1.10x
  panbench score --boundary  vs  panbench score --no-analysis                target: under 2x
  (whole processes, 1 thread and one BLAS thread; their PQ must be equal, bit for bit, before a ratio
  is printed)

With ``--eval-demo``, the cost for ``eval`` on the demo set (needs mmdet): one
``panbench eval --model mask2former --dataset demo --device cpu --cpu-procs 1`` gives eval's time
per image (the record's wall time over its timed images); then, on the same 60 images in memory
(ground-truth ids and a perturbed copy as the prediction, as eval scores a model's map), the time
of ``score_pair(...).stats`` (PQ only) vs ``score_pair`` (the result kept) per image, and the
end-of-run analyses (``run_fields`` on the eval's per-image file).  The cost printed is
(record - PQ only) per image + end-of-run analyses / images, relative to eval's time per image.

    .venv/bin/python scripts/bench_pq.py --images 1000
    .venv/bin/python scripts/bench_pq.py --set real --images 5000
    .venv/bin/python scripts/bench_pq.py --set real --coco data/coco
    .venv/bin/python scripts/bench_pq.py --images 500 --analyses-only --eval-demo
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panbench.data.synth import coco_like_categories, perturb, random_image, write_panoptic  # noqa: E402
from panbench.pq.score import default_workers  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from pq_bench_data import SAMPLE, make_coco_set, make_real_set  # noqa: E402

PY = sys.executable
RUN_AND_MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE); "
    "dt = time.perf_counter() - t; "
    "sys.stderr.write(r.stderr.decode()[-2000:]) if r.returncode else None; "
    "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); "
    "print(r.stdout.decode())"
)

PANOPTICAPI_ONE_CORE = """
import json, sys
from panopticapi.evaluation import pq_compute_single_core
gj, gd, pj, pd = sys.argv[1:5]
gt, pred = json.load(open(gj)), json.load(open(pj))
cats = {c['id']: c for c in gt['categories']}
p = {a['image_id']: a for a in pred['annotations']}
stat = pq_compute_single_core(0, [(a, p[a['image_id']]) for a in gt['annotations']], gd, pd, cats)
print(json.dumps({'PQ': 100 * stat.pq_average(cats, isthing=None)[0]['pq']}))
"""

PANOPTICAPI_ALL_CORES = """
import json, sys
from panopticapi.evaluation import pq_compute
gj, gd, pj, pd = sys.argv[1:5]
res = pq_compute(gj, pj, gt_folder=gd, pred_folder=pd)
print(json.dumps({'PQ': 100 * res['All']['pq']}))
"""

HOTCOCO = """
import json, sys
from hotcoco.panoptic import PanopticEval
gj, gd, pj, pd = sys.argv[1:5]
ev = PanopticEval(gj, pj, gt_folder=gd, pred_folder=pd)
ev.evaluate()
print(json.dumps({'PQ': 100 * ev.stats[0]}))
"""

# The floor: decoding both PNG folders into id maps (R + 256 G + 256^2 B), no JSON, no scoring, one process, one
# thread, with each decoder available; the fastest is the floor a PNG-based scorer cannot beat.  Whole process
# (the timer of `measure` around it) and in process (its own timer, after the imports).
FLOOR = """
import json, sys, time
from pathlib import Path
import numpy as np
gd, pd, decoder = sys.argv[1:4]
files = sorted(Path(gd).glob('*.png')) + sorted(Path(pd).glob('*.png'))
if decoder == 'batch':  # score's batch path decoding each file (its C reads, checks, inflates, unfilters)
    import os
    from panbench.pq import batch, native
    assert batch.available(), 'the batch path is not installed'
    def ids(f):
        total = native.pixels().decode_ids([os.fsencode(f)], 2**28)[0]
        if total is None:
            raise SystemExit(f'{f}: the batch path leaves this PNG to the per-image path; no floor with it')
        return total
elif decoder == 'panbench':
    from panbench.pq.png import read_ids
    def ids(f):
        return read_ids(f, 'floor', slot='floor')
elif decoder == 'pyspng':
    import pyspng
    from panbench.pq.kernels import rgb2id
    def ids(f):
        return rgb2id(pyspng.load(f.read_bytes())[..., :3], 'floor')
else:
    from PIL import Image
    from panbench.pq.kernels import rgb2id
    def ids(f):
        with Image.open(f) as im:
            return rgb2id(np.asarray(im.convert('RGB')), 'floor')
t = time.perf_counter()
total = 0
for f in files:
    x = ids(f)
    total += x if isinstance(x, int) else int(x.sum(dtype=np.uint64))
dt = time.perf_counter() - t
print(json.dumps({'seconds': dt, 'files': len(files), 'check': total}))
"""
FLOOR_DECODERS = ("batch", "panbench", "pyspng", "PIL")

# In process: the timer starts after the imports and stops when the metrics are computed.
HOTCOCO_IN_PROCESS = """
import json, sys, time
from hotcoco.panoptic import PanopticEval
gj, gd, pj, pd = sys.argv[1:5]
t = time.perf_counter()
ev = PanopticEval(gj, pj, gt_folder=gd, pred_folder=pd)
ev.evaluate()
dt = time.perf_counter() - t
print(json.dumps({'PQ': 100 * ev.stats[0], 'seconds': dt}))
"""

PANBENCH_IN_PROCESS = """
import json, sys, time
from pathlib import Path
from panbench.pq.accumulator import PanopticAccumulator
from panbench.pq.png import read_ids
from panbench.pq.score import load_pairs, read_truth
gj, gd, pj, pd, mode = sys.argv[1:6]
preds = {}
if mode == 'memory':  # the predictions stand for a model's output: decoded before the timer starts
    for a in json.loads(Path(pj).read_text())['annotations']:
        preds[a['file_name']] = read_ids(Path(pd) / a['file_name'], 'pred').copy()
t = time.perf_counter()
if mode == 'files':  # score's own path (the batch path where it is installed), one thread
    from panbench.pq.score import score_files
    pq = score_files(gj, gd, pj, pd, workers=1)['PQ']
    print(json.dumps({'PQ': pq, 'seconds': time.perf_counter() - t}))
    sys.exit(0)
cats, pairs = load_pairs(read_truth(Path(gj)), Path(pj))
ev = PanopticAccumulator(cats)
for gt_ann, pred_ann in pairs:
    pred_ids = preds[pred_ann['file_name']] if mode == 'memory' else read_ids(Path(pd) / pred_ann['file_name'], 'pred')
    gt_ids = read_ids(Path(gd) / gt_ann['file_name'], 'gt', slot='gt')
    ev.add(score_pair(ev.categories, gt_ids, gt_ann['segments_info'], pred_ids, pred_ann['segments_info']))
pq = ev.evaluate()['PQ']
dt = time.perf_counter() - t
print(json.dumps({'PQ': pq, 'seconds': dt}))
"""


def make_data(work: Path, n: int, seed: int = 0) -> None:
    """Generate `n` 640x480 images (ground truth + perturbed prediction) unless already there."""
    stamp = work / f"done-{n}-{seed}"
    if stamp.exists():
        return
    rng = np.random.default_rng(seed)
    cats = coco_like_categories(80, 53)
    gt, pred = [], []
    t = time.perf_counter()
    for i in range(1, n + 1):
        g = random_image(rng, 480, 640, cats, n_stuff=(3, 6), n_things=(17, 24))
        gt.append((i, g))
        pred.append((i, perturb(rng, g, cats)))
        if len(gt) == 100 or i == n:  # write in chunks to keep memory low
            write_panoptic(work, "gt_part", gt, cats)
            write_panoptic(work, "pred_part", pred, cats)
            for name, part in (("gt", gt), ("pred", pred)):
                (work / name).mkdir(exist_ok=True)
                for image_id, _ in part:
                    f = f"{image_id:012d}.png"
                    os.replace(work / f"{name}_part" / f, work / name / f)
                js = json.loads((work / f"{name}_part.json").read_text())
                acc = work / f"{name}.acc.jsonl"
                with open(acc, "a") as fh:
                    for a in js["annotations"]:
                        fh.write(json.dumps(a) + "\n")
            gt, pred = [], []
    for name in ("gt", "pred"):
        anns = [json.loads(line) for line in open(work / f"{name}.acc.jsonl")]
        images = [{"id": a["image_id"], "file_name": a["file_name"].replace(".png", ".jpg"),
                   "height": 480, "width": 640} for a in anns]
        (work / f"{name}.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
        (work / f"{name}.acc.jsonl").unlink()
    n_segs = np.mean([len(a["segments_info"]) for a in json.loads((work / "gt.json").read_text())["annotations"]])
    print(f"generated {n} images 640x480, {n_segs:.1f} segments/image on average, in {time.perf_counter() - t:.0f} s")
    stamp.write_text("ok")


def subset_json(work: Path, name: str, k: int) -> Path:
    out = work / f"{name}.{k}.json"
    if not out.exists():
        d = json.loads((work / f"{name}.json").read_text())
        d["annotations"] = d["annotations"][:k]
        d["images"] = d["images"][:k]
        out.write_text(json.dumps(d))
    return out


# BLAS thread counts of the caller's shell: left out of every child's environment, so that each tool runs at its
# own defaults (a row that sets one says so)
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of a whole child process, plus its stdout."""
    base = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    r = subprocess.run([PY, "-c", RUN_AND_MEASURE, *cmd], capture_output=True, text=True, env={**base, **(env or {})})
    head, _, child_out = r.stdout.partition("\n")
    dt, rss, rc = head.split()
    if int(rc) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return float(dt), int(rss) / 1024, child_out


def last_json(out: str) -> dict:
    """The JSON a child printed last (panopticapi prints progress lines before it)."""
    return json.loads(out.strip().splitlines()[-1])


def in_process(code: str, files: list[str], *extra: str) -> tuple[float, float]:
    """Seconds inside a child's own timer (imports outside it) and the PQ it computed."""
    r = subprocess.run([PY, "-c", code, *files, *extra], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"failed in process:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["seconds"], out["PQ"]


# 1 thread on 1 core: OpenBLAS (the bootstrap's matrix product) would otherwise start a thread per core,
# whose spinning costs a loaded shared machine more than the product itself
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def analyses_overhead(score: list[str], repeat: int, n: int) -> None:
    """score with the default analyses / with --boundary vs --no-analysis, interleaved; PQ checked equal."""
    runs: dict[str, list[tuple[float, float, str]]] = {}
    sides = {"plain": ["--no-analysis"], "default": [], "boundary": ["--boundary"]}
    for extra in sides.values():  # untimed: writes the bytecode caches each side imports (see main)
        measure([PY, *score, *extra], env=ONE_THREAD)
    for i in range(repeat):  # the order turned every round: plain and default always side by side
        for key, extra in list(sides.items())[:: 1 if i % 2 == 0 else -1]:
            runs.setdefault(key, []).append(measure([PY, *score, *extra], env=ONE_THREAD))
    pqs = {f"{key} run {k + 1}": last_json(r[2])["PQ"] for key in runs for k, r in enumerate(runs[key])}
    base = pqs["plain run 1"]
    bad = {k: v for k, v in pqs.items() if v != base}
    print(f"\nPQ of score with and without the analyses: {base!r} "
          + ("in every run, bit for bit" if not bad else "DIFFERENT: " + str(bad)))
    if bad:
        raise SystemExit(1)
    t = {key: statistics.median(r[0] for r in runs[key]) for key in runs}
    print(f"analyses in `panbench score`, {n} images, 1 thread, OPENBLAS/OMP/MKL_NUM_THREADS=1, whole processes, "
          f"bytecode caches on, one untimed warm-up run per side, median of {repeat} interleaved runs")
    for key, label in (("plain", "score --no-analysis (PQ only)"),
                       ("default", "score (PQ + records + ci, by_size, pq_dagger, errors)"),
                       ("boundary", "score --boundary (the same + boundary PQ)")):
        print(f"  {label:58} " + ", ".join(f"{r[0]:.2f}" for r in runs[key]) + f" s  (median {t[key]:.2f} s)")
    for key, label, target in (("default", "default analyses / PQ only:", "< 1.10x"),
                               ("boundary", "boundary / PQ only:        ", "< 2x")):
        ratios = [x[0] / y[0] for x, y in zip(runs[key], runs["plain"], strict=True)]
        print(f"  {label} {t[key] / t['plain']:.3f}x  (target {target}); runs of one round: "
              f"{statistics.median(ratios):.3f}x per round ({', '.join(f'{r:.3f}' for r in ratios)})")


def headline(files: list[str], score: list[str], rounds: int) -> None:
    """Only the headline trio, ``rounds`` times: hotcoco, panbench at every default and panbench --no-analysis
    back to back in each round (the order turned every round), as in the whole comparison, where each round also
    runs panopticapi (seconds a round); every run's PQ is checked against panbench's before any ratio."""
    trio = [("pb_default", [PY, *score, "--no-analysis"]), ("pb_full", [PY, *score]),
            ("hc", [PY, "-c", HOTCOCO, *files])]
    reps: dict[str, list[tuple[float, float, str]]] = {}
    for i in range(rounds):
        for key, cmd in trio if i % 2 == 0 else trio[::-1]:
            reps.setdefault(key, []).append(measure(cmd))
    pq = last_json(reps["pb_full"][0][2])["PQ"]
    off = [f"{key} run {k + 1}" for key, runs in reps.items() for k, r in enumerate(runs)
           if abs(last_json(r[2])["PQ"] - pq) > 1e-9]
    if off:
        raise SystemExit(f"PQ differs from panbench score's {pq!r} in: {', '.join(off)}")
    print(f"PQ of every run equals panbench score's {pq!r} to 1e-9; {rounds} rounds, whole processes")
    names = {"hc": "hotcoco (its threads)", "pb_full": "panbench every default", "pb_default": "panbench --no-analysis"}
    for key, name in names.items():
        print(f"  {name:24} median {statistics.median(r[0] for r in reps[key]):.2f} s; runs: "
              f"{', '.join(f'{r[0]:.2f}' for r in reps[key])}")
    for num, den, what in (("hc", "pb_full", "hotcoco / panbench at every default (target >= 1.5x)"),
                           ("hc", "pb_default", "hotcoco / panbench --no-analysis (both PQ only)"),
                           ("pb_full", "pb_default", "every default / --no-analysis (target <= 1.10x)")):
        ratios = [x[0] / y[0] for x, y in zip(reps[num], reps[den], strict=True)]
        of_medians = statistics.median(r[0] for r in reps[num]) / statistics.median(r[0] for r in reps[den])
        print(f"  {what}: {of_medians:.2f}x (ratio of medians), {statistics.median(ratios):.2f}x (median of the "
              f"per-round ratios; quartiles {statistics.quantiles(ratios, n=4)[0]:.2f}-"
              f"{statistics.quantiles(ratios, n=4)[2]:.2f})")


def same_numbers(score: list[str]) -> None:
    """``score --json`` at its defaults (the batch path, every analysis) against the per-image path
    (``PANBENCH_PER_IMAGE=1``) and against one thread: the whole output must be the same text, or exit 1."""
    outs = {"batch path, default threads": measure([PY, *score])[2],
            "batch path, 1 thread": measure([PY, *score, "--procs", "1"])[2],
            "per-image path (PANBENCH_PER_IMAGE=1)": measure([PY, *score], env={"PANBENCH_PER_IMAGE": "1"})[2]}
    ref = outs["per-image path (PANBENCH_PER_IMAGE=1)"]
    bad = [k for k, v in outs.items() if v != ref]
    keys = sorted(json.loads(ref))
    print(f"same numbers: `score --json` output of {', '.join(outs)}: "
          + (f"identical text ({len(ref)} bytes; keys {', '.join(keys)})" if not bad
             else "DIFFERENT: " + ", ".join(bad)))
    if bad:
        raise SystemExit(1)


def eval_overhead(work: Path, repeat: int) -> None:
    """The analyses' cost for eval on the demo set, relative to eval's time per image."""
    from panbench.analysis import AnalysisSet
    from panbench.analysis.scoring import run_fields
    from panbench.data.datasets import load_dataset
    from panbench.data.demo import make_demo
    from panbench.data.synth import PanopticImage, perturb
    from panbench.pq.evaluator import score_pair
    from panbench.pq.png import read_ids

    root = make_demo(ROOT / "data" / "demo")
    results = work / "eval-demo"
    shutil.rmtree(results, ignore_errors=True)
    cmd = [PY, "-m", "panbench", "eval", "--model", "mask2former", "--dataset", "demo", "--data-root", str(root),
           "--device", "cpu", "--cpu-procs", "1", "--no-resume", "--no-progress", "--results", str(results)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"eval failed:\n{r.stderr[-2000:]}")
    rec = json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())
    per_image_eval = rec["timings"]["wall_s"] / rec["timings"]["timed_images"]
    ds = load_dataset(root, name="demo")
    cats, rng = ds.categories, np.random.default_rng(0)
    cat_dicts = [{"id": i, "isthing": int(t)} for i, t in zip(cats.ids, cats.isthing)]
    items = []
    for s in ds.samples:
        gt_ids = read_ids(s.gt_png, "gt").copy()
        p = perturb(rng, PanopticImage(gt_ids, s.gt_ann["segments_info"]), cat_dicts)
        items.append((gt_ids, s.gt_ann["segments_info"], p.ids, p.segments_info))
    sides = {"plain": lambda it: score_pair(cats, *it).stats, "record": lambda it: score_pair(cats, *it)}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeat):
        for key, fn in sides.items():
            t = time.perf_counter()
            for it in items:
                fn(it)
            times[key].append((time.perf_counter() - t) / len(items))
    aset = AnalysisSet.load(results / rec["analysis_file"])
    t_end = []
    for _ in range(repeat):
        t = time.perf_counter()
        run_fields(aset, cats)
        t_end.append(time.perf_counter() - t)
    plain, with_rec, end = (statistics.median(times["plain"]), statistics.median(times["record"]),
                            statistics.median(t_end))
    n = len(items)
    cost = (with_rec - plain) + end / n
    print(f"\nanalyses in `panbench eval` on the demo set ({n} images, median of {repeat} interleaved repeats)")
    print(f"  eval's time per image (mask2former, CPU, 1 process: record wall_s / timed_images): "
          f"{1000 * per_image_eval:.1f} ms")
    print(f"  per image, in memory: score_pair(...).stats (PQ only) {1000 * plain:.3f} ms, score_pair "
          f"(the result kept) {1000 * with_rec:.3f} ms")
    print(f"  end of run: run_fields (ci with 1000 resamples, by_size, pq_dagger, errors) on the eval's {n}-image "
          f"file: {1000 * end:.1f} ms")
    print(f"  cost: (record - PQ only) + end of run / {n} = {1000 * cost:.3f} ms per image = "
          f"{100 * cost / per_image_eval:.2f}% of eval's time per image  (target < 10%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-pq"))
    ap.add_argument("--set", choices=("real", "synthetic", "both"), default="both",
                    help="the data: COCO's own PNGs replicated and perturbed (real), generated (synthetic), or both")
    ap.add_argument("--sample", type=Path, default=SAMPLE,
                    help="the real PNGs to replicate: a COCO-layout annotations folder (default: the shared sample)")
    ap.add_argument("--coco", type=Path, help="a COCO download: score val2017's ground-truth PNGs against a "
                    "perturbed copy instead of the replicated sample (the real set)")
    ap.add_argument("--skip-all-cores", action="store_true", help="skip panopticapi's multi-core run")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the headline comparisons (medians compared)")
    ap.add_argument("--analyses-only", action="store_true", help="only the analyses' cost (no panopticapi, hotcoco)")
    ap.add_argument("--headline", type=int, metavar="ROUNDS",
                    help="only hotcoco against panbench at every default and --no-analysis, ROUNDS (2 or more) rounds")
    ap.add_argument("--eval-demo", action="store_true", help="also the analyses' cost for eval on the demo set")
    a = ap.parse_args()
    if a.headline is not None and a.headline < 2:
        ap.error("--headline: at least 2 rounds (its quartiles need two ratios)")
    # Every child runs as an installed package does: with Python's bytecode caches (a shell with
    # PYTHONDONTWRITEBYTECODE=1 would make each run compile every module it imports again).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sets = ("real", "synthetic") if a.set == "both" else (a.set,)
    for name in sets:
        if name == "real":
            work = a.workdir / ("coco" if a.coco else f"real{a.images}")
            work.mkdir(parents=True, exist_ok=True)
            what = make_coco_set(work, a.coco) if a.coco else make_real_set(work, a.images, a.sample)
            n = len(json.loads((work / "gt.json").read_text())["annotations"])
        else:
            work = a.workdir / f"n{a.images}"
            work.mkdir(parents=True, exist_ok=True)
            make_data(work, a.images)
            what, n = f"synthetic: generated 640x480 id maps, {a.images} images (panbench.data.synth)", a.images
        print(f"\n===== the {name} set: {what}")
        bench_set(work, n, a, real=name == "real")
    if a.eval_demo:
        eval_overhead(a.workdir, a.repeat)


def bench_set(work: Path, n: int, a: argparse.Namespace, real: bool) -> None:
    """Every comparison on one data set (the PNG folders and JSONs under ``work``)."""
    files = [str(work / "gt.json"), str(work / "gt"), str(work / "pred.json"), str(work / "pred")]
    score = ["-m", "panbench", "score", "--gt-json", files[0], "--gt-dir", files[1],
             "--pred-json", files[2], "--pred-dir", files[3], "--json"]
    same_numbers(score)
    if a.analyses_only:
        analyses_overhead([*score, "--procs", "1"], a.repeat, n)
        return
    if a.headline is not None:
        headline(files, score, a.headline)
        return
    analyses = [*score, "--procs", "1"]
    score = [*score, "--no-analysis"]  # the tool comparisons: PQ only on every side (the analyses: below)
    rows = []
    pqs: dict[str, float] = {}  # every tool's PQ, checked against panbench's before any ratio is printed

    # The headline comparisons run a.repeat times, interleaved, and their medians are compared
    # (this machine's speed drifts by 10-20% between runs).
    reps: dict[str, list[tuple[float, float, str]]] = {}
    inproc: dict[str, list[tuple[float, float]]] = {}
    floor_in: dict[str, list[float]] = {}
    for i in range(a.repeat):
        reps.setdefault("pb", []).append(measure([PY, *score, "--procs", "1"]))
        # each tool at its defaults back to back (pb_full beside both others, the order turned every round): the
        # per-round ratios of the adjacent runs drift less than a ratio of medians taken seconds apart
        adjacent = [("pb_default", [PY, *score]),
                    ("pb_full", [PY, *analyses[:-2]]),  # every default: threads, analyses
                    ("hc", [PY, "-c", HOTCOCO, *files])]
        for key, cmd in adjacent if i % 2 == 0 else adjacent[::-1]:
            reps.setdefault(key, []).append(measure(cmd))
        for dec in FLOOR_DECODERS:
            r = measure([PY, "-c", FLOOR, files[1], files[3], dec], env=ONE_THREAD)
            reps.setdefault(f"floor {dec}", []).append(r)
            floor_in.setdefault(dec, []).append(last_json(r[2])["seconds"])
        reps.setdefault("api1", []).append(measure([PY, "-c", PANOPTICAPI_ONE_CORE, *files]))
        reps.setdefault("hc1", []).append(measure([PY, "-c", HOTCOCO, *files], env={"RAYON_NUM_THREADS": "1"}))
        # hotcoco with numpy's OpenBLAS on one thread, as `panbench score` loads it: without the spinning worker
        reps.setdefault("hc_blas1", []).append(measure([PY, "-c", HOTCOCO, *files],
                                                       env={"OPENBLAS_NUM_THREADS": "1"}))
        inproc.setdefault("hc", []).append(in_process(HOTCOCO_IN_PROCESS, files))
        inproc.setdefault("pb_files", []).append(in_process(PANBENCH_IN_PROCESS, files, "files"))
        inproc.setdefault("pb_mem", []).append(in_process(PANBENCH_IN_PROCESS, files, "memory"))
    checks = {last_json(r[2])["check"] for dec in FLOOR_DECODERS for r in reps[f"floor {dec}"]}
    if len(checks) != 1:
        raise SystemExit(f"the floor's decoders decode different ids: {checks}")
    for key in reps:
        if key.startswith("floor"):
            continue
        for k, r in enumerate(reps[key]):
            pqs[f"{key} run {k + 1}"] = last_json(r[2])["PQ"]
    for key in inproc:
        for k, (_, pq) in enumerate(inproc[key]):
            pqs[f"{key} in process run {k + 1}"] = pq

    def med(key: str) -> tuple[float, float]:
        return (statistics.median(r[0] for r in reps[key]), max(r[1] for r in reps[key]))

    def per_round(num: str, den: str) -> str:
        """The median of the rounds' ratios num / den (runs back to back), and each of them."""
        ratios = [x[0] / y[0] for x, y in zip(reps[num], reps[den], strict=True)]
        return f"{statistics.median(ratios):.2f}x per round ({', '.join(f'{r:.2f}' for r in ratios)})"

    def med_in(key: str) -> float:
        return statistics.median(t for t, _ in inproc[key])

    (t_pb, m_pb), (t_api1, m_api1), (t_hc, m_hc), (t_hc1, m_hc1) = (med(k) for k in ("pb", "api1", "hc", "hc1"))
    t_hc_in, t_pbf_in, t_mem = med_in("hc"), med_in("pb_files"), med_in("pb_mem")
    pq_pb = last_json(reps["pb"][0][2])["PQ"]
    rows.append(("panbench score, 1 thread (PNG->PNG)", t_pb, m_pb))
    rows.append(("panopticapi, 1 core", t_api1, m_api1))
    if not a.skip_all_cores:
        t_apiN, m_apiN, out_apiN = measure([PY, "-c", PANOPTICAPI_ALL_CORES, *files])
        pqs["panopticapi all cores"] = last_json(out_apiN)["PQ"]
        rows.append((f"panopticapi pq_compute, {os.cpu_count()} cores", t_apiN, m_apiN))
    rows.append(("hotcoco PanopticEval (own threads)", t_hc, m_hc))
    rows.append(("hotcoco PanopticEval (RAYON_NUM_THREADS=1)", t_hc1, m_hc1))
    t_hcb, m_hcb = med("hc_blas1")
    rows.append(("hotcoco PanopticEval (OPENBLAS_NUM_THREADS=1)", t_hcb, m_hcb))
    t_pbd, m_pbd = med("pb_default")
    rows.append((f"panbench score --no-analysis, default threads ({default_workers(n)})", t_pbd, m_pbd))
    t_full, m_full = med("pb_full")
    rows.append((f"panbench score, every default ({default_workers(n)} threads, analyses on)", t_full, m_full))

    quarter = max(1, n // 4)
    score_q = list(score)
    score_q[score_q.index(files[0])] = str(subset_json(work, "gt", quarter))
    t_q, m_q, _ = measure([PY, *score_q, "--procs", "1"])

    bad = {k: v for k, v in pqs.items() if not abs(v - pq_pb) <= 1e-9}  # a NaN is bad too
    print(f"\nPQ of every run against panbench score's {pq_pb!r}: "
          + ("all equal to 1e-9" if not bad else "DIFFERENT: " + ", ".join(f"{k} {v!r}" for k, v in bad.items())))
    if bad:
        raise SystemExit(1)

    print(f"\n{n} images (PQ {pq_pb:.6f}); panbench 1 thread, panopticapi 1 core, hotcoco and the "
          f"in-process runs: median of {a.repeat} interleaved runs")
    for key, label in (("pb", "panbench 1 thread"), ("api1", "panopticapi 1 core"), ("hc", "hotcoco"),
                       ("pb_full", "panbench every default"), ("pb_default", "panbench --no-analysis")):
        print(f"  {label:28} runs: " + ", ".join(f"{r[0]:.2f}" for r in reps[key]) + " s")
    for key, label in (("hc", "hotcoco in process"), ("pb_files", "panbench files in process"),
                       ("pb_mem", "panbench in-memory preds")):
        print(f"  {label:28} runs: " + ", ".join(f"{t:.2f}" for t, _ in inproc[key]) + " s")
    print("\nwhole processes (timer around the child: start-up, imports, JSONs, both PNG folders, scoring)")
    print(f"{'method':55} {'seconds':>8} {'ms/img':>8} {'peak MiB':>9}")
    for name, t, m in rows:
        print(f"{name:55} {t:8.2f} {1000 * t / n:8.2f} {m:9.0f}")
    print("\nin process (timer after the imports, until the metrics are computed)")
    print(f"{'method':55} {'seconds':>8} {'ms/img':>8}  inside the timer")
    for name, t, inside in (
            ("hotcoco PanopticEval + evaluate (own threads)", t_hc_in, "both JSONs, both PNG folders, scoring"),
            ("panbench files (1 thread)", t_pbf_in, "both JSONs, both PNG folders, scoring"),
            ("panbench in-memory preds (1 thread)", t_mem, "both JSONs, ground-truth PNGs, scoring")):
        print(f"{name:55} {t:8.2f} {1000 * t / n:8.2f}  {inside}")
    print("  (outside every timer: interpreter start and imports; for in-memory preds also decoding the "
          "prediction PNGs, which stand for the model's output)")
    floor_whole = {dec: statistics.median(r[0] for r in reps[f"floor {dec}"]) for dec in FLOOR_DECODERS}
    floor_inp = {dec: statistics.median(v) for dec, v in floor_in.items()}
    best = min(floor_whole, key=floor_whole.get)
    best_in = min(floor_inp, key=floor_inp.get)
    print(f"\nthe floor: decoding both PNG folders ({2 * n} PNGs) into id maps, no JSON, no scoring, one process, "
          f"OPENBLAS/OMP/MKL_NUM_THREADS=1, median of {a.repeat} runs")
    print(f"{'decoder':55} {'whole s':>8} {'in-proc s':>9}")
    for dec, label in (("batch", "panbench's batch path, one file a call (C read, libdeflate, unfilter)"),
                       ("panbench", "panbench read_ids (libdeflate + C unfilter to ids)"),
                       ("pyspng", "pyspng.load (libspng) + panbench's rgb2id"),
                       ("PIL", "PIL Image.open().convert('RGB') + panbench's rgb2id")):
        print(f"{label:55} {floor_whole[dec]:8.2f} {floor_inp[dec]:9.2f}")
    print(f"  fastest: {best} (whole process), {best_in} (in process)")
    print("\nratios (higher = panbench faster; the floor ratios: lower = closer to the floor)")
    print(f"  panbench 1 thread / the floor, whole processes:                   {t_pb / floor_whole[best]:.2f}x  "
          "(target <= 1.5x)")
    print(f"  panbench files in process (1 thread) / the floor in process:      {t_pbf_in / floor_inp[best_in]:.2f}x")
    print(f"  hotcoco / panbench --no-analysis, both PQ only (whole process):   {t_hc / t_pbd:.2f}x  "
          f"(hotcoco: its own threads, panbench: {default_workers(n)} threads on "
          f"{os.cpu_count()} cores)")
    print(f"  hotcoco / panbench score at every default (whole process):        {t_hc / t_full:.2f}x  "
          "(target >= 1.5x; panbench does more: the per-image matches and the default analyses)")
    print(f"    the same, run back to back: {per_round('hc', 'pb_full')}")
    print(f"    hotcoco with OPENBLAS_NUM_THREADS=1 (numpy's BLAS as panbench score loads it) / the same: "
          f"{t_hcb / t_full:.2f}x")
    print(f"  panbench every default / --no-analysis (whole process):          {t_full / t_pbd:.2f}x  "
          "(target <= 1.10x)")
    print(f"    the same, run back to back: {per_round('pb_full', 'pb_default')}")
    print(f"  panbench {default_workers(n)} threads / 1 thread, both PQ only (speed-up):         {t_pb / t_pbd:.2f}x  "
          "(target >= 1.6x)")
    print(f"  panopticapi 1 core / panbench 1 thread (PNG->PNG, whole process): {t_api1 / t_pb:.2f}x  (target >= 5x)")
    if not a.skip_all_cores:
        print(f"  panopticapi all cores / panbench 1 thread:                        {t_apiN / t_pb:.2f}x")
    print(f"  hotcoco / panbench 1 thread (PNG->PNG, whole process):            {t_hc / t_pb:.2f}x")
    print(f"  hotcoco 1 thread / panbench 1 thread (PNG->PNG, whole process):   {t_hc1 / t_pb:.2f}x")
    print(f"  hotcoco / panbench, both in process reading files:                {t_hc_in / t_pbf_in:.2f}x")
    print(f"  hotcoco in process (files) / panbench in-memory preds:            {t_hc_in / t_mem:.2f}x  (target > 1x)")
    print(f"  peak memory, panbench {n} vs {quarter} images: {m_pb:.0f} / {m_q:.0f} MiB = {m_pb / m_q:.2f}x "
          f"(flat: ~1x; time {t_pb:.1f} vs {t_q:.1f} s)")
    analyses_overhead(analyses, a.repeat, n)


if __name__ == "__main__":
    main()
