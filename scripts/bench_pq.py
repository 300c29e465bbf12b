#!/usr/bin/env python
"""PQ scoring speed: panbench vs panopticapi vs hotcoco, side by side in one run.

Generates COCO-scale data (640x480, about 25 segments per image, ground truth and perturbed
predictions, written with PIL like COCO's converters), then times whole processes:

  panbench score (1 worker)  vs  panopticapi pq_compute_single_core (1 core)
                             vs  panopticapi pq_compute (all cores)
                             vs  hotcoco PanopticEval (its own threads, and 1 thread)

plus panbench with in-memory predictions (JSONs read and ground truth decoded from PNG, timed
in process: the predictions stand for a model's output) and panbench's peak memory at N/4 and N images.  Prints ratios.

    .venv/bin/python scripts/bench_pq.py --images 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from panbench.data.synth import coco_like_categories, perturb, random_image, write_panoptic  # noqa: E402

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
print(json.dumps({'stats': list(ev.stats)}))
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


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of a whole child process, plus its stdout."""
    r = subprocess.run([PY, "-c", RUN_AND_MEASURE, *cmd], capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    head, _, child_out = r.stdout.partition("\n")
    dt, rss, rc = head.split()
    if int(rc) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return float(dt), int(rss) / 1024, child_out


def in_memory_seconds(work: Path) -> tuple[float, float]:
    """panbench with predictions already in memory: seconds to read both JSONs, decode the
    ground-truth PNGs and score (what eval does after the forward), and the PQ."""
    from panbench.pq.coco_format import read_ids
    from panbench.pq.evaluator import PanopticEvaluator
    from panbench.pq.score import load_pairs

    t = time.perf_counter()
    cats, pairs = load_pairs(work / "gt.json", work / "pred.json")
    ev = PanopticEvaluator(cats)
    timed = time.perf_counter() - t
    for gt_ann, pred_ann in pairs:
        pred_ids = read_ids(work / "pred" / pred_ann["file_name"], "pred").copy()  # the model's output
        t = time.perf_counter()
        gt_ids = read_ids(work / "gt" / gt_ann["file_name"], "gt", slot="gt")
        ev.process(gt_ids, gt_ann["segments_info"], pred_ids, pred_ann["segments_info"])
        timed += time.perf_counter() - t
    return timed, ev.evaluate()["PQ"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-pq"))
    ap.add_argument("--skip-all-cores", action="store_true", help="skip panopticapi's multi-core run")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the headline comparisons (medians compared)")
    a = ap.parse_args()
    work = a.workdir / f"n{a.images}"
    work.mkdir(parents=True, exist_ok=True)
    make_data(work, a.images)
    files = [str(work / "gt.json"), str(work / "gt"), str(work / "pred.json"), str(work / "pred")]
    score = ["-m", "panbench", "score", "--gt-json", files[0], "--gt-dir", files[1],
             "--pred-json", files[2], "--pred-dir", files[3], "--json"]
    n = a.images
    rows = []

    # The headline comparisons run a.repeat times, interleaved, and their medians are compared
    # (this machine's speed drifts by 10-20% between runs).
    reps: dict[str, list[tuple[float, float, str]]] = {}
    mem_runs: list[tuple[float, float]] = []
    for _ in range(a.repeat):
        reps.setdefault("pb", []).append(measure([PY, *score]))
        reps.setdefault("api1", []).append(measure([PY, "-c", PANOPTICAPI_ONE_CORE, *files]))
        reps.setdefault("hc", []).append(measure([PY, "-c", HOTCOCO, *files]))
        reps.setdefault("hc1", []).append(measure([PY, "-c", HOTCOCO, *files], env={"RAYON_NUM_THREADS": "1"}))
        mem_runs.append(in_memory_seconds(work))

    def med(key: str) -> tuple[float, float]:
        return (statistics.median(r[0] for r in reps[key]), max(r[1] for r in reps[key]))

    (t_pb, m_pb), (t_api1, m_api1), (t_hc, m_hc), (t_hc1, m_hc1) = (med(k) for k in ("pb", "api1", "hc", "hc1"))
    t_mem, pq_mem = statistics.median(t for t, _ in mem_runs), mem_runs[0][1]
    pq_pb = json.loads(reps["pb"][0][2])["PQ"]
    rows.append(("panbench score, 1 worker (PNG->PNG)", t_pb, m_pb))
    t_np, m_np, out_np = measure([PY, *score], env={"PANBENCH_NO_NATIVE": "1"})
    assert json.loads(out_np)["PQ"] == pq_pb, "the numpy path must give the same numbers"
    rows.append(("panbench score, numpy path (PANBENCH_NO_NATIVE=1)", t_np, m_np))
    rows.append(("panopticapi, 1 core", t_api1, m_api1))
    if not a.skip_all_cores:
        t_apiN, m_apiN, _ = measure([PY, "-c", PANOPTICAPI_ALL_CORES, *files])
        rows.append((f"panopticapi pq_compute, {os.cpu_count()} cores", t_apiN, m_apiN))
    rows.append(("hotcoco PanopticEval (own threads)", t_hc, m_hc))
    rows.append(("hotcoco PanopticEval (RAYON_NUM_THREADS=1)", t_hc1, m_hc1))
    rows.append(("panbench in-memory preds (GT from PNG, in process)", t_mem, float("nan")))
    t_pbw, m_pbw, _ = measure([PY, *score, "--workers", str(os.cpu_count())])
    rows.append((f"panbench score, {os.cpu_count()} workers", t_pbw, m_pbw))

    quarter = max(1, n // 4)
    score_q = list(score)
    score_q[score_q.index(files[0])] = str(subset_json(work, "gt", quarter))
    t_q, m_q, _ = measure([PY, *score_q])

    print(f"\n{n} images 640x480 (PQ panbench {pq_pb:.6f}, in-memory {pq_mem:.6f}); panbench 1 worker, "
          f"panopticapi 1 core, hotcoco and in-memory: median of {a.repeat} interleaved runs")
    for key, label in (("pb", "panbench 1 worker"), ("api1", "panopticapi 1 core"), ("hc", "hotcoco")):
        print(f"  {label:20} runs: " + ", ".join(f"{r[0]:.2f}" for r in reps[key]) + " s")
    print(f"  {'in-memory':20} runs: " + ", ".join(f"{t:.2f}" for t, _ in mem_runs) + " s")
    print(f"{'method':55} {'seconds':>8} {'ms/img':>8} {'peak MiB':>9}")
    for name, t, m in rows:
        print(f"{name:55} {t:8.2f} {1000 * t / n:8.2f} {m:9.0f}")
    print("\nratios (higher = panbench faster)")
    print(f"  panopticapi 1 core / panbench 1 worker (PNG->PNG, whole process): {t_api1 / t_pb:.2f}x  (target >= 5x)")
    if not a.skip_all_cores:
        print(f"  panopticapi all cores / panbench 1 worker:                        {t_apiN / t_pb:.2f}x")
    print(f"  hotcoco / panbench 1 worker (PNG->PNG):                           {t_hc / t_pb:.2f}x")
    print(f"  hotcoco 1 thread / panbench 1 worker (PNG->PNG):                  {t_hc1 / t_pb:.2f}x")
    print(f"  hotcoco (files) / panbench in-memory preds:                       {t_hc / t_mem:.2f}x  (target > 1x)")
    print(f"  peak memory, panbench {n} vs {quarter} images: {m_pb:.0f} / {m_q:.0f} MiB = {m_pb / m_q:.2f}x "
          f"(flat: ~1x; time {t_pb:.1f} vs {t_q:.1f} s)")


if __name__ == "__main__":
    main()
