#!/usr/bin/env python
"""``panbench eval`` of another checkout (``--other``: a worktree of another commit, its C extensions built in place)
against this one: first the two sides' nine metrics checked equal (exit 1 if not), then whole processes in
alternating pairs, the side that goes first turned every pair; prints each side's median wall seconds and the median
of the pairs' ratios (this / other).

    git worktree add /tmp/old 10407fd
    (here=$PWD; cd /tmp/old && "$here"/.venv/bin/python setup.py build_ext --inplace -q)
    .venv/bin/python scripts/ab_eval.py --other /tmp/old --model demo-mask2former --pairs 7

Each run: ``eval --dataset demo --no-resume --no-progress --flops-images 0`` into a results folder of its side, with
``PANBENCH_NO_FACTS_CACHE=1``; each side imports its own panbench (``PYTHONPATH``); ``--this-extra`` adds an option
to this side only (``--this-extra=--pipeline --this-extra=transformers`` for an hf: model against a checkout that ran
transformers' pipeline without it).
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

HERE = Path(__file__).resolve().parents[1]


def run(root: Path, model: str, results: Path, data: Path, extra: list[str] = ()) -> float:
    env = {**os.environ, "PYTHONPATH": str(root), "PANBENCH_NO_FACTS_CACHE": "1"}
    t = time.perf_counter()
    args = ["eval", "--model", model, "--dataset", "demo", "--data-root", str(data), "--results", str(results),
            "--no-resume", "--no-progress", "--flops-images", "0", *extra]
    r = subprocess.run([sys.executable, "-m", "panbench", *args], cwd=root, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{root}: eval failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def metrics(results: Path) -> dict:
    """The nine metrics of the latest record under ``results``."""
    return json.loads(sorted((results / "runs").glob("*.json"))[-1].read_text())["metrics"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--other", type=Path, required=True)
    p.add_argument("--model", default="demo-mask2former")
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--data-root", type=Path, default=HERE / "data" / "demo")
    p.add_argument("--results", type=Path, default=Path("/tmp/ab_eval"))
    p.add_argument("--this-extra", action="append", default=[], help="an option for this side only (repeatable), "
                   "e.g. --this-extra=--pipeline --this-extra=transformers: an hf: model's stock pipeline, which "
                   "an older checkout ran without the option")
    a = p.parse_args()
    mine = {HERE: a.this_extra}
    this, other, ratios = [], [], []
    for root in (HERE, a.other):  # once each, untimed: the same numbers first
        run(root, a.model, a.results / ("this" if root == HERE else "other"), a.data_root, mine.get(root, []))
    if metrics(a.results / "this") != metrics(a.results / "other"):
        sys.exit(f"{a.model}: the two sides' metrics differ; no timing")
    for k in range(a.pairs):
        sides = [(HERE, this), (a.other, other)]
        for root, times in sides[::-1] if k % 2 else sides:
            times.append(run(root, a.model, a.results / ("this" if root == HERE else "other"), a.data_root,
                             mine.get(root, [])))
        ratios.append(this[-1] / other[-1])
    print(f"{a.model}: this {statistics.median(this):.2f} s, other {statistics.median(other):.2f} s, this / other "
          f"per pair: median {statistics.median(ratios):.3f}x ({a.pairs} pairs)")


if __name__ == "__main__":
    main()
