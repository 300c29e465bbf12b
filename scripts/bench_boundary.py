#!/usr/bin/env python
"""``panbench score --boundary`` against ``panbench score`` on COCO's own annotation PNGs replicated
(``scripts/pq_bench_data.py``), side by side in one run: whole processes at their defaults (score's threads: one
per available core), in rounds whose order turns every round, so that a shared machine's drift falls on both sides.

Same numbers first: ``score --boundary --json`` on the batch path (boundary PQ counted and matched in C) must print
the bytes the per-image path prints (``PANBENCH_PER_IMAGE=1``: the PNGs decoded in Python, the boundary tables
per image and the numpy matcher), else the script exits 1 before any timing.  Then each round times both sides;
the script prints every round, the medians, the ratio of the medians, the median of the rounds' ratios (target:
at most 1.6x), each side's median CPU time (the child's user + system), the load average before and after, the
commit and the date.

    .venv/bin/python scripts/bench_boundary.py --images 1000 --rounds 9
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from pq_bench_data import SAMPLE, make_real_set  # noqa: E402

PY = sys.executable
TARGET = 1.6
# BLAS thread counts of the caller's shell: left out of every child's environment (each side at its defaults)
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, bytes]:
    """Wall seconds and CPU seconds (user + system) of a whole child process, and its stdout."""
    base = {k: v for k, v in os.environ.items() if k not in BLAS_ENV and k != "PANBENCH_PER_IMAGE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, env={**base, **(env or {})})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/panbench-bench-pq"))
    ap.add_argument("--set", type=Path, help="a folder with gt.json, gt/, pred.json, pred/ (default: the real set "
                    "of --images under --workdir, made if missing)")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (each: both sides, the order turned)")
    a = ap.parse_args()
    work = a.set
    if work is None:
        work = a.workdir / f"real{a.images}"
        work.mkdir(parents=True, exist_ok=True)
        print(make_real_set(work, a.images, SAMPLE))
    score = [PY, "-m", "panbench", "score", "--gt-json", str(work / "gt.json"), "--gt-dir", str(work / "gt"),
             "--pred-json", str(work / "pred.json"), "--pred-dir", str(work / "pred"), "--json"]
    sides = {"score": score, "score --boundary": [*score, "--boundary"]}

    fast = run(sides["score --boundary"])[2]
    reference = run(sides["score --boundary"], {"PANBENCH_PER_IMAGE": "1"})[2]
    if fast != reference:
        print("score --boundary --json: the batch path and the per-image path print DIFFERENT bytes")
        raise SystemExit(1)
    print(f"score --boundary --json: the batch path prints the per-image path's {len(fast)} bytes")
    for cmd in sides.values():  # untimed: the bytecode caches and the page cache of both sides
        run(cmd)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    load = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for i in range(a.rounds):
        for key in list(sides)[:: 1 if i % 2 == 0 else -1]:
            times[key].append(run(sides[key])[:2])
        print(f"round {i + 1}: " + ", ".join(f"{k} {times[k][-1][0]:.2f} s" for k in sides), flush=True)
    end = os.getloadavg()
    wall = {k: statistics.median(t for t, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    ratios = [b[0] / p[0] for b, p in zip(times["score --boundary"], times["score"], strict=True)]
    print(f"\n{work}, {a.rounds} rounds, whole processes at their defaults ({os.cpu_count()} cores), commit "
          f"{commit.stdout.strip() or '?'}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"load average {load[0]:.1f} before, {end[0]:.1f} after")
    for k in sides:
        print(f"  {k:18} median {wall[k]:.2f} s wall, {cpu[k]:.2f} s CPU")
    ratio = wall["score --boundary"] / wall["score"]
    print(f"  score --boundary / score: {ratio:.2f}x (medians), {statistics.median(ratios):.2f}x per round "
          f"({', '.join(f'{r:.2f}' for r in ratios)}); target <= {TARGET}x; CPU "
          f"{cpu['score --boundary'] / cpu['score']:.2f}x")


if __name__ == "__main__":
    main()
