#!/usr/bin/env python
"""Peak memory, whole processes, side by side in one run: ``panbench score`` at its defaults, ``panbench score
--no-analysis`` and hotcoco's ``PanopticEval`` (at its defaults) on the same set, ``panbench eval --model all``
against each of its models run alone (``--eval``), or ``panbench table``, ``report`` and ``compare`` over ``--runs``
``score --name`` records against one ``score --name`` of the same images (``--reports``).

Each row is a child process run by ``bench_pq.measure``: its wall time and its largest resident set (``ru_maxrss``
of a wrapper's children: the largest single process of the row and of the processes it waited for, such as eval's
forked inference processes; not their sum); the rows go in turn, ``--rounds`` times, the order turned every other
round, and the medians are printed with their ratios (docs/benchmarks.md, "Peak memory").  Before any ratio of
``score`` rows, every run's PQ is checked equal to panbench's at the defaults (hotcoco's to 1e-9: it sums in
float64): a row that prints none, or another, stops the script with exit 1.  ``eval`` rows print a table, no PQ:
their records' numbers are not compared here.

``--reports`` makes (once, kept under ``--work``) ``make_real_set`` of ``--images`` images and ``--runs`` records of
it: run-0 scores its predictions, run-k (k > 0) the same PNGs with 5% of the segments given another category of their
kind and every score moved (:func:`variant_predictions`), each its own JSON file as six systems' would be.  Its rows:
``score --name`` of run-0 (into a scratch folder), ``table``, ``report`` and ``compare run-0 run-1`` over the records;
each ratio to the score row, peak and time, is printed beside its target (at most 1.5x the peak, 2x the time), set
for 20,000 images: on a few thousand, what ``table`` and ``report`` cost at any size (pandas and matplotlib
imported, about 110 MiB; the figures drawn, 10-15 s) puts them over it.  The default 2000 images take about four
minutes in all; 20,000 (docs/benchmarks.md) most of an hour to make on 2 cores, then about two minutes a round.

    .venv/bin/python scripts/bench_memory.py SET [--rounds 3]      # SET: make_real_set of scripts/pq_bench_data.py
    .venv/bin/python scripts/bench_memory.py --eval [--rounds 3]   # the demo set (panbench data demo) in DIR
    .venv/bin/python scripts/bench_memory.py --reports [--images 2000] [--runs 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pq import HOTCOCO, PY, last_json, measure  # noqa: E402 - bench_pq's child runner: time and peak RSS

DEMO_MODELS = ("demo-mask2former", "demo-maskformer", "demo-panoptic-fpn")
SCORE_ROW = "panbench score --name"
REPORT_ROWS = ("table", "report", "compare")  # --reports' rows besides the score (--only: some of them)
TARGETS = {"peak": 1.5, "time": 2.0}  # a report row's most, as a multiple of the score row's
RELABELLED = 0.05  # the share of a variant's segments given another category of their kind


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


def variant_predictions(s: Path, k: int) -> Path:
    """The predictions of run-``k`` of set ``s``: ``pred.json`` itself for k = 0, else ``pred-k.json`` (written once),
    its PNGs the same, :data:`RELABELLED` of its segments given another category of their kind (thing or stuff) among
    those the ground truth has, and every score moved by normal noise (sd 0.05, clipped to [0, 1]), seeded by
    ``k``."""
    if k == 0:
        return s / "pred.json"
    out = s / f"pred-{k}.json"
    if out.is_file():
        return out
    import numpy as np

    rng = np.random.default_rng(k)
    gt = json.loads((s / "gt.json").read_text())
    thing = {c["id"]: bool(c.get("isthing")) for c in gt["categories"]}
    seen = sorted({seg["category_id"] for ann in gt["annotations"] for seg in ann["segments_info"]})
    kinds = {flag: [c for c in seen if thing[c] == flag] for flag in (True, False)}
    del gt
    doc = json.loads((s / "pred.json").read_text())
    for ann in doc["annotations"]:
        for seg in ann["segments_info"]:
            if rng.random() < RELABELLED and (same := kinds[thing[seg["category_id"]]]):
                seg["category_id"] = int(rng.choice(same))
            if "score" in seg:
                seg["score"] = round(float(np.clip(seg["score"] + 0.05 * rng.standard_normal(), 0.0, 1.0)), 4)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, out)
    return out


def files_of(s: Path, pred_json: Path) -> list[str]:
    return ["--gt-json", str(s / "gt.json"), "--gt-dir", str(s / "gt"), "--pred-json", str(pred_json),
            "--pred-dir", str(s / "pred")]


def record_runs(s: Path, n_runs: int) -> Path:
    """The results folder of ``n_runs`` records of set ``s`` (run-0 ... run-N-1: ``score --name`` of each
    :func:`variant_predictions`), made where it does not hold them all yet."""
    results = s / f"results-{n_runs}"
    if len(list((results / "runs").glob("*.json"))) == n_runs:
        return results
    shutil.rmtree(results, ignore_errors=True)
    from panbench.cli import main  # in this process: the records are made, not measured

    for k in range(n_runs):
        if main(["score", *files_of(s, variant_predictions(s, k)), "--name", f"run-{k}", "--results", str(results)]):
            sys.exit(f"bench_memory: the score of run-{k} failed; no rows")
    return results


def report_rows(s: Path, results: Path, scratch: Path, only: tuple[str, ...] = REPORT_ROWS) -> dict[str, list[str]]:
    """The score row (a ``score --name`` of run-0 into ``scratch``) and the ``only`` rows over ``results``."""
    base = [PY, "-m", "panbench"]
    rows = {SCORE_ROW: [*base, "score", *files_of(s, s / "pred.json"), "--name", "run-0", "--results",
                        str(scratch / "score")],
            "panbench table": [*base, "table", "--results", str(results)],
            "panbench report": [*base, "report", "--results", str(results), "--out", str(scratch / "report.html")],
            "panbench compare": [*base, "compare", "run-0", "run-1", "--results", str(results)]}
    return {name: cmd for name, cmd in rows.items() if name == SCORE_ROW or name.split()[1] in only}


def target_lines(got: dict[str, list[tuple[float, float, float | None]]]) -> list[str]:
    """Each report row's peak and time as multiples of the score row's (medians), each beside its target."""
    med = {name: (statistics.median(m for m, _, _ in runs), statistics.median(w for _, w, _ in runs))
           for name, runs in got.items()}
    out = []
    for name in got:
        if name != SCORE_ROW:
            peak, time_ = (med[name][i] / med[SCORE_ROW][i] for i in (0, 1))
            marks = ["" if x <= TARGETS[t] else " OVER" for x, t in ((peak, "peak"), (time_, "time"))]
            out.append(f"{name} / {SCORE_ROW}: peak {peak:.2f}x (target {TARGETS['peak']}x){marks[0]}, time "
                       f"{time_:.2f}x (target {TARGETS['time']}x){marks[1]}")
    return out


def reports(args: argparse.Namespace) -> int:
    """``--reports``: the set and its records made where missing, then the rows in turn, then the ratios."""
    from pq_bench_data import make_real_set  # beside this script, as bench_pq

    s = args.work / f"real{args.images}"
    s.mkdir(parents=True, exist_ok=True)
    print(make_real_set(s, args.images), flush=True)
    results = record_runs(s, args.runs)
    only = tuple(x for x in args.only.split(",") if x)
    if unknown := set(only) - set(REPORT_ROWS):
        sys.exit(f"bench_memory: --only {args.only}: no row {', '.join(sorted(unknown))}; name some of "
                 f"{','.join(REPORT_ROWS)}")
    with tempfile.TemporaryDirectory() as tmp:
        got = run(report_rows(s, results, Path(tmp), only), args.rounds)
    report(got, [])
    print("\n".join(target_lines(got)))
    return 0


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
    ap.add_argument("--reports", action="store_true", help="table, report and compare against one score --name")
    ap.add_argument("--images", type=int, default=2000, help="--reports: the set's images (default 2000)")
    ap.add_argument("--runs", type=int, default=6, help="--reports: the records (default 6; at least 2)")
    ap.add_argument("--only", default=",".join(REPORT_ROWS), help="--reports: the rows beside the score's "
                    f"(default {','.join(REPORT_ROWS)})")
    ap.add_argument("--work", type=Path, default=Path("/tmp/panbench-bench-memory"),
                    help="--reports: where the sets and their records are kept (default /tmp/panbench-bench-memory)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores", flush=True)
    if args.reports:
        if args.runs < 2:
            ap.error("--runs: at least 2 (compare reads run-0 and run-1)")
        return reports(args)
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
