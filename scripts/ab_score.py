"""``panbench score`` of another checkout (``--other``: a worktree of another commit, its C extensions built in
place) against this one, on the same data: the same numbers first, then whole-process times in alternating pairs.

    git worktree add /tmp/old 76ee27b
    (here=$PWD; cd /tmp/old && "$here"/.venv/bin/python setup.py build_ext --inplace -q)
    .venv/bin/python scripts/ab_score.py --other /tmp/old --set /tmp/pb47/real1000 --pairs 11

A set is a folder with ``gt.json``, ``gt/``, ``pred.json`` and ``pred/`` (what ``scripts/bench_pq.py`` writes),
or four paths joined by commas (ground-truth JSON, its PNG folder, prediction JSON, its PNG folder).  Both sides
run as ``python -S`` with this venv's site-packages after their own checkout, so each imports its own panbench;
``--extra`` adds options to both (``--extra=--no-analysis``), ``--this-extra`` to this side only: with ``--other .``
(this checkout), the cost of an option, e.g. an evaluator of the user's against ``score`` alone::

    .venv/bin/python scripts/ab_score.py --other . --set /tmp/pb/real1000 --pairs 11 --ignore-key evaluators \
        --this-extra=--evaluator --this-extra=examples/evaluators/image_count.py:ImageCount

``--ignore-key`` leaves a key of ``score --json`` out of the comparison (an analysis only this side computes,
against a checkout with it turned off).

Same numbers: ``score --json`` of every ``--set`` must print the same bytes on both sides, or the script exits 1
before any timing.  Timing (on the first ``--set``): ``--pairs`` pairs of whole processes, the side that goes
first turned every pair; prints each pair, the medians, the median of the pairs' ratios and in how many pairs this
checkout was faster, then each side's median CPU time (user + system, the child's own) and minor page faults
(pages the OS handed the process, each a fault on its first touch) with the median of the pairs' CPU ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
RUN = ("import runpy, sys; root, site = sys.argv[1], sys.argv[2]; sys.path[:0] = [root]; sys.path.append(site); "
       "sys.argv = ['panbench', *sys.argv[3:]]; runpy.run_module('panbench', run_name='__main__', alter_sys=True)")


def files(spec: str) -> list[str]:
    parts = spec.split(",")
    if len(parts) == 4:
        return parts
    d = Path(spec)
    return [str(d / "gt.json"), str(d / "gt"), str(d / "pred.json"), str(d / "pred")]


def command(root: Path, spec: str, extra: list[str]) -> list[str]:
    gj, gd, pj, pd = files(spec)
    return [sys.executable, "-S", "-c", RUN, str(root), sysconfig.get_paths()["purelib"], "score", "--gt-json", gj,
            "--gt-dir", gd, "--pred-json", pj, "--pred-dir", pd, *extra]


def run(cmd: list[str]) -> tuple[tuple[float, float, int], str]:
    """The child's wall time, CPU time (user + system) and minor page faults, and its output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as an installed package
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return (dt, cpu, after.ru_minflt - before.ru_minflt), r.stdout


def without(out: str, keys: list[str]) -> str:
    """``score --json``'s output ``out`` without ``keys`` (as it is when there are none)."""
    if not keys:
        return out
    import json

    return json.dumps({k: v for k, v in json.loads(out).items() if k not in keys})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--other", type=Path, required=True, help="the other checkout (its extensions built in place)")
    ap.add_argument("--set", dest="sets", action="append", required=True, help="a data set (repeatable)")
    ap.add_argument("--pairs", type=int, default=9, help="timed pairs on the first set (0: numbers only)")
    ap.add_argument("--extra", action="append", default=[], help="an option for both sides' score")
    ap.add_argument("--this-extra", action="append", default=[], help="an option for this side's score only")
    ap.add_argument("--ignore-key", action="append", default=[], help="a key of score --json not compared")
    a = ap.parse_args()
    for spec in a.sets:
        mine, other = (without(run(command(root, spec, [*a.extra, *more, "--json"]))[1], a.ignore_key)
                       for root, more in ((HERE, a.this_extra), (a.other, [])))
        if mine != other:
            raise SystemExit(f"{spec}: score --json differs between {a.other} and {HERE}")
        print(f"same numbers: {spec}: score --json identical ({len(mine.encode())} bytes)")
    runs: dict[str, list[tuple[float, float, int]]] = {"other": [], "this": []}
    for k in range(a.pairs):
        order = [("other", a.other, a.extra), ("this", HERE, [*a.extra, *a.this_extra])]
        for side, root, options in order if k % 2 == 0 else order[::-1]:
            runs[side].append(run(command(root, a.sets[0], options))[0])
        print(f"pair {k + 1}: other {runs['other'][-1][0]:.3f} s, this {runs['this'][-1][0]:.3f} s")
    if a.pairs:
        summary(runs, a.pairs)


def summary(runs: dict[str, list[tuple[float, float, int]]], pairs: int) -> None:
    """The medians of both sides (wall, CPU, faults) and of the pairs' ratios."""
    def med(side: str, k: int) -> float:
        return statistics.median(r[k] for r in runs[side])

    def ratios(k: int) -> list[float]:
        return [o[k] / t[k] for o, t in zip(runs["other"], runs["this"], strict=True)]

    wall = ratios(0)
    print(f"medians: other {med('other', 0):.3f} s, this {med('this', 0):.3f} s; other / this per pair: median "
          f"{statistics.median(wall):.3f}x; this faster in {sum(r > 1 for r in wall)} of {pairs} pairs")
    print(f"CPU (user + system): other {med('other', 1):.3f} s, this {med('this', 1):.3f} s; other / this per pair: "
          f"median {statistics.median(ratios(1)):.3f}x; minor page faults: other {med('other', 2):.0f}, this "
          f"{med('this', 2):.0f}")


if __name__ == "__main__":
    main()
