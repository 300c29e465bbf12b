#!/usr/bin/env python
"""Peak memory, whole processes, side by side in one run: ``panbench score`` at its defaults, ``panbench score
--no-analysis`` and hotcoco's ``PanopticEval`` (at its defaults) on the same set, or ``panbench eval --model all``
against each of its models run alone (``--eval``).

Each row is a child process run by ``bench_pq.measure``: its wall time and its largest resident set (``ru_maxrss``
of a wrapper's children: the largest single process of the row and of the processes it waited for, such as eval's
forked inference processes; not their sum); the rows go in turn, ``--rounds`` times, the order turned every other
round, and the medians are printed with their ratios (docs/benchmarks.md, "Peak memory").  Before any ratio of
``score`` rows, every run's PQ is checked equal to panbench's at the defaults (hotcoco's to 1e-9: it sums in
float64): a row that prints none, or another, stops the script with exit 1.  ``eval`` rows print a table, no PQ:
their records' numbers are not compared here.

    .venv/bin/python scripts/bench_memory.py SET [--rounds 3]      # SET: make_real_set of scripts/pq_bench_data.py
    .venv/bin/python scripts/bench_memory.py --eval [--rounds 3]   # the demo set (panbench data demo) in DIR
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pq import HOTCOCO, PY, last_json, measure  # noqa: E402 - bench_pq's child runner: time and peak RSS

DEMO_MODELS = ("demo-mask2former", "demo-maskformer", "demo-panoptic-fpn")


def score_rows(s: Path) -> dict[str, list[str]]:
    files = ["--gt-json", str(s / "gt.json"), "--gt-dir", str(s / "gt"), "--pred-json", str(s / "pred.json"),
             "--pred-dir", str(s / "pred")]
    return {"panbench score (defaults)": [PY, "-m", "panbench", "score", *files, "--json"],
            "panbench score --no-analysis": [PY, "-m", "panbench", "score", *files, "--no-analysis", "--json"],
            "hotcoco PanopticEval": [PY, "-c", HOTCOCO, str(s / "gt.json"), str(s / "gt"), str(s / "pred.json"),
                                     str(s / "pred")]}


def eval_rows(results: Path) -> dict[str, list[str]]:
    base = [PY, "-m", "panbench", "eval", "--dataset", "demo", "--results", str(results), "--no-resume"]
    rows = {"eval --model all": [*base, "--model", "all"]}
    rows.update({f"eval --model {m}": [*base, "--model", m] for m in DEMO_MODELS})
    return rows


def pq_of(out: str) -> float | None:
    """The PQ a row printed (score's and hotcoco's JSON; eval prints a table: None)."""
    try:
        return float(last_json(out)["PQ"])
    except (ValueError, KeyError, IndexError):
        return None


def run(rows: dict[str, list[str]], rounds: int) -> dict[str, list[tuple[float, float, float | None]]]:
    got: dict[str, list[tuple[float, float, float | None]]] = {name: [] for name in rows}
    env = {"OPENBLAS_NUM_THREADS": "1"}  # as score loads it; hotcoco too
    for r in range(rounds):
        order = list(rows) if r % 2 == 0 else list(reversed(rows))
        for name in order:
            wall, mib, out = measure(rows[name], env)
            got[name].append((mib, wall, pq_of(out)))
            print(f"round {r + 1}: {name}: {mib:.0f} MiB, {wall:.2f} s", flush=True)
    return got


def check_pq(got: dict[str, list[tuple[float, float, float | None]]], reference: str) -> None:
    """Every run of every row printed a PQ, equal to the reference row's first (hotcoco's to 1e-9: it sums in
    float64); else exit 1 before any ratio."""
    ref = got[reference][0][2]
    for name, runs in got.items():
        for _, _, pq in runs:
            if pq is None or ref is None:
                sys.exit(f"bench_memory: {name if pq is None else reference} printed no PQ; no ratio")
            if abs(pq - ref) > 1e-9:
                sys.exit(f"bench_memory: {name} scored PQ {pq!r}, panbench {ref!r}: not the same work; no ratio")
    print(f"PQ checked: every run of every row gives {ref:.6f}")


def report(got: dict[str, list[tuple[float, float, float | None]]], ratios: list[tuple[str, str]]) -> None:
    med = {name: statistics.median(m for m, _, _ in runs) for name, runs in got.items()}
    print(f"\n{'row':40s} {'peak MiB (median)':>18s} {'runs':>22s} {'wall s (median)':>16s}")
    for name, runs in got.items():
        each = ", ".join(f"{m:.0f}" for m, _, _ in runs)
        print(f"{name:40s} {med[name]:18.0f} {each:>22s} {statistics.median(w for _, w, _ in runs):16.2f}")
    for num, den in ratios:
        print(f"{num} / {den}: {med[num] / med[den]:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", nargs="?", type=Path, help="a folder of gt.json, gt/, pred.json, pred/")
    ap.add_argument("--eval", action="store_true", help="eval --model all against each demo model alone")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores", flush=True)
    if args.eval:
        with tempfile.TemporaryDirectory() as tmp:
            rows = eval_rows(Path(tmp))
            got = run(rows, args.rounds)
        largest = max((n for n in rows if n != "eval --model all"), key=lambda n: statistics.median(
            m for m, _, _ in got[n]))
        report(got, [("eval --model all", largest)])
        return 0
    if args.set is None or not (args.set / "gt.json").is_file():
        ap.error("give a set folder (gt.json, gt/, pred.json, pred/) or --eval")
    got = run(score_rows(args.set), args.rounds)
    check_pq(got, "panbench score (defaults)")
    report(got, [("panbench score (defaults)", "panbench score --no-analysis"),
                 ("panbench score (defaults)", "hotcoco PanopticEval")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
